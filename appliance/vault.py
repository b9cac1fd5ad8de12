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
import hashlib
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .container import PREFIX, Header, header_length, parse_header
from .errors import ContainerError, KluisError, StorageFull

READ_BLOCK = 1024 * 1024
# Writes at least this large are hashed on a helper thread while the calling thread writes them to disk
# (hashlib releases the GIL for large buffers); smaller ones are not worth the hand-over.
PARALLEL_HASH_MIN = 256 * 1024
# Every WRITEBACK_WINDOW bytes the kernel is told to start writing the blob out (and to drop the
# ciphertext from the page cache once it is clean): the final fsync then waits only for the tail, and
# ingest does not fill memory with ciphertext nobody reads soon. See bench/bench_import.py.
WRITEBACK_WINDOW = 16 * 1024 * 1024

_hash_pool: ThreadPoolExecutor | None = None
_hash_pool_lock = threading.Lock()


def _hasher() -> ThreadPoolExecutor:
    global _hash_pool
    with _hash_pool_lock:
        if _hash_pool is None:
            _hash_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="kluis-hash")
        return _hash_pool


def fsync_path(path: Path, flags: int = 0) -> None:
    """Flush a file, or a directory's entries, to the disk."""
    fd = os.open(path, os.O_RDONLY | flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    fsync_path(path, os.O_DIRECTORY)


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
    """Receives one container stream. Memory: the header (a few hundred bytes) and the hash state."""

    def __init__(self, vault: Vault, name: str, resume: bool = False):
        self.vault = vault
        self.part = vault.tmp / f"{name}.part"
        self.hdr = vault.tmp / f"{name}.hdr"
        self._sha = hashlib.sha256()
        self._head = bytearray()  # header bytes received so far
        self._header_len: int | None = None
        self.header: Header | None = None
        if resume and self.hdr.exists():
            self._load_partial()
        else:
            self._discard_files()
        try:
            self._file = open(self.part, "ab" if self.header else "wb")
        except OSError as exc:
            raise _storage_error(exc) from None
        self._written = self._file.tell()  # payload bytes in the .part file
        self._writeback_from = self._writeback_mark = self._written
        self.received = len(self._head) + self._written

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
        """Hash and append `data`. When this returns, `data` is no longer used (the caller may reuse it)."""
        view = memoryview(data)
        if len(view) >= PARALLEL_HASH_MIN:
            hashing = _hasher().submit(self._sha.update, view)
            try:
                self._append(view)
            finally:
                hashing.result()  # the hash must be complete before the caller reuses the buffer
        else:
            self._sha.update(view)
            self._append(view)

    def _append(self, view: memoryview) -> None:
        self.received += len(view)
        if self.header is None:
            view = self._take_header(view)
        if view:
            try:
                self._file.write(view)
                self._written += len(view)
                if self._written - self._writeback_mark >= WRITEBACK_WINDOW:
                    self._start_writeback()
            except OSError as exc:
                self.abort()
                raise _storage_error(exc) from None

    def _start_writeback(self) -> None:
        if not hasattr(os, "posix_fadvise"):
            return
        self._file.flush()
        # DONTNEED starts writeback of dirty pages without waiting and drops clean ones: the window
        # before last is clean by now and leaves the cache, the last one starts going to disk.
        try:
            os.posix_fadvise(self._file.fileno(), self._writeback_from,
                             self._written - self._writeback_from, os.POSIX_FADV_DONTNEED)
        except OSError:
            pass  # only a hint; the fsync in commit() is what makes the blob durable
        self._writeback_from, self._writeback_mark = self._writeback_mark, self._written

    def _take_header(self, view: memoryview) -> memoryview:
        if self._header_len is None:
            need = PREFIX.size - len(self._head)
            self._head += view[:need]
            view = view[need:]
            if len(self._head) < PREFIX.size:
                return view
            self._header_len = header_length(bytes(self._head))
        need = self._header_len - len(self._head)
        self._head += view[:need]
        view = view[need:]
        if len(self._head) == self._header_len:
            self.header = parse_header(bytes(self._head))
            self._write_sidecar()
        return view

    def _write_sidecar(self) -> None:
        tmp = self.hdr.with_suffix(".hdr.tmp")
        try:
            with open(tmp, "wb") as f:
                f.write(self._head)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.hdr)
        except OSError as exc:
            tmp.unlink(missing_ok=True)  # a full disk must not leave a half-written sidecar behind
            self.abort()
            raise _storage_error(exc) from None

    def sync(self) -> int:
        """Make what was received durable; returns the container offset to resume from."""
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
        except OSError as exc:
            raise _storage_error(exc) from None
        return self.received

    def commit(self, expected_sha256: str | None = None) -> Stored:
        """fsync, check the hash, rename into place, fsync the directory. Only then is the blob stored."""
        if self.header is None:
            self.abort()
            raise ContainerError("truncated container (incomplete header)")
        self.sync()
        self._file.close()
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
                final.parent.mkdir(parents=True, exist_ok=True)
                os.rename(self.part, final)
                fsync_dir(final.parent)
        except OSError as exc:
            self.abort()
            raise _storage_error(exc) from None
        self.hdr.unlink(missing_ok=True)
        return Stored(sha, self.header, rel, self.received, existed)

    def abort(self) -> None:
        try:
            self._file.close()
        except OSError:
            pass
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
        """A writer; give a stable `name` (e.g. camera serial + recording id) to resume later."""
        return BlobWriter(self, name or f"w-{os.getpid()}-{os.urandom(6).hex()}", resume=resume)

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
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                pass
        return removed
