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
import mmap
import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .container import PREFIX, Header, header_length, parse_header
from .errors import ContainerError, KluisError, StorageFull

READ_BLOCK = 1024 * 1024
# The payload is copied into page-aligned staging blocks; a full block is hashed on one helper thread
# and written on another while the caller fills the next. Writes bypass the page cache (O_DIRECT) where
# the filesystem allows: no copy into the cache, no dirty pages for fsync to chase, and ingest does not
# evict what the box reads. On this kind of VM that took a 1 GiB import from ~0.9 to ~1.5 GB/s (see
# bench/bench_import.py). Elsewhere (tmpfs) blocks are written through the cache, with a hint to start
# writeback early so that the final fsync waits only for the tail.
ALIGN = 4096  # O_DIRECT wants offsets, lengths and buffer addresses in whole blocks
STAGE_BLOCK = 2 * 1024 * 1024
STAGE_BLOCKS = 3  # memory per writer: STAGE_BLOCKS * STAGE_BLOCK

_pools: dict[str, ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()


def _pool(name: str) -> ThreadPoolExecutor:
    """One thread per job for the whole process: a single hashing thread keeps each writer's updates
    in order, a single disk thread writes each writer's blocks in order (a crash leaves a prefix)."""
    with _pools_lock:
        if name not in _pools:
            _pools[name] = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"kluis-{name}")
        return _pools[name]


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


def _pwrite_all(fd: int, data: memoryview, offset: int) -> None:
    while data:
        n = os.pwrite(fd, data, offset)
        data, offset = data[n:], offset + n


@dataclass(frozen=True)
class Stored:
    sha256: str  # of the whole container
    header: Header
    stored_path: str  # relative to the data dir
    container_size: int  # header + payload bytes
    existed: bool  # the same container was already in the store


class BlobWriter:
    """Receives one container stream. Memory: the header, the hash state and the staging blocks.

    Ends with commit() (stored), abort() (nothing left), or close() (the part file kept for a resume)."""

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
        self._blocks: list[mmap.mmap] = []
        self._pending: list[tuple[Future, Future] | None] = [None] * STAGE_BLOCKS
        self._cur = 0
        self._direct_fd: int | None = None
        try:
            self._fd = os.open(self.part, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC
                               | (0 if self.header else os.O_TRUNC), 0o600)
            written = os.fstat(self._fd).st_size  # payload bytes in the .part file
            self._direct_fd = self._open_direct()
            # The current block starts at an aligned offset; after a resume it starts with the tail
            # already on disk (hashed by _load_partial), so that blocks stay aligned.
            self._base = written - written % ALIGN
            self._fill = self._hash_from = written - self._base
            if self._fill:
                self._block()[: self._fill] = os.pread(self._fd, self._fill, self._base)
        except OSError as exc:
            self.close()  # a partial file stays for a later resume
            raise _storage_error(exc) from None
        self.received = len(self._head) + written

    @property
    def direct(self) -> bool:
        """Whether blocks go to the disk past the page cache (O_DIRECT)."""
        return self._direct_fd is not None

    def _open_direct(self) -> int | None:
        if not hasattr(os, "O_DIRECT"):
            return None
        try:
            return os.open(self.part, os.O_WRONLY | os.O_DIRECT | os.O_CLOEXEC)
        except OSError as exc:
            if exc.errno == errno.EINVAL:  # the filesystem has no O_DIRECT (tmpfs)
                return None
            raise

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

    def _block(self) -> mmap.mmap:
        """The current staging block (page-aligned, as O_DIRECT needs), made on first use."""
        while len(self._blocks) <= self._cur:
            self._blocks.append(mmap.mmap(-1, STAGE_BLOCK))
        return self._blocks[self._cur]

    def write(self, data: bytes | memoryview) -> None:
        """Append `data`. When this returns, `data` is no longer used (the caller may reuse it)."""
        view = memoryview(data).cast("B")
        self.received += len(view)
        if self.header is None:
            view = self._take_header(view)
        while view:
            if self._fill == 0:
                self._wait(self._cur)  # the block's last hashing and write are done before it is refilled
            n = min(len(view), STAGE_BLOCK - self._fill)
            self._block()[self._fill : self._fill + n] = view[:n]
            self._fill += n
            view = view[n:]
            if self._fill == STAGE_BLOCK:
                self._submit()

    def _submit(self) -> None:
        block = memoryview(self._block())
        self._pending[self._cur] = (
            _pool("hash").submit(self._sha.update, block[self._hash_from :]),
            _pool("disk").submit(self._write_block, block, self._base),
        )
        self._base += STAGE_BLOCK
        self._fill = self._hash_from = 0
        self._cur = (self._cur + 1) % STAGE_BLOCKS

    def _write_block(self, block: memoryview, offset: int) -> None:
        if self._direct_fd is not None:
            try:
                _pwrite_all(self._direct_fd, block, offset)
                return
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    raise
                os.close(self._direct_fd)  # O_DIRECT opened but refused here: go through the cache
                self._direct_fd = None
        _pwrite_all(self._fd, block, offset)
        if hasattr(os, "posix_fadvise"):
            # Starts writeback of this block and drops the one before it, clean by now, from the cache.
            start = max(offset - STAGE_BLOCK, 0)
            try:
                os.posix_fadvise(self._fd, start, offset + len(block) - start, os.POSIX_FADV_DONTNEED)
            except OSError:
                pass  # only a hint; the fsync in commit() is what makes the blob durable

    def _wait(self, index: int) -> None:
        pending, self._pending[index] = self._pending[index], None
        if pending is None:
            return
        wait_futures(pending)  # both, even when one failed: the other may still use the file
        for future in pending:
            if isinstance(future.exception(), OSError):
                self.abort()
                raise _storage_error(future.exception()) from None
            future.result()

    def _take_header(self, view: memoryview) -> memoryview:
        """Move header bytes from `view` into the header (hashed here: payload blocks come after)."""
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
            self._write_sidecar()
        return view

    def _take(self, head: memoryview) -> None:
        self._head += head
        self._sha.update(head)

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
        """Make what was received durable; returns the container offset to resume from. The staged
        tail goes out through the cache (it need not be aligned); its block is written whole later."""
        if self._fd is None:
            raise ValueError("the writer is closed")
        for index in range(STAGE_BLOCKS):
            self._wait(index)
        try:
            if self._fill:
                _pwrite_all(self._fd, memoryview(self._block())[: self._fill], self._base)
            os.fsync(self._fd)
        except OSError as exc:
            raise _storage_error(exc) from None
        return self.received

    def commit(self, expected_sha256: str | None = None) -> Stored:
        """fsync, check the hash, rename into place, fsync the directory. Only then is the blob stored."""
        if self.header is None:
            self.abort()
            raise ContainerError("truncated container (incomplete header)")
        self.sync()
        if self._fill > self._hash_from:
            self._sha.update(memoryview(self._block())[self._hash_from : self._fill])
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
                final.parent.mkdir(parents=True, exist_ok=True)
                os.rename(self.part, final)
                fsync_dir(final.parent)
        except OSError as exc:
            self.abort()
            raise _storage_error(exc) from None
        self.hdr.unlink(missing_ok=True)
        return Stored(sha, self.header, rel, self.received, existed)

    def close(self) -> None:
        """Close the files and free the blocks; the part file stays for a resume (after a sync())."""
        for pending in self._pending:  # never close a file a helper thread still writes to
            if pending is not None:
                wait_futures(pending)
        self._pending = [None] * STAGE_BLOCKS
        for fd in (getattr(self, "_fd", None), self._direct_fd):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._fd = self._direct_fd = None
        for block in self._blocks:
            try:
                block.close()
            except BufferError:  # a view of it is still alive somewhere: the collector frees it
                pass
        self._blocks = []

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
