"""The blob store: where recording payloads live, content-addressed by the container's SHA-256.

A container arrives as a byte stream (from an import or a camera). The header (with the sealed file keys)
is kept apart and handed to the catalog; only the payload chunks go to disk, under
`blobs/<first two hex>/<sha256 of the whole container>`. Without its catalog row a blob is ciphertext
that no key opens: deleting the row is what destroys a recording (crypto-shredding).

Writes are durable before they are visible: temp file, fsync, rename, fsync of the directory. A writer
with a name can resume after a crash or a cut connection from the last durable byte.
"""

from __future__ import annotations

import errno
import glob
import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from . import durable
from .appendfile import AppendFile
from .durable import fsync_dir
from .container import PREFIX, Header, header_length, parse_header
from .errors import ContainerError, KluisError, StorageFull

READ_BLOCK = 1024 * 1024


def _storage_error(exc: OSError) -> KluisError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageFull("the data disk is full: nothing was stored, and nothing stored was harmed")
    return KluisError(f"storage error: {exc.strerror or exc}")


@dataclass(frozen=True)
class Stored:
    sha256: str  # of the whole container
    header: Header
    stored_path: str  # relative to the data dir
    container_size: int  # header + payload bytes
    existed: bool  # the same container was already in the store


class BlobWriter:
    """Receives one container stream: the header into a sidecar (for a resume) and the catalog, the
    payload into a part file (appliance.appendfile). Memory: the header, the hash state, the staging.

    Ends with commit() (stored), abort() (nothing left), or close() (the part file kept for a resume)."""

    def __init__(self, vault: Vault, name: str, resume: bool = False, resumable: bool = True):
        self.vault = vault
        self.resumable = resumable  # keeps a header sidecar, so that a writer of the same name can go on
        self.part = vault.tmp / f"{name}.part"
        self.hdr = vault.tmp / f"{name}.hdr"
        self._sha = hashlib.sha256()
        self._head = bytearray()  # header bytes received so far
        self._header_len: int | None = None
        self.header: Header | None = None
        self._file: AppendFile | None = None
        # A header sidecar's own temp file (durable.write_atomic names it at random) is this name's leftover
        # when a writer was killed mid-write: a writer of the same name is the only one that can remove it.
        for stale in vault.tmp.glob(f".{glob.escape(self.hdr.name)}.*.tmp"):
            stale.unlink(missing_ok=True)
        if resume and self.hdr.exists():
            self._load_partial()
        else:
            self._discard_files()
        try:
            self._file = AppendFile(self.part, [self._sha], truncate=self.header is None)
        except OSError as exc:
            raise _storage_error(exc) from None  # a partial file stays for a later resume
        self.received = len(self._head) + self._file.size

    def _load_partial(self) -> None:
        head = self.hdr.read_bytes()
        try:
            self.header = parse_header(head)
        except ContainerError:
            self._discard_files()  # a header sidecar is written whole or not trusted
            return
        self._head = bytearray(head)
        self._header_len = len(head)
        self._sha.update(head)
        if self.part.exists():
            with open(self.part, "rb") as f:
                while block := f.read(READ_BLOCK):
                    self._sha.update(block)

    def _discard_files(self) -> None:
        for path in (self.part, self.hdr):
            path.unlink(missing_ok=True)

    def write(self, data: bytes | memoryview) -> None:
        """Append `data`. When this returns, `data` is no longer used (the caller may reuse it)."""
        view = memoryview(data).cast("B")
        self.received += len(view)
        if self.header is None:
            view = self._take_header(view)
        if view:
            assert self._file is not None  # opened by __init__, or it raised
            try:
                self._file.write(view)
            except OSError as exc:
                self.abort()
                raise _storage_error(exc) from None

    def _take_header(self, view: memoryview) -> memoryview:
        """Move header bytes from `view` into the header (hashed here: the payload comes after)."""
        if self._header_len is None:
            need = PREFIX.size - len(self._head)
            self._take(view[:need])
            view = view[need:]
            if len(self._head) < PREFIX.size:
                return view
            self._header_len = header_length(bytes(self._head))
        need = self._header_len - len(self._head)
        self._take(view[:need])
        view = view[need:]
        if len(self._head) == self._header_len:
            self.header = parse_header(bytes(self._head))
            if self.resumable:
                self._write_sidecar()
        return view

    def _take(self, head: memoryview) -> None:
        self._head += head
        self._sha.update(head)

    def _write_sidecar(self) -> None:
        try:
            durable.write_atomic(self.hdr, self._head)  # a full disk leaves no half-written sidecar behind
        except OSError as exc:
            self.abort()
            raise _storage_error(exc) from None

    def sync(self) -> int:
        """Make what was received durable; returns the container offset to resume from."""
        if self._file is None or self._file.closed:
            raise ValueError("the writer is closed")
        try:
            self._file.sync()
        except OSError as exc:
            self.abort()
            raise _storage_error(exc) from None
        return self.received

    def commit(self, expected_sha256: str | None = None) -> Stored:
        """fsync, check the hash, rename into place, fsync the directory. Only then is the blob stored."""
        if self.header is None:
            self.abort()
            raise ContainerError("truncated container (incomplete header)")
        self.sync()
        self.close()
        sha = self._sha.hexdigest()
        if expected_sha256 is not None and sha != expected_sha256.lower():
            self._discard_files()
            raise ContainerError(f"ciphertext hash mismatch: expected {expected_sha256}, got {sha}")
        rel = self.vault.relpath(sha)
        final = self.vault.root / rel
        existed = final.exists()
        try:
            if existed:
                self.part.unlink()
            else:
                if not final.parent.is_dir():
                    final.parent.mkdir(parents=True, exist_ok=True)
                    # A new shard directory is an entry in blobs/ that must be on the disk too: without this
                    # fsync a power cut could lose the directory, and the blob in it, after the camera was
                    # told to delete its copy (the rename's fsync below covers the shard, not blobs/).
                    fsync_dir(final.parent.parent)
                durable.replace(self.part, final)
        except OSError as exc:
            self.abort()
            raise _storage_error(exc) from None
        self.hdr.unlink(missing_ok=True)
        return Stored(sha, self.header, rel, self.received, existed)

    def close(self) -> None:
        """Close the part file; it stays for a resume (what was not synced may be lost)."""
        if self._file is not None:
            self._file.close()

    def abort(self) -> None:
        self.close()
        self._discard_files()


class Vault:
    def __init__(self, root: Path):
        self.root = root
        self.tmp = root / "tmp"
        self.blobs = root / "blobs"

    def create(self) -> None:
        for path in (self.tmp, self.blobs):
            path.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def relpath(sha256: str) -> str:
        return f"blobs/{sha256[:2]}/{sha256}"

    def writer(self, name: str | None = None, resume: bool = False) -> BlobWriter:
        """A writer; give a stable `name` (e.g. camera serial + recording id) to resume later. Without
        one, nothing can resume it, and it keeps no header sidecar (one file and an fsync fewer)."""
        if name is None:
            return BlobWriter(self, f"w-{os.getpid()}-{os.urandom(6).hex()}", resumable=False)
        return BlobWriter(self, name, resume=resume)

    def ingest(self, src: BinaryIO, expected_sha256: str | None = None) -> Stored:
        writer = self.writer()
        try:
            while block := src.read(READ_BLOCK):
                writer.write(block)
        except BaseException:
            writer.abort()
            raise
        return writer.commit(expected_sha256)

    def open_payload(self, stored_path: str) -> BinaryIO:
        return open(self.root / stored_path, "rb")

    def payload_size(self, stored_path: str) -> int:
        return (self.root / stored_path).stat().st_size

    def remove(self, stored_path: str) -> None:
        path = self.root / stored_path
        path.unlink(missing_ok=True)
        fsync_dir(path.parent)

    def check(self, stored_path: str, header: bytes, sha256: str) -> str | None:
        """None if header + payload hash to `sha256`; else what is wrong, in words."""
        digest = hashlib.sha256(header)
        try:
            with self.open_payload(stored_path) as f:
                while block := f.read(READ_BLOCK):
                    digest.update(block)
        except FileNotFoundError:
            return "blob missing"
        except OSError as exc:
            return f"blob unreadable: {exc.strerror}"
        if digest.hexdigest() != sha256:
            return "blob damaged (hash mismatch)"
        return None

    def cleanup(self, referenced: set[str], min_age_s: float = 3600) -> int:
        """Remove leftovers of interrupted writes: temp files and blobs no catalog row names. Only
        files older than `min_age_s`, so that a write in progress in another process is left alone."""
        cutoff = time.time() - min_age_s
        removed = 0
        candidates = list(self.tmp.glob("*")) if self.tmp.exists() else []
        if self.blobs.exists():
            candidates += [p for p in self.blobs.glob("*/*") if str(p.relative_to(self.root)) not in referenced]
        for path in candidates:
            try:
                # Folders in tmp/ belong to writers that keep state there (Axis clips waiting for their key
                # object, the USB ingest's slot locks); what in them is left over, their owners remove.
                if path.is_file() and path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                pass
        return removed
