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
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from nacl.public import PrivateKey
from nacl.signing import SigningKey, VerifyKey

from appliance import audit as audit_log
from appliance.appendfile import AppendFile
from appliance import keys, tls
from appliance.catalog import MIGRATIONS, _statements, connect, transaction
from appliance.clock import Clock, system_clock, to_iso
from appliance.container import Decryptor, header_length, parse_header, PREFIX
from appliance.errors import ContainerError, KluisError, NotFound, NotInitialized, WrongSecret
from appliance.durable import fsync_dir
from appliance.vault import READ_BLOCK

from ..protocol import MAX_SKEW, ProtocolError, box_id_of, sign_receipt

DB = "archive.db"
SIGNING_KEY = "keys/signing.key"
MAX_CONTAINER = 64 * 1024**3
SYNC_EVERY = 64 * 1024 * 1024  # fsync a part file at least this often during an upload  # a declared size above this is refused before a byte is sent

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE tokens (
    hash TEXT PRIMARY KEY,          -- sha256 of the token's secret: the token itself is never stored
    created_at TEXT NOT NULL,
    used_at TEXT,
    box_id TEXT
);
CREATE TABLE boxes (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    signing_key TEXT NOT NULL,      -- Ed25519, hex: verifies the box's requests and checkpoints
    public_key TEXT NOT NULL,       -- X25519, hex
    enrolled_at TEXT NOT NULL,
    last_seen TEXT
);
CREATE TABLE nonces (
    box_id TEXT NOT NULL,
    nonce TEXT NOT NULL,
    seen_at TEXT NOT NULL,
    PRIMARY KEY (box_id, nonce)
);
CREATE INDEX nonces_seen ON nonces(seen_at);
CREATE TABLE uploads (
    box_id TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    recording_id TEXT NOT NULL,
    size INTEGER NOT NULL,
    metadata TEXT NOT NULL,
    started_at TEXT NOT NULL,
    PRIMARY KEY (box_id, sha256)
);
CREATE TABLE recordings (
    sha256 TEXT PRIMARY KEY,        -- of the whole container, as on the box
    box_id TEXT NOT NULL,
    recording_id TEXT NOT NULL,     -- the box's id for it
    size INTEGER NOT NULL,          -- container bytes
    header_size INTEGER NOT NULL,
    camera_serial TEXT,
    officer TEXT,
    start_time TEXT,
    end_time TEXT,
    case_refs TEXT NOT NULL DEFAULT '',   -- space-separated, for search
    metadata TEXT NOT NULL,         -- JSON the box sent (holds, times, ...), updated as holds change
    received_at TEXT NOT NULL,
    receipt TEXT NOT NULL,          -- JSON, signed
    stored_path TEXT NOT NULL
);
CREATE INDEX recordings_box ON recordings(box_id, start_time);
CREATE INDEX recordings_time ON recordings(start_time);
CREATE TABLE requisitions (
    id INTEGER PRIMARY KEY,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL,
    camera_serial TEXT,
    officer TEXT,
    start_time TEXT,
    end_time TEXT,
    recording_id TEXT,
    legal_basis TEXT NOT NULL,
    case_ref TEXT NOT NULL,
    closed_at TEXT
);
CREATE TABLE requisition_reports (
    requisition_id INTEGER NOT NULL REFERENCES requisitions(id),
    box_id TEXT NOT NULL,
    reported_at TEXT NOT NULL,
    matched TEXT NOT NULL,          -- JSON list of the box's recording ids ([] = nothing matched)
    PRIMARY KEY (requisition_id, box_id)
);
CREATE TABLE checkpoints (
    id INTEGER PRIMARY KEY,
    box_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    head TEXT NOT NULL,
    signed TEXT NOT NULL,
    received_at TEXT NOT NULL
);
CREATE INDEX checkpoints_box ON checkpoints(box_id, seq);
CREATE TABLE alerts (
    id INTEGER PRIMARY KEY,
    box_id TEXT,
    kind TEXT NOT NULL,
    details TEXT NOT NULL,
    created_at TEXT NOT NULL
);
"""


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
    with transaction(db):
        # The archive's own audit log is the box's (appliance/audit.py), in the same table shapes.
        for statement in [*_statements(SCHEMA), *_statements(dict(MIGRATIONS)["audit"])]:
            db.execute(statement)
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


@dataclass(frozen=True)
class UploadState:
    complete: bool
    offset: int
    receipt: dict | None = None


class Archive:
    def __init__(self, data_dir: Path, clock: Clock = system_clock):
        self.data_dir = Path(data_dir)
        if not (self.data_dir / DB).exists():
            raise NotInitialized(f"no archive at {self.data_dir} (run: kluis archive init --data {self.data_dir})")
        self.clock = clock
        self.db = connect(self.data_dir / DB)
        self._nonces = None
        self.meta = {k: v for k, v in self.db.execute("SELECT key, value FROM meta")}
        self.archive_id = self.meta["archive_id"]
        self.public_key = bytes.fromhex(self.meta["public_key"])
        self.signing_public_key = bytes.fromhex(self.meta["signing_public_key"])
        self.tmp = self.data_dir / "tmp"
        self._signing: SigningKey | None = None
        # (box, sha256) -> [offset, running sha256, bytes not yet fsynced] of uploads in progress
        self._running: dict[tuple[str, str], list] = {}

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
        return tls.fingerprint(self.data_dir).replace(":", "").lower()

    def info(self) -> dict:
        return {"archive_id": self.archive_id, "name": self.meta["name"], "public_key": self.public_key.hex(),
                "signing_key": self.signing_public_key.hex()}

    def unlock(self, password: str) -> PrivateKey:
        return self._identity(keys.open_slot(json.loads(self.meta["key_slot"]), password))

    def unlock_recovery(self, recovery_key: str) -> PrivateKey:
        return self._identity(keys.open_recovery_slot(json.loads(self.meta["recovery_slot"]), recovery_key))

    def _identity(self, secret: bytes | None) -> PrivateKey:
        identity = PrivateKey(secret)
        if bytes(identity.public_key) != self.public_key:
            raise WrongSecret("key slot holds a key of another archive")
        return identity

    def _one(self, sql: str, params=()) -> dict | None:
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
            row = self._one("SELECT * FROM tokens WHERE hash = ?", [digest])
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
        row = self._one("SELECT signing_key FROM boxes WHERE id = ?", [box_id])
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

    # uploads ----------------------------------------------------------------------------------------
    def _part(self, box_id: str, sha256: str) -> Path:
        return self.tmp / f"{box_id}-{sha256}.part"

    def _receipt_for(self, box_id: str, sha256: str) -> dict | None:
        row = self._one("SELECT receipt, box_id FROM recordings WHERE sha256 = ?", [sha256])
        if row is None:
            return None
        if row["box_id"] != box_id:
            raise ProtocolError("this container was sent by another box", 409)
        return json.loads(row["receipt"])

    def start_upload(self, box_id: str, recording_id: str, sha256: str, size: int, metadata: dict) -> UploadState:
        """Open (or find) an upload. The offset is what the archive holds durably: resume from there."""
        if not _is_sha256(sha256):
            raise ProtocolError("sha256 must be 64 lowercase hex digits", 400)
        if not isinstance(size, int) or not 0 < size <= MAX_CONTAINER:
            raise ProtocolError(f"declared size {size} is not between 1 and {MAX_CONTAINER} bytes", 413)
        if not isinstance(recording_id, str) or not 0 < len(recording_id) <= 64:
            raise ProtocolError("recording_id missing", 400)
        receipt = self._receipt_for(box_id, sha256)
        if receipt is not None:
            return UploadState(True, size, receipt)
        with self.transaction():
            row = self._one("SELECT * FROM uploads WHERE box_id = ? AND sha256 = ?", [box_id, sha256])
            if row is not None and row["size"] != size:
                raise ProtocolError(f"an upload of this hash with size {row['size']} is open", 409)
            if row is None:
                self.db.execute(
                    "INSERT INTO uploads (box_id, sha256, recording_id, size, metadata, started_at) "
                    "VALUES (?,?,?,?,?,?)", [box_id, sha256, recording_id, size, json.dumps(metadata),
                                             self.now_iso()])
        part = self._part(box_id, sha256)
        return UploadState(False, part.stat().st_size if part.exists() else 0)

    def upload_state(self, box_id: str, sha256: str) -> UploadState:
        """Where an upload stands: stored (with its receipt), or the bytes received so far, a stream in
        progress included (what the box would resume from if the link dropped now)."""
        if not _is_sha256(sha256):
            raise ProtocolError("sha256 must be 64 lowercase hex digits", 400)
        receipt = self._receipt_for(box_id, sha256)
        if receipt is not None:
            return UploadState(True, receipt["size"], receipt)
        self._upload(box_id, sha256)
        part = self._part(box_id, sha256)
        return UploadState(False, part.stat().st_size if part.exists() else 0)

    def _upload(self, box_id: str, sha256: str) -> dict:
        row = self._one("SELECT * FROM uploads WHERE box_id = ? AND sha256 = ?", [box_id, sha256])
        if row is None:
            raise ProtocolError("no open upload for this hash (start one first)", 404)
        return row

    def _discard(self, box_id: str, sha256: str) -> None:
        self._running.pop((box_id, sha256), None)
        self._part(box_id, sha256).unlink(missing_ok=True)
        self.db.execute("DELETE FROM uploads WHERE box_id = ? AND sha256 = ?", [box_id, sha256])

    def write_part(self, box_id: str, sha256: str, offset: int, data: bytes) -> int:
        """Append one part at `offset` (which must be the committed offset, the part file's length).

        The part is in the file before the answer, so a crash of the archive's process loses nothing.
        The file is fsynced every SYNC_EVERY bytes and before it is renamed into place (not after every
        part: that costs a third of the throughput). A power cut may lose the unsynced tail; the box then
        learns the shorter offset and sends it again, and the full hash at completion catches the rest."""
        row = self._upload(box_id, sha256)
        part = self._part(box_id, sha256)
        current = part.stat().st_size if part.exists() else 0
        if offset != current:
            raise ProtocolError(f"offset {offset} is not the committed offset {current}", 409)
        if current + len(data) > row["size"]:
            raise ProtocolError(f"part runs past the declared size {row['size']}", 413)
        if offset == 0:
            self._check_header(box_id, sha256, data)
        key = (box_id, sha256)
        running = self._running.pop(key, None)
        if offset == 0:
            running = [0, hashlib.sha256(), 0]
        with open(part, "ab") as f:
            f.write(data)
            if running is not None and running[0] == offset:
                running[0] += len(data)
                running[1].update(data)
                running[2] += len(data)
                if running[2] >= SYNC_EVERY:
                    f.flush()
                    os.fsync(f.fileno())
                    running[2] = 0
                self._running[key] = running
            else:  # resumed after a restart: no running hash; complete_upload reads the file again
                f.flush()
                os.fsync(f.fileno())
        return current + len(data)

    def open_stream(self, box_id: str, sha256: str, offset: int, claimed: str, length: int | None) -> "Stream":
        """Begin a streamed body: the rest of the container, [offset, size), in one request (see
        sync/protocol.py for what is verified when). The caller allows one stream per upload at a time."""
        row = self._upload(box_id, sha256)
        part = self._part(box_id, sha256)
        current = part.stat().st_size if part.exists() else 0
        if offset != current:
            raise ProtocolError(f"offset {offset} is not the committed offset {current}", 409)
        if length is not None and offset + length != row["size"]:
            raise ProtocolError(f"a stream carries the rest of the container: {row['size'] - offset} bytes, "
                                f"not {length} (the declared size is {row['size']})",
                                413 if offset + length > row["size"] else 400)
        if offset == 0 and claimed != sha256:
            # From offset 0 the range is the whole container: its signed hash is the declared one.
            raise ProtocolError("body does not match its signed hash (altered in transit)", 422)
        running = self._running.pop((box_id, sha256), None)
        if offset == 0:
            running = [0, hashlib.sha256(), 0]
        elif running is not None and running[0] != offset:
            running = None
        return Stream(self, box_id, sha256, part, offset, row["size"], claimed, running)

    def _check_header(self, box_id: str, sha256: str, head: bytes, whole: bool = False):
        """Refuse a container that is not one, or that the archive could never open: early, from the
        first part (if it holds the whole header), and again on completion (`whole`)."""
        try:
            return self._header_of(head, whole)
        except ContainerError as exc:
            self._discard(box_id, sha256)
            raise ProtocolError(f"refused: {exc}", 422) from None

    def _header_of(self, head: bytes, whole: bool = False):
        """The container's header once `head` holds all of it (else None); ContainerError if it is not a
        container or does not name the archive as a recipient."""
        if whole or (len(head) >= PREFIX.size and len(head) >= header_length(head)):
            header = parse_header(head)
            if self.public_key not in header.recipients:
                raise ContainerError("the archive is not a recipient of this container")
            return header
        return None

    def complete_upload(self, box_id: str, sha256: str) -> dict:
        """Verify the whole container (size, hash, header, recipient), move it into place durably, and
        return the signed receipt. A repeat returns the same receipt; a bad upload is discarded."""
        receipt = self._receipt_for(box_id, sha256)
        if receipt is not None:
            return receipt
        row = self._upload(box_id, sha256)
        part = self._part(box_id, sha256)
        have = part.stat().st_size if part.exists() else 0
        if have != row["size"]:
            raise ProtocolError(f"incomplete: {have} of {row['size']} bytes received", 409)
        running = self._running.pop((box_id, sha256), None)
        with open(part, "rb") as f:
            os.fsync(f.fileno())
            head = f.read(READ_BLOCK)
            if running is not None and running[0] == have and running[1].hexdigest() == sha256:
                digest = running[1]
            else:  # after a restart (or a running hash that disagrees): the file is what counts
                digest = hashlib.sha256(head)
                while block := f.read(READ_BLOCK):
                    digest.update(block)
        if digest.hexdigest() != sha256:
            self._discard(box_id, sha256)
            raise ProtocolError(f"container hash mismatch: declared {sha256}, received {digest.hexdigest()}"
                                "; discarded", 422)
        header = self._check_header(box_id, sha256, head, whole=True)
        rel = f"blobs/{sha256[:2]}/{sha256}"
        final = self.data_dir / rel
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(part, final)
        fsync_dir(final.parent)
        metadata = json.loads(row["metadata"])
        now = self.now_iso()
        receipt = sign_receipt(self.signing_key, {"archive": self.archive_id, "box": box_id,
                                                  "recording_id": row["recording_id"], "sha256": sha256,
                                                  "size": row["size"], "received_at": now})
        with self.transaction():
            self.db["recordings"].insert({
                "sha256": sha256, "box_id": box_id, "recording_id": row["recording_id"], "size": row["size"],
                "header_size": header.size, "camera_serial": metadata.get("camera_serial"),
                "officer": metadata.get("officer"), "start_time": metadata.get("start_time"),
                "end_time": metadata.get("end_time"), "case_refs": _case_refs(metadata),
                "metadata": json.dumps(metadata), "received_at": now, "receipt": json.dumps(receipt),
                "stored_path": rel,
            })
            self.db.execute("DELETE FROM uploads WHERE box_id = ? AND sha256 = ?", [box_id, sha256])
            self.audit("system", "receive", box_id=box_id, sha256=sha256,
                       details={"recording_id": row["recording_id"], "size": row["size"]})
        return receipt

    def update_metadata(self, box_id: str, sha256: str, metadata: dict) -> None:
        """Holds released, case references added: the box's view of a recording it sent, kept current."""
        row = self._one("SELECT box_id FROM recordings WHERE sha256 = ?", [sha256])
        if row is None or row["box_id"] != box_id:
            raise ProtocolError("no recording with this hash from this box", 404)
        with self.transaction():
            self.db.execute("UPDATE recordings SET metadata = ?, case_refs = ? WHERE sha256 = ?",
                            [json.dumps(metadata), _case_refs(metadata), sha256])
            self.audit("system", "metadata_update", box_id=box_id, sha256=sha256,
                       details={"holds": metadata.get("holds", [])})

    # requisitions -----------------------------------------------------------------------------------
    def add_requisition(self, actor: str, *, legal_basis: str, case_ref: str, camera_serial: str | None = None,
                        officer: str | None = None, start_time: str | None = None, end_time: str | None = None,
                        recording_id: str | None = None) -> int:
        if not legal_basis.strip() or not case_ref.strip():
            raise KluisError("a requisition needs a legal basis and a case reference")
        if recording_id is None and not (camera_serial or officer):
            raise KluisError("a requisition names a recording id, or a camera or an officer")
        if recording_id is None and not (start_time and end_time):
            raise KluisError("a requisition by camera or officer needs a time window (start and end)")
        if start_time and end_time and end_time <= start_time:
            raise KluisError("the time window ends before it starts")
        with self.transaction():
            cursor = self.db.execute(
                "INSERT INTO requisitions (created_at, created_by, camera_serial, officer, start_time, end_time, "
                "recording_id, legal_basis, case_ref) VALUES (?,?,?,?,?,?,?,?,?)",
                [self.now_iso(), actor, camera_serial, officer, start_time, end_time, recording_id,
                 legal_basis, case_ref])
            req_id = cursor.lastrowid
            self.audit(actor, "requisition_add", case_ref=case_ref,
                       details={"requisition": req_id, "legal_basis": legal_basis})
        return req_id

    def close_requisition(self, actor: str, req_id: int) -> None:
        with self.transaction():
            if self._one("SELECT 1 AS x FROM requisitions WHERE id = ?", [req_id]) is None:
                raise NotFound(f"no requisition {req_id}")
            self.db.execute("UPDATE requisitions SET closed_at = ? WHERE id = ?", [self.now_iso(), req_id])
            self.audit(actor, "requisition_close", details={"requisition": req_id})

    def requisitions(self) -> list[dict]:
        rows = list(self.db.query("SELECT * FROM requisitions ORDER BY id"))
        for row in rows:
            row["reports"] = [
                {**r, "matched": json.loads(r["matched"])}
                for r in self.db.query("SELECT box_id, reported_at, matched FROM requisition_reports "
                                       "WHERE requisition_id = ? ORDER BY box_id", [row["id"]])]
        return rows

    def open_requisitions_for(self, box_id: str) -> list[dict]:
        """Open requisitions this box has not answered yet."""
        return list(self.db.query(
            "SELECT id, camera_serial, officer, start_time, end_time, recording_id, legal_basis, case_ref "
            "FROM requisitions WHERE closed_at IS NULL AND id NOT IN "
            "(SELECT requisition_id FROM requisition_reports WHERE box_id = ?) ORDER BY id", [box_id]))

    def report_requisition(self, box_id: str, req_id: int, matched: list[str]) -> None:
        if not isinstance(matched, list) or not all(isinstance(m, str) for m in matched):
            raise ProtocolError("matched must be a list of recording ids", 400)
        with self.transaction():
            if self._one("SELECT 1 AS x FROM requisitions WHERE id = ?", [req_id]) is None:
                raise ProtocolError(f"no requisition {req_id}", 404)
            self.db.execute("INSERT OR REPLACE INTO requisition_reports (requisition_id, box_id, reported_at, "
                            "matched) VALUES (?,?,?,?)", [req_id, box_id, self.now_iso(), json.dumps(matched)])
            self.audit("system", "requisition_report", box_id=box_id,
                       details={"requisition": req_id, "matched": matched})

    # audit checkpoints ------------------------------------------------------------------------------
    def last_checkpoint(self, box_id: str) -> dict:
        row = self._one("SELECT seq, head, received_at FROM checkpoints WHERE box_id = ? ORDER BY id DESC LIMIT 1",
                        [box_id])
        return {"count": row["seq"], "head": row["head"], "received_at": row["received_at"]} if row else {
            "count": None, "head": None, "received_at": None}

    def receive_checkpoint(self, box_id: str, cp: dict, prior: dict | None) -> dict:
        """Keep a box's signed audit checkpoint and hold it to the last one: a log that went backwards,
        or whose entry at the last count is not the one signed before (rewritten, forked), raises an
        alert. The checkpoint is kept either way, as evidence."""
        if not isinstance(cp, dict):
            raise ProtocolError("checkpoint missing", 400)
        wrong = audit_log.check_signature(cp, VerifyKey(self.box_key(box_id)))
        if wrong:
            with self.transaction():
                self.alert(box_id, "bad_checkpoint", {"problem": wrong})
                self.audit("system", "checkpoint_refused", box_id=box_id, details={"problem": wrong})
            raise ProtocolError(f"checkpoint refused: {wrong}", 422)
        count, head = int(cp["count"]), str(cp["head"])
        with self.transaction():
            last = self.last_checkpoint(box_id)
            alert = None
            if last["count"] is not None:
                seen, seen_head = last["count"], last["head"]
                if count < seen:
                    alert = ("audit_backwards", f"the box's audit log went back from {seen} to {count} entries")
                elif count == seen and head != seen_head:
                    alert = ("audit_fork", f"two different logs signed at {count} entries")
                elif count > seen and (not isinstance(prior, dict) or prior.get("count") != seen
                                       or prior.get("hash") != seen_head):
                    alert = ("audit_fork", f"the box's log no longer contains entry {seen} as signed before "
                                           f"(rewritten or truncated and re-signed)")
            self.db.execute("INSERT INTO checkpoints (box_id, seq, head, signed, received_at) VALUES (?,?,?,?,?)",
                            [box_id, count, head, json.dumps(cp, sort_keys=True), self.now_iso()])
            if alert:
                kind, text = alert
                self.alert(box_id, kind, {"message": text, "count": count, "previous": last, "prior": prior})
                self.audit("system", kind, box_id=box_id, details={"message": text})
        return {"accepted": True, "alert": alert[0] if alert else None}

    # alerts -----------------------------------------------------------------------------------------
    def alert(self, box_id: str | None, kind: str, details: dict) -> None:
        self.db.execute("INSERT INTO alerts (box_id, kind, details, created_at) VALUES (?,?,?,?)",
                        [box_id, kind, json.dumps(details, sort_keys=True), self.now_iso()])

    def alerts(self, box_id: str | None = None) -> list[dict]:
        sql, params = "SELECT * FROM alerts", []
        if box_id:
            sql, params = sql + " WHERE box_id = ?", [box_id]
        return [{**r, "details": json.loads(r["details"])} for r in self.db.query(sql + " ORDER BY id", params)]

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


class Stream:
    """One streamed body being appended to an upload's part file (blocking calls: run them in a thread).

    The bytes go through appliance.appendfile: hashed on a helper thread while this one writes them,
    with writeback started as they go so that the periodic fsync is short. From offset 0 the running
    container hash is also the range hash, so every byte is hashed once; a stream resumed at a later
    offset hashes its range besides (and the container hash continues if this process saw the bytes
    before, else completion reads the file again)."""

    def __init__(self, archive: Archive, box_id: str, sha256: str, part: Path, offset: int, size: int,
                 claimed: str, running: list | None):
        self.archive, self.box_id, self.sha256 = archive, box_id, sha256
        self.start, self.offset, self.size, self.claimed = offset, offset, size, claimed
        self.running = running
        self.range_hash = None if offset == 0 else hashlib.sha256()
        self.unsynced = 0
        hashes = [h for h in (running[1] if running else None, self.range_hash) if h is not None]
        # Not staged: the offset the progress feed reports (what the box paces its window by) is then
        # in the file, and survives this process being killed.
        self.file = AppendFile(part, hashes, staged=False)
        self.head = b""  # the first bytes of the container, until its header can be checked

    def write(self, blocks: list[bytes]) -> None:
        """Append blocks as they came off the socket (not joined: big buffers cost page faults here)."""
        total = sum(map(len, blocks))
        if self.offset + total > self.size:
            self._rollback()
            raise ProtocolError(f"body runs past the declared size {self.size}", 413)
        if self.start == 0:  # refuse what the archive could never open, early
            for data in blocks:
                if self.head is None:
                    break
                self._check_head(data)
        try:
            self.file.write_all(blocks)
        except OSError:
            self.running = None  # the hash saw bytes the file may lack: completion reads the file instead
            raise
        self.offset += total
        if self.running is not None:
            self.running[0] += total
        self.unsynced += total
        if self.unsynced >= SYNC_EVERY:  # a durable offset to resume from, as the stream goes
            self._sync()

    def _check_head(self, data: bytes) -> None:
        self.head += data[:READ_BLOCK - len(self.head)]
        try:
            checked = self.archive._header_of(self.head)
        except ContainerError as exc:
            self._rollback()
            raise ProtocolError(f"refused: {exc}", 422) from None
        if checked is not None or len(self.head) >= READ_BLOCK:
            self.head = None

    def _sync(self) -> None:
        self.file.sync()  # also completes the hashes of everything written
        self.unsynced = 0

    def _rollback(self) -> None:
        """Take this stream's bytes back out: they did not verify (or ran past the declared size)."""
        self.file.truncate(self.start)
        self.file.close()
        self.archive._running.pop((self.box_id, self.sha256), None)

    def finish(self) -> int:
        """The whole range arrived: verify it against its signed hash before it counts, then make it
        durable. Returns the committed offset (the declared size)."""
        if self.offset != self.size:
            self.close()
            raise ProtocolError(f"the stream ended at {self.offset} of {self.size} bytes", 400)
        self._sync()
        digest = (self.range_hash or self.running[1]).hexdigest()
        if digest != self.claimed:
            self._rollback()
            raise ProtocolError("body does not match its signed hash (altered in transit); discarded", 422)
        self.file.close()
        if self.running is not None:
            self.archive._running[(self.box_id, self.sha256)] = self.running
        return self.offset

    def close(self) -> None:
        """The stream was cut: keep what arrived, durably, as the offset to resume from. Those bytes came
        from the box's signed request over the pinned TLS connection; the container hash checks them
        (with everything else) before the upload is stored, and a mismatch discards the whole upload."""
        if self.file.closed:
            return
        self._sync()
        self.file.close()
        if self.running is not None:
            self.archive._running[(self.box_id, self.sha256)] = self.running


def _is_sha256(value) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def _case_refs(metadata: dict) -> str:
    refs = {h.get("case_ref") for h in metadata.get("holds", []) if isinstance(h, dict) and h.get("case_ref")}
    return " ".join(sorted(str(r).replace(" ", "_") for r in refs))
