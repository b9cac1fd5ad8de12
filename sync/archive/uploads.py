"""Uploads into the archive: a box declares a container, sends it in parts or one stream (resumable at
the committed offset), and the archive verifies the whole (size, hash, header, recipient), stores it
durably and signs a receipt."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from appliance.container import ContainerError, PREFIX, header_length, parse_header
from appliance.durable import fsync_dir
from appliance.vault import READ_BLOCK

from ..protocol import NOT_A_CONTAINER, ProtocolError, sign_receipt
from .stream import SYNC_EVERY, Stream

if TYPE_CHECKING:
    from .store import Archive

MAX_CONTAINER = 64 * 1024**3  # a declared size above this is refused before a byte is sent


@dataclass(frozen=True)
class UploadState:
    complete: bool
    offset: int
    receipt: dict | None = None


class Uploads:
    """The uploads of one archive. `running` holds, per (box, sha256) upload in progress, [offset, running
    sha256, bytes not yet fsynced]: what this process saw, so completion need not read the file again."""

    def __init__(self, archive: "Archive"):
        self.archive = archive
        self.running: dict[tuple[str, str], list] = {}

    def _part(self, box_id: str, sha256: str) -> Path:
        return self.archive.tmp / f"{box_id}-{sha256}.part"

    def _receipt_for(self, box_id: str, sha256: str) -> dict | None:
        row = self.archive.one("SELECT receipt, box_id FROM recordings WHERE sha256 = ?", [sha256])
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
        with self.archive.transaction():
            row = self.archive.one("SELECT * FROM uploads WHERE box_id = ? AND sha256 = ?", [box_id, sha256])
            if row is not None and row["size"] != size:
                raise ProtocolError(f"an upload of this hash with size {row['size']} is open", 409)
            if row is None:
                self.archive.db.execute(
                    "INSERT INTO uploads (box_id, sha256, recording_id, size, metadata, started_at) "
                    "VALUES (?,?,?,?,?,?)", [box_id, sha256, recording_id, size, json.dumps(metadata),
                                             self.archive.now_iso()])
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
        row = self.archive.one("SELECT * FROM uploads WHERE box_id = ? AND sha256 = ?", [box_id, sha256])
        if row is None:
            raise ProtocolError("no open upload for this hash (start one first)", 404)
        return row

    def discard(self, box_id: str, sha256: str) -> None:
        self.running.pop((box_id, sha256), None)
        self._part(box_id, sha256).unlink(missing_ok=True)
        self.archive.db.execute("DELETE FROM uploads WHERE box_id = ? AND sha256 = ?", [box_id, sha256])

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
        running = self.running.pop(key, None)
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
                self.running[key] = running
            else:  # resumed after a restart: no running hash; complete_upload reads the file again
                f.flush()
                os.fsync(f.fileno())
        return current + len(data)

    def open_stream(self, box_id: str, sha256: str, offset: int, claimed: str, length: int | None) -> Stream:
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
        running = self.running.pop((box_id, sha256), None)
        if offset == 0:
            running = [0, hashlib.sha256(), 0]
        elif running is not None and running[0] != offset:
            running = None
        return Stream(self, box_id, sha256, part, offset, row["size"], claimed, running)

    def _check_header(self, box_id: str, sha256: str, head: bytes, whole: bool = False):
        """Refuse a container that is not one, or that the archive could never open: early, from the
        first part (if it holds the whole header), and again on completion (`whole`)."""
        try:
            return self.header_of(head, whole)
        except ContainerError as exc:
            self.discard(box_id, sha256)
            raise ProtocolError(f"refused: {exc}", 422, NOT_A_CONTAINER) from None

    def header_of(self, head: bytes, whole: bool = False):
        """The container's header once `head` holds all of it (else None); ContainerError if it is not a
        container or does not name the archive as a recipient."""
        if whole or (len(head) >= PREFIX.size and len(head) >= header_length(head)):
            header = parse_header(head)
            if self.archive.public_key not in header.recipients:
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
        running = self.running.pop((box_id, sha256), None)
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
            self.discard(box_id, sha256)
            raise ProtocolError(f"container hash mismatch: declared {sha256}, received {digest.hexdigest()}"
                                "; discarded", 422)
        header = self._check_header(box_id, sha256, head, whole=True)
        rel = f"blobs/{sha256[:2]}/{sha256}"
        final = self.archive.data_dir / rel
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(part, final)
        fsync_dir(final.parent)
        metadata = json.loads(row["metadata"])
        now = self.archive.now_iso()
        receipt = sign_receipt(self.archive.signing_key, {"archive": self.archive.archive_id, "box": box_id,
                                                  "recording_id": row["recording_id"], "sha256": sha256,
                                                  "size": row["size"], "received_at": now})
        with self.archive.transaction():
            self.archive.db.table("recordings").insert({
                "sha256": sha256, "box_id": box_id, "recording_id": row["recording_id"], "size": row["size"],
                "header_size": header.size, "camera_serial": metadata.get("camera_serial"),
                "officer": metadata.get("officer"), "start_time": metadata.get("start_time"),
                "end_time": metadata.get("end_time"), "case_refs": _case_refs(metadata),
                "metadata": json.dumps(metadata), "received_at": now, "receipt": json.dumps(receipt),
                "stored_path": rel,
            })
            self.archive.db.execute("DELETE FROM uploads WHERE box_id = ? AND sha256 = ?", [box_id, sha256])
            self.archive.audit("system", "receive", box_id=box_id, sha256=sha256,
                       details={"recording_id": row["recording_id"], "size": row["size"]})
        return receipt

    def update_metadata(self, box_id: str, sha256: str, metadata: dict) -> None:
        """Holds released, case references added: the box's view of a recording it sent, kept current."""
        row = self.archive.one("SELECT box_id FROM recordings WHERE sha256 = ?", [sha256])
        if row is None or row["box_id"] != box_id:
            raise ProtocolError("no recording with this hash from this box", 404)
        with self.archive.transaction():
            self.archive.db.execute("UPDATE recordings SET metadata = ?, case_refs = ? WHERE sha256 = ?",
                            [json.dumps(metadata), _case_refs(metadata), sha256])
            self.archive.audit("system", "metadata_update", box_id=box_id, sha256=sha256,
                       details={"holds": metadata.get("holds", [])})


def _is_sha256(value) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def _case_refs(metadata: dict) -> str:
    refs = {h.get("case_ref") for h in metadata.get("holds", []) if isinstance(h, dict) and h.get("case_ref")}
    return " ".join(sorted(str(r).replace(" ", "_") for r in refs))
