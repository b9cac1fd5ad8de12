"""The central archive's store: one data directory with an SQLite file and a content-addressed blob dir.

    DIR/archive.db              boxes, tokens, uploads, recordings, requisitions, checkpoints, alerts, audit
    DIR/blobs/ab/<sha256>       whole containers (header + payload) as the boxes sent them
    DIR/tmp/<box>-<sha256>.part uploads in progress (the committed offset is the file's length)
    DIR/keys/signing.key        Ed25519 key that signs receipts (unattended, like the box's)
    DIR/tls/cert.pem, key.pem   the HTTPS certificate, self-signed (appliance/tls.py); boxes pin its fingerprint

The X25519 key (the recipient boxes and cameras encrypt to) exists only wrapped, as on a box: in a key slot
under the operator's password and under a recovery key shown once (appliance/keys.py).

Domain logic only: the HTTP layer (server.py) and the CLI are thin over it. Every method that changes
what the archive holds checks and writes in one transaction.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from pathlib import Path
from typing import Iterator

from nacl.public import PrivateKey
from nacl.signing import SigningKey

from appliance import audit as audit_log
from appliance import keys, tls
from appliance.clock import Clock, system_clock, to_iso
from appliance.container import Decryptor, parse_header
from appliance.database import connect, transaction
from appliance.errors import KluisError, NotFound, NotInitialized, WrongSecret
from appliance.migrations import migrate

from ..protocol import MAX_SKEW, ProtocolError, box_id_of
from . import schema
from .checkpoints import Checkpoints
from .requisitions import Requisitions
from .stream import SYNC_EVERY, Stream
from .uploads import MAX_CONTAINER, Uploads, UploadState

__all__ = ["Archive", "MAX_CONTAINER", "SYNC_EVERY", "Stream", "UploadState", "init_archive"]

DB = "archive.db"
SIGNING_KEY = "keys/signing.key"


def init_archive(data_dir: Path, password: str, kdf_profile: str = "moderate", name: str = "Centraal archief",
                 clock: Clock = system_clock) -> tuple["Archive", str]:
    """Create an archive data directory; returns it open and the recovery key (shown once, never stored)."""
    data_dir = Path(data_dir)
    if (data_dir / DB).exists():
        raise KluisError(f"{data_dir} is already an archive data directory")
    if data_dir.exists() and any(data_dir.iterdir()):
        raise KluisError(f"{data_dir} exists and is not empty")
    for sub in ("", "blobs", "tmp", "keys"):
        (data_dir / sub).mkdir(parents=True, exist_ok=True)
    os.chmod(data_dir, 0o700)
    identity = keys.new_box_identity()
    signing = keys.write_signing_key(data_dir / SIGNING_KEY)
    tls.create_certificate(data_dir, name)
    recovery_key = keys.new_recovery_key()
    db = connect(data_dir / DB)
    migrate(db, schema.ARCHIVE, what="archive database", adopt=schema.adopt)
    with transaction(db):
        meta = {
            "archive_id": secrets.token_hex(8),
            "name": name,
            "public_key": bytes(identity.public_key).hex(),
            "signing_public_key": bytes(signing.verify_key).hex(),
            "key_slot": json.dumps(keys.new_slot(password, bytes(identity), kdf_profile)),
            "recovery_slot": json.dumps(keys.new_recovery_slot(recovery_key, bytes(identity))),
            "created_at": to_iso(clock()),
        }
        for key, value in meta.items():
            db.execute("INSERT INTO meta (key, value) VALUES (?, ?)", [key, value])
    db.conn.close()
    return Archive(data_dir, clock), recovery_key


class Archive:
    def __init__(self, data_dir: Path, clock: Clock = system_clock):
        self.data_dir = NotInitialized.unless(data_dir, DB, "archive", "kluis archive init")
        self.clock = clock
        self.db = connect(self.data_dir / DB)
        self.version = migrate(self.db, schema.ARCHIVE, what="archive database", adopt=schema.adopt)
        self._nonces = None
        self.meta = {k: v for k, v in self.db.execute("SELECT key, value FROM meta")}
        self.archive_id = self.meta["archive_id"]
        self.public_key = bytes.fromhex(self.meta["public_key"])
        self.signing_public_key = bytes.fromhex(self.meta["signing_public_key"])
        self.tmp = self.data_dir / "tmp"
        self._signing: SigningKey | None = None
        self.uploads = Uploads(self)
        self._requisitions = Requisitions(self)
        self.checkpoints = Checkpoints(self)

    def close(self) -> None:
        if self._nonces is not None:
            self._nonces.conn.close()
        self.db.conn.close()

    @property
    def _nonce_db(self):
        if self._nonces is None:
            self._nonces = connect(self.data_dir / DB)
            self._nonces.execute("PRAGMA synchronous=NORMAL")
        return self._nonces

    def __enter__(self) -> "Archive":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def now_iso(self) -> str:
        return to_iso(self.clock())

    def transaction(self) -> transaction:
        return transaction(self.db)

    @property
    def signing_key(self) -> SigningKey:
        if self._signing is None:
            self._signing = keys.read_signing_key(self.data_dir / SIGNING_KEY)
        return self._signing

    @property
    def cert_fingerprint(self) -> str:
        """SHA-256 of the TLS certificate, lowercase hex without separators (as tokens carry it)."""
        fingerprint = tls.fingerprint(self.data_dir)
        if fingerprint is None:
            raise NotInitialized(f"no TLS certificate in {self.data_dir}")
        return fingerprint.replace(":", "").lower()

    def info(self) -> dict:
        return {"archive_id": self.archive_id, "name": self.meta["name"], "public_key": self.public_key.hex(),
                "signing_key": self.signing_public_key.hex()}

    def unlock(self, password: str) -> PrivateKey:
        return self._identity(keys.open_slot(json.loads(self.meta["key_slot"]), password))

    def unlock_recovery(self, recovery_key: str) -> PrivateKey:
        return self._identity(keys.open_recovery_slot(json.loads(self.meta["recovery_slot"]), recovery_key))

    def _identity(self, secret: bytes | None) -> PrivateKey:
        if secret is None:
            raise WrongSecret("the key slot holds no key")
        identity = PrivateKey(secret)
        if bytes(identity.public_key) != self.public_key:
            raise WrongSecret("key slot holds a key of another archive")
        return identity

    def one(self, sql: str, params=()) -> dict | None:
        rows = list(self.db.query(sql, params))
        return rows[0] if rows else None

    def audit(self, actor: str, action: str, *, box_id: str | None = None, sha256: str | None = None,
              purpose: str | None = None, case_ref: str | None = None, details: dict | None = None) -> int:
        """One entry in the archive's own hash-chained log (the box that caused it goes in `client`), and a
        checkpoint over it signed with the archive's receipt key: its log is held to the same standard."""
        seq = audit_log.record(self, actor=actor, action=action, recording_id=sha256, purpose=purpose,
                               case_ref=case_ref, client=box_id, details=details)
        audit_log.checkpoint(self, self.signing_key, clock=self.clock)
        return seq

    # enrollment -------------------------------------------------------------------------------------
    def new_token(self) -> str:
        """A one-time enrollment token: a secret and the TLS certificate's fingerprint, so that the box
        that uses it pins the right certificate from its very first connection."""
        secret = secrets.token_hex(20)  # hex: a token never starts with "-" (a command-line option)
        self.db.execute("INSERT INTO tokens (hash, created_at) VALUES (?, ?)",
                        [hashlib.sha256(secret.encode()).hexdigest(), self.now_iso()])
        return f"{secret}.{self.cert_fingerprint}"

    def enroll(self, token_secret: str, name: str, signing_key: bytes, public_key: bytes) -> dict:
        box_id = box_id_of(signing_key)
        digest = hashlib.sha256(token_secret.encode()).hexdigest()
        with self.transaction():
            row = self.one("SELECT * FROM tokens WHERE hash = ?", [digest])
            if row is None:
                raise ProtocolError("unknown enrollment token", 403)
            if row["used_at"] is not None and row["box_id"] != box_id:
                raise ProtocolError("enrollment token already used", 403)
            if len(signing_key) != 32 or len(public_key) != 32:
                raise ProtocolError("keys must be 32 bytes", 400)
            now = self.now_iso()
            self.db.execute("UPDATE tokens SET used_at = ?, box_id = ? WHERE hash = ?", [now, box_id, digest])
            self.db.execute(
                "INSERT OR REPLACE INTO boxes (id, name, signing_key, public_key, enrolled_at) VALUES (?,?,?,?,?)",
                [box_id, name, signing_key.hex(), public_key.hex(), now])
            self.audit("system", "enroll", box_id=box_id, details={"name": name})
        return {"box_id": box_id, **self.info()}

    def box_key(self, box_id: str) -> bytes | None:
        row = self.one("SELECT signing_key FROM boxes WHERE id = ?", [box_id])
        return bytes.fromhex(row["signing_key"]) if row else None

    def remember_nonce(self, box_id: str, nonce: str) -> None:
        """Refuse a nonce seen before (a replay); forget nonces older than the allowed clock skew.

        On a connection of its own with synchronous=NORMAL: every request passes here, and an fsync each
        time halved the upload rate. WAL stays consistent; a power cut may forget the last nonces, and
        replaying one of those requests within minutes of a power cut is harmless (a part at a committed
        offset is refused, a completed upload answers the same receipt)."""
        now = self.clock()
        db = self._nonce_db
        with transaction(db):
            db.execute("DELETE FROM nonces WHERE seen_at < ?", [to_iso(now - 2 * MAX_SKEW)])
            if db.execute("SELECT 1 FROM nonces WHERE box_id = ? AND nonce = ?", [box_id, nonce]).fetchone():
                raise ProtocolError("replayed request (nonce seen before): refused", 409)
            db.execute("INSERT INTO nonces (box_id, nonce, seen_at) VALUES (?, ?, ?)", [box_id, nonce, to_iso(now)])
            db.execute("UPDATE boxes SET last_seen = ? WHERE id = ?", [to_iso(now), box_id])

    def boxes(self) -> list[dict]:
        return list(self.db.query("SELECT id, name, enrolled_at, last_seen FROM boxes ORDER BY name, id"))

    # what the HTTP layer and the CLI call: the work is done by the collaborators ----------------------
    def start_upload(self, box_id: str, recording_id: str, sha256: str, size: int, metadata: dict) -> UploadState:
        return self.uploads.start_upload(box_id, recording_id, sha256, size, metadata)

    def upload_state(self, box_id: str, sha256: str) -> UploadState:
        return self.uploads.upload_state(box_id, sha256)

    def write_part(self, box_id: str, sha256: str, offset: int, data: bytes) -> int:
        return self.uploads.write_part(box_id, sha256, offset, data)

    def open_stream(self, box_id: str, sha256: str, offset: int, claimed: str, length: int | None) -> Stream:
        return self.uploads.open_stream(box_id, sha256, offset, claimed, length)

    def discard_upload(self, box_id: str, sha256: str) -> None:
        self.uploads.discard(box_id, sha256)

    def complete_upload(self, box_id: str, sha256: str) -> dict:
        return self.uploads.complete_upload(box_id, sha256)

    def update_metadata(self, box_id: str, sha256: str, metadata: dict) -> None:
        self.uploads.update_metadata(box_id, sha256, metadata)

    def add_requisition(self, actor: str, **what) -> int:
        return self._requisitions.add(actor, **what)

    def close_requisition(self, actor: str, req_id: int) -> None:
        self._requisitions.close(actor, req_id)

    def requisitions(self) -> list[dict]:
        return self._requisitions.all()

    def open_requisitions_for(self, box_id: str) -> list[dict]:
        return self._requisitions.open_for(box_id)

    def report_requisition(self, box_id: str, req_id: int, matched: list[str]) -> None:
        self._requisitions.report(box_id, req_id, matched)

    def last_checkpoint(self, box_id: str) -> dict:
        return self.checkpoints.last(box_id)

    def receive_checkpoint(self, box_id: str, cp: dict, prior: dict | None,
                           witnessed_prior: dict | None = None) -> dict:
        return self.checkpoints.receive(box_id, cp, prior, witnessed_prior)

    def witnessed_checkpoints(self, box_id: str) -> list[dict]:
        return self.checkpoints.witnessed(box_id)

    def restart_witness(self, box_id: str, actor: str, reason: str) -> dict | None:
        return self.checkpoints.restart(box_id, actor, reason)

    def alert(self, box_id: str | None, kind: str, details: dict) -> None:
        self.checkpoints.raise_alert(box_id, kind, details)

    def alerts(self, box_id: str | None = None) -> list[dict]:
        return self.checkpoints.alerts(box_id)

    # finding and reading evidence -------------------------------------------------------------------
    def list_recordings(self, box_id: str | None = None, case_ref: str | None = None, start: str | None = None,
                        end: str | None = None) -> list[dict]:
        sql = ("SELECT r.sha256, r.box_id, b.name AS box_name, r.recording_id, r.size, r.camera_serial, r.officer, "
               "r.start_time, r.end_time, r.case_refs, r.received_at FROM recordings r "
               "LEFT JOIN boxes b ON b.id = r.box_id WHERE 1=1")
        params: list = []
        if box_id:
            sql += " AND (r.box_id = ? OR b.name = ?)"
            params += [box_id, box_id]
        if case_ref:
            sql += " AND (' ' || r.case_refs || ' ') LIKE ?"
            params.append(f"% {case_ref} %")
        if start:
            sql += " AND r.end_time >= ?"
            params.append(start)
        if end:
            sql += " AND r.start_time < ?"
            params.append(end)
        return list(self.db.query(sql + " ORDER BY r.start_time, r.sha256", params))

    def find(self, ref: str) -> dict:
        """A recording by its hash (or a unique prefix of at least 8) or by the box's recording id."""
        rows = list(self.db.query("SELECT * FROM recordings WHERE recording_id = ? OR sha256 LIKE ?",
                                  [ref, ref.lower() + "%" if len(ref) >= 8 else ref]))
        if len(rows) != 1:
            raise NotFound(f"no recording {ref!r}" if not rows else f"{ref!r} is ambiguous ({len(rows)} match)")
        row = rows[0]
        row["metadata"] = json.loads(row["metadata"])
        row["receipt"] = json.loads(row["receipt"])
        return row

    def decrypt(self, identity: PrivateKey, sha256: str) -> Iterator[bytes]:
        """The plaintext of a stored recording. Callers record who reads and why before the first byte."""
        row = self.find(sha256)
        with open(self.data_dir / row["stored_path"], "rb") as f:
            header = parse_header(f.read(row["header_size"]))
            decryptor = Decryptor(header, header.unwrap(identity))
            yield from decryptor.stream(f)

