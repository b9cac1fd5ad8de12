"""One streamed body being appended to an upload's part file: the bytes hashed as they arrive, fsynced
every SYNC_EVERY bytes, and checked against the box's signed range hash before they count."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from appliance.appendfile import AppendFile
from appliance.container import ContainerError
from appliance.vault import READ_BLOCK

from ..protocol import NOT_A_CONTAINER, ProtocolError

if TYPE_CHECKING:
    from .uploads import Uploads

SYNC_EVERY = 64 * 1024 * 1024  # fsync a part file at least this often during an upload


class Stream:
    """One streamed body being appended to an upload's part file (blocking calls: run them in a thread).

    The bytes go through appliance.appendfile: hashed on a helper thread while this one writes them,
    with writeback started as they go so that the periodic fsync is short. From offset 0 the running
    container hash is also the range hash, so every byte is hashed once; a stream resumed at a later
    offset hashes its range besides (and the container hash continues if this process saw the bytes
    before, else completion reads the file again)."""

    def __init__(self, uploads: "Uploads", box_id: str, sha256: str, part: Path, offset: int, size: int,
                 claimed: str, running: list | None):
        self.uploads, self.box_id, self.sha256 = uploads, box_id, sha256
        self.start, self.offset, self.size, self.claimed = offset, offset, size, claimed
        self.running = running
        self.range_hash = None if offset == 0 else hashlib.sha256()
        self.unsynced = 0
        hashes = [h for h in (running[1] if running else None, self.range_hash) if h is not None]
        # Not staged: the offset the progress feed reports (what the box paces its window by) is then
        # in the file, and survives this process being killed.
        self.file = AppendFile(part, hashes, staged=False)
        self.head: bytes | None = b""  # the first bytes of the container, until its header can be checked

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
        assert self.head is not None  # write() checks the head only until it has been checked
        self.head += data[:READ_BLOCK - len(self.head)]
        try:
            checked = self.uploads.header_of(self.head)
        except ContainerError as exc:
            self._rollback()
            raise ProtocolError(f"refused: {exc}", 422, NOT_A_CONTAINER) from None
        if checked is not None or len(self.head) >= READ_BLOCK:
            self.head = None

    def _sync(self) -> None:
        self.file.sync()  # also completes the hashes of everything written
        self.unsynced = 0

    def _rollback(self) -> None:
        """Take this stream's bytes back out: they did not verify (or ran past the declared size)."""
        self.file.truncate(self.start)
        self.file.close()
        self.uploads.running.pop((self.box_id, self.sha256), None)

    def finish(self) -> int:
        """The whole range arrived: verify it against its signed hash before it counts, then make it
        durable. Returns the committed offset (the declared size)."""
        if self.offset != self.size:
            self.close()
            raise ProtocolError(f"the stream ended at {self.offset} of {self.size} bytes", 400)
        self._sync()
        hasher = self.range_hash
        if hasher is None:
            assert self.running is not None  # from offset 0, the running hash is the range's
            hasher = self.running[1]
        digest = hasher.hexdigest()
        if digest != self.claimed:
            self._rollback()
            raise ProtocolError("body does not match its signed hash (altered in transit); discarded", 422)
        self.file.close()
        if self.running is not None:
            self.uploads.running[(self.box_id, self.sha256)] = self.running
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
            self.uploads.running[(self.box_id, self.sha256)] = self.running
