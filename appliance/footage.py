"""The one gate to footage: no byte of a recording is decrypted before its purpose is in the audit log.

Every reader of a recording's plaintext asks here: the web player and download, `kluis cat`, the
redaction's still and its job, and handover packages with their clips. The gate checks the reader's
role, their scope and the purpose (with its case reference), commits the audit entry, and only then
hands out a `Footage`: the only object in the box that decrypts a recording. The container's
`Decryptor` and the header's key unwrap are used nowhere else; tests/test_footage_gate.py fails when
another module reaches for them.

A refusal (`Refused`) writes nothing and reads nothing. The front ends word a refusal themselves from
its `why` (the web UI in Dutch), but they cannot skip a check: the gate makes the same checks again.
"""

from __future__ import annotations

import hashlib
import io
from typing import BinaryIO, Generator

from nacl.public import PrivateKey

from . import audit, purposes, roles, statistics
from .box import Box
from .container import Decryptor, parse_header
from .errors import KluisError, NotFound

# Why the gate refused (Refused.why): the front ends choose their wording by it.
ROLE = "role"                  # the role does not read footage this way at all
UNKNOWN_PURPOSE = "purpose"    # no purpose, or not one of appliance.purposes
ROLE_PURPOSE = "role_purpose"  # the role may not name this purpose (an officer: training only)
CASE_REF = "case_ref"          # the purpose needs a case reference and none was given
SCOPE = "scope"                # the recording is outside the user's scope
NO_KEY = "no_key"              # the reader holds no unlocked box key
DELETED = "deleted"            # the recording's file key is gone


class Refused(roles.Forbidden):
    """The gate said no: nothing was read and nothing was written to the audit log."""

    def __init__(self, why: str, message: str):
        super().__init__(message)
        self.why = why


def _who(user: dict) -> str:
    return f"{user['name']} (role {user['role']})"


def _check_known(purpose: str, allowed: tuple[str, ...] | None = None) -> None:
    if purpose not in (allowed or purposes.PURPOSES):
        raise Refused(UNKNOWN_PURPOSE, f"footage is not read for the purpose {purpose!r}")


def check_case_ref(purpose: str, case_ref: str | None, *, export: bool = False) -> None:
    """A purpose that needs a case reference has one (appliance.purposes.needs_case_ref)."""
    if purposes.needs_case_ref(purpose, export) and not case_ref:
        raise Refused(CASE_REF, f"reading footage for {purpose} needs the case reference (zaaknummer)")


def check_reader(box: Box, user: dict, recording: dict, purpose: str, permission: str) -> None:
    """The user's role allows `permission` (and, for viewing, this purpose) and the recording is in scope."""
    if user.get("disabled"):
        raise Refused(ROLE, f"user {user['name']!r} is disabled")
    if not roles.allowed(user["role"], permission):
        raise Refused(ROLE, f"{_who(user)} may not do this ({permission})")
    if permission == roles.RECORDINGS_VIEW and not roles.may_view_purpose(user["role"], purpose):
        raise Refused(ROLE_PURPOSE, f"{_who(user)} may not view footage for the purpose {purpose}")
    if not roles.recording_in_scope(box.catalog, user, recording):
        raise Refused(SCOPE, f"{_who(user)} may not view recording {recording['id']}: not in their scope")


def check_viewing(box: Box, user: dict | None, recording: dict, purpose: str, case_ref: str | None, *,
                  export: bool = False) -> None:
    """Everything `open_for_viewing` checks that needs no key, in its order: for a front end that asks
    before a password. `user` None: break-glass (no role, no scope)."""
    _check_known(purpose)
    if user is not None:
        check_reader(box, user, recording, purpose, roles.RECORDINGS_EXPORT if export else roles.RECORDINGS_VIEW)
    check_case_ref(purpose, case_ref, export=export)


def viewable(box: Box, recording_id: str) -> bool:
    """Whether the recording can still be opened at all (its file key is not shredded)."""
    try:
        box.catalog.header_of(recording_id)
    except NotFound:
        return False
    return True


def _decryptor(box: Box, identity: PrivateKey | None, recording: dict) -> Decryptor:
    if identity is None:
        raise Refused(NO_KEY, "this reader holds no key to open recordings")
    try:
        header = parse_header(box.catalog.header_of(recording["id"]))
    except NotFound:
        raise Refused(DELETED, f"recording {recording['id']} has been deleted; it can no longer be read") from None
    return Decryptor(header, header.unwrap(identity))


def _record(box: Box, entries: list[dict]) -> list[int]:
    """Commit the audit entries; a gate inside someone else's open transaction could not promise that."""
    if box.catalog.db.conn.in_transaction:
        raise KluisError("footage is opened only outside an open transaction: its audit entry must be committed "
                         "first")
    with box.catalog.transaction():
        seqs = [audit.record(box.catalog, clock=box.clock, **entry) for entry in entries]
        for entry in entries:
            statistics.count_read(box.catalog, entry["recording_id"], entry["action"], entry.get("purpose"))
    return seqs


def open_for_viewing(box: Box, user: dict | None, recording_id: str, purpose: str, case_ref: str | None, *,
                     identity: PrivateKey | None, export: bool = False, action: str | None = None,
                     client: str | None = None, details: dict | None = None, actor: str | None = None,
                     break_glass: bool = False) -> Footage:
    """Watch (or, `export`, download) a recording: checks, the audit entry ('view', 'range_read' or
    'export'), then the reader. `user` is the reader's users row; None only on the break-glass path
    (`break_glass`: the recovery key, whose own 'break_glass' entry is already committed), which passes
    the role and scope but not the purpose."""
    recording = box.catalog.get_recording(recording_id)
    if user is None and not break_glass:
        raise Refused(ROLE, "footage is read by a user (or with the recovery key)")
    check_viewing(box, None if break_glass else user, recording, purpose, case_ref, export=export)
    decryptor = _decryptor(box, identity, recording)
    if actor:
        name = actor
    elif user is not None:
        name = user["name"]
    else:
        raise ValueError("the break-glass path names its actor")
    [seq] = _record(box, [dict(actor=name, action=action or ("export" if export else "view"),
                               recording_id=recording_id, purpose=purpose, case_ref=case_ref or None,
                               client=client, details=details)])
    return Footage(box, recording, decryptor, seq)


def open_for_redaction(box: Box, actor: str, recording_id: str, purpose: str, case_ref: str | None, *,
                       identity: PrivateKey | None, allowed: tuple[str, ...], action: str,
                       client: str | None = None, details: dict | None = None, break_glass: bool = False) -> Footage:
    """Read a recording to make (or draw on a still of) a redacted copy: the role recordings.redact, the
    recording in scope, a purpose a redacted copy is made for (`allowed`); then the audit entry `action`
    ('redact_start' for the job, 'view' for the still)."""
    recording = box.catalog.get_recording(recording_id)
    _check_known(purpose, allowed)
    if not break_glass:
        try:
            user = box.catalog.get_user(actor)
        except NotFound:
            raise Refused(ROLE, f"{actor!r} is no user of this box") from None
        check_reader(box, user, recording, purpose, roles.RECORDINGS_REDACT)
    if recording.get("state") != "stored":
        raise Refused(DELETED, f"recording {recording_id} is {recording.get('state')}: it cannot be read")
    decryptor = _decryptor(box, identity, recording)
    [seq] = _record(box, [dict(actor=actor, action=action, recording_id=recording_id, purpose=purpose,
                               case_ref=case_ref, client=client, details=details)])
    return Footage(box, recording, decryptor, seq)


def open_for_handover(box: Box, handover: dict, actor: str, identity: PrivateKey | None, *,
                      client: str | None = None) -> dict[str, Footage]:
    """The recordings of a handover being approved, by recording id: the approver's role and scope, the
    handover's purpose and case, then one 'handover_approve' entry per recording (one transaction)."""
    try:
        user = box.catalog.get_user(actor)
    except NotFound:
        raise Refused(ROLE, f"{actor!r} is no user of this box") from None
    _check_known(handover["purpose"])
    check_case_ref(handover["purpose"], handover["case_ref"], export=True)
    found = []
    for item in handover["items"]:
        recording = box.catalog.get_recording(item["recording_id"])
        check_reader(box, user, recording, handover["purpose"], roles.HANDOVER_APPROVE)
        found.append((recording, _decryptor(box, identity, recording)))
    details = {"handover": handover["id"], "prepared_by": handover["prepared_by"],
               "single_approval": actor == handover["prepared_by"], "protection": handover["protection"],
               "receiver": handover["receiver"]}
    seqs = _record(box, [dict(actor=actor, action="handover_approve", recording_id=item["recording_id"],
                              purpose=handover["purpose"], case_ref=handover["case_ref"], client=client,
                              details=details) for item in handover["items"]])
    return {recording["id"]: Footage(box, recording, decryptor, seq)
            for (recording, decryptor), seq in zip(found, seqs)}


def check_chunks(box: Box, identity: PrivateKey, recording: dict, header_raw: bytes) -> str | None:
    """`kluis verify --deep`: hash and authenticate every chunk in one pass; what is wrong, or None.
    The plaintext goes nowhere (no footage is shown), so no purpose is asked."""
    try:
        header = parse_header(header_raw)
        decryptor = Decryptor(header, header.unwrap(identity))
        digest = hashlib.sha256(header_raw)
        with box.vault.open_payload(recording["stored_path"]) as payload:
            for _ in decryptor.stream(_Hashing(payload, digest)):
                pass
    except FileNotFoundError:
        return "blob missing"
    except KluisError as exc:  # ContainerError; WrongSecret when a damaged stanza no longer names this box
        return str(exc)
    if digest.hexdigest() != recording["sha256"]:
        return "blob damaged (hash mismatch)"
    return None


class Footage:
    """One recording's plaintext, handed out by the gate after its audit entry was committed
    (`audit_seq`). It touches the vault only, not the catalog: its reads may run on another thread."""

    def __init__(self, box: Box, recording: dict, decryptor: Decryptor, audit_seq: int):
        self._box, self._decryptor = box, decryptor
        self.recording, self.audit_seq = recording, audit_seq
        self.recording_id: str = recording["id"]
        self.size: int = recording["size"]

    def _payload(self) -> BinaryIO:
        try:
            return self._box.vault.open_payload(self.recording["stored_path"])
        except FileNotFoundError:
            raise KluisError(f"recording {self.recording_id}: its stored file is missing (run kluis verify)") from None

    def read_range(self, start: int = 0, stop: int | None = None) -> Generator[bytes, None, None]:
        """Plaintext bytes [start, stop) (to the end without `stop`), reading only the chunks that cover them."""
        with self._payload() as payload:
            payload_len = self._box.vault.payload_size(self.recording["stored_path"])
            yield from self._decryptor.read_range(payload, payload_len, start, self.size if stop is None else stop)

    def open(self) -> _SeekableReader:
        """The plaintext as a seekable, read-only file (for PyAV), decrypted chunk by chunk on demand."""
        payload = self._payload()
        return _SeekableReader(self._decryptor, payload, self._box.vault.payload_size(self.recording["stored_path"]),
                               self.size)

    def copy_verified(self, dst: BinaryIO | None) -> dict:
        """Decrypt the whole recording into `dst` (or nowhere), hashing its ciphertext (header + payload, as
        the catalog's sha256) and its plaintext in the same pass: a handover's chain of custody. A mismatch
        is an error."""
        recording = self.recording
        cipher = hashlib.sha256(self._decryptor.header.raw)
        plain = hashlib.sha256()
        size = 0
        with self._payload() as payload:
            for block in self._decryptor.stream(_Hashing(payload, cipher)):
                plain.update(block)
                size += len(block)
                if dst is not None:
                    dst.write(block)
        if cipher.hexdigest() != recording["sha256"]:
            raise KluisError(f"recording {recording['id']}: the stored ciphertext does not match its recorded "
                             "hash; not handed over (run kluis verify)")
        if size != recording["size"]:
            raise KluisError(f"recording {recording['id']}: {size} bytes decrypted, the catalog says {recording['size']}")
        return {"ciphertext_sha256": recording["sha256"], "ciphertext_size": recording["blob_size"],
                "ciphertext_verified": True, "plaintext_sha256": plain.hexdigest(), "plaintext_size": size}


class _Hashing:
    """A reader that feeds what passes through it into a hash."""

    def __init__(self, src: BinaryIO, digest):
        self.src, self.digest = src, digest

    def read(self, n: int = -1) -> bytes:
        data = self.src.read(n)
        self.digest.update(data)
        return data


class _SeekableReader(io.RawIOBase):
    """Plaintext of one recording as a seekable, read-only file, decrypted chunk by chunk on demand.

    Only the chunk under the current position is held in memory (PyAV reads an MP4 in small pieces and
    jumps between the index and the samples: one cached chunk saves most re-decryption)."""

    def __init__(self, decryptor: Decryptor, payload: BinaryIO, payload_len: int, size: int):
        super().__init__()
        self._decryptor, self._payload, self._payload_len, self._size = decryptor, payload, payload_len, size
        self._pos = 0
        self._chunk_index = -1
        self._chunk = b""

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            pos = offset
        elif whence == io.SEEK_CUR:
            pos = self._pos + offset
        elif whence == io.SEEK_END:
            pos = self._size + offset
        else:
            raise ValueError(f"bad whence {whence}")
        if pos < 0:
            raise ValueError("negative seek position")
        self._pos = pos
        return pos

    def _load(self, index: int) -> bytes:
        if index != self._chunk_index:
            chunk_size = self._decryptor.chunk_size
            start = index * chunk_size
            self._chunk = b"".join(self._decryptor.read_range(
                self._payload, self._payload_len, start, min(start + chunk_size, self._size)))
            self._chunk_index = index
        return self._chunk

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        done = 0
        while done < len(view) and self._pos < self._size:
            index, within = divmod(self._pos, self._decryptor.chunk_size)
            piece = self._load(index)[within: within + len(view) - done]
            if not piece:
                break
            view[done: done + len(piece)] = piece
            done += len(piece)
            self._pos += len(piece)
        return done

    def close(self) -> None:
        if not self.closed:
            self._payload.close()
            self._chunk = b""
        super().close()
