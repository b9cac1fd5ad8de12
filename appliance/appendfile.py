"""Fast, durable appends to one file, with running hashes: how the box's vault and the archive write
ciphertext as it arrives.

Bytes are copied into page-aligned staging blocks. A full block is hashed (by every hash object given)
on one helper thread and written on another while the caller fills the next; hashlib and pwrite release
the GIL, so the two cores share the work. Blocks bypass the page cache (O_DIRECT) where the filesystem
allows: no copy into the cache, no dirty pages for fsync to chase (on this kind of VM an fsync of 1 GiB
of cached writes takes seconds), and a stream of ingest does not evict what the box reads. Elsewhere
(tmpfs) they go through the cache, with a hint to start writeback early.

One hashing thread and one disk thread serve the whole process, in the order blocks are handed over:
each file's hash updates stay in order, and a crash leaves a prefix of what was written.

With `staged=False` nothing waits in staging: write() hashes on the helper thread while it writes
through the cache itself, so the file's length is everything appended as soon as write() returns. The
archive uses this for streams, whose part file's length is what the box paces its sending by.
"""

from __future__ import annotations

import errno
import mmap
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from pathlib import Path

_IOV_MAX = 1024  # buffers per pwritev (Linux's IOV_MAX)
ALIGN = 4096  # O_DIRECT wants offsets, lengths and buffer addresses in whole blocks
BLOCK = 2 * 1024 * 1024
BLOCKS = 3  # staging memory per open file: BLOCKS * BLOCK

_pools: dict[str, ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()


def _pool(name: str) -> ThreadPoolExecutor:
    with _pools_lock:
        if name not in _pools:
            _pools[name] = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"kluis-{name}")
        return _pools[name]


def _pwrite_all(fd: int, data: memoryview, offset: int) -> None:
    while data:
        n = os.pwrite(fd, data, offset)
        data, offset = data[n:], offset + n


def _update_all(hashes: tuple, data: memoryview) -> None:
    for digest in hashes:
        digest.update(data)


def _update_many(hashes: tuple, views: list) -> None:
    for view in views:
        _update_all(hashes, view)


class AppendFile:
    """Appends to `path` (created if missing, its current length kept unless `truncate`).

    `hashes` see every byte appended through this object, in order, and none that were in the file
    before; read them after sync(). Errors of the helper threads (OSError: a full disk) are raised by
    the write(), sync() or truncate() that next waits for them. After an error the hashes may have seen
    bytes the file lacks: callers drop them (BlobWriter aborts; the archive's stream forgets its running
    hash, and completion reads the part file again). End with close()."""

    def __init__(self, path: Path, hashes=(), truncate: bool = False, staged: bool = True):
        self.path = Path(path)
        self.hashes = tuple(hashes)
        self.staged = staged
        self._blocks: list[mmap.mmap] = []
        self._pending: list[tuple[Future, Future] | None] = [None] * BLOCKS
        self._cur = 0
        self._direct_fd: int | None = None
        self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC
                                       | (os.O_TRUNC if truncate else 0), 0o600)
        try:
            self._direct_fd = self._open_direct() if staged else None
            self._restage(os.fstat(self._fd).st_size)
        except OSError:
            self.close()
            raise

    @property
    def direct(self) -> bool:
        """Whether blocks go to the disk past the page cache (O_DIRECT)."""
        return self._direct_fd is not None

    @property
    def size(self) -> int:
        """The file's length with everything appended so far (staged or written)."""
        return self._base + self._fill

    def _open_direct(self) -> int | None:
        if not hasattr(os, "O_DIRECT"):
            return None
        try:
            return os.open(self.path, os.O_WRONLY | os.O_DIRECT | os.O_CLOEXEC)
        except OSError as exc:
            if exc.errno == errno.EINVAL:  # the filesystem has no O_DIRECT (tmpfs)
                return None
            raise

    def _restage(self, length: int) -> None:
        """Continue at `length`: the current block starts at the aligned offset below it, holding the
        file's bytes up to `length` (already hashed, or not ours to hash), so that blocks stay aligned."""
        self._base = length - length % ALIGN if self.staged else length
        self._fill = self._hash_from = length - self._base
        self._hinted = self._hint_mark = self._base
        if self._fill:
            self._block()[: self._fill] = os.pread(self._open_fd(), self._fill, self._base)

    def _open_fd(self) -> int:
        if self._fd is None:
            raise ValueError(f"{self.path} is closed")
        return self._fd

    def _block(self) -> mmap.mmap:
        """The current staging block (page-aligned, as O_DIRECT needs), made on first use."""
        while len(self._blocks) <= self._cur:
            self._blocks.append(mmap.mmap(-1, BLOCK))
        return self._blocks[self._cur]

    def write(self, data: bytes | memoryview) -> None:
        """Append `data`. When this returns, `data` is no longer used (the caller may reuse it)."""
        view = memoryview(data).cast("B")
        if not self.staged:
            self.write_all([view])
            return
        while view:
            if self._fill == 0:
                self._wait(self._cur)  # the block's last hashing and write are done before it is refilled
            n = min(len(view), BLOCK - self._fill)
            self._block()[self._fill : self._fill + n] = view[:n]
            self._fill += n
            view = view[n:]
            if self._fill == BLOCK:
                self._submit()

    def _submit(self) -> None:
        block = memoryview(self._block())
        self._pending[self._cur] = (
            _pool("hash").submit(_update_all, self.hashes, block[self._hash_from :]),
            _pool("disk").submit(self._write_block, block, self._base),
        )
        self._base += BLOCK
        self._fill = self._hash_from = 0
        self._cur = (self._cur + 1) % BLOCKS

    def write_all(self, blocks: list) -> None:
        """write() each of `blocks`; not staged, with one hand-over to the hashing thread and one
        system call for all of them."""
        if self.staged:
            for data in blocks:
                self.write(data)
            return
        views = [memoryview(data).cast("B") for data in blocks]
        hashing = _pool("hash").submit(_update_many, self.hashes, views)
        try:
            for start in range(0, len(views), _IOV_MAX):
                group = views[start : start + _IOV_MAX]
                written = os.pwritev(self._open_fd(), group, self._base)
                self._base += written
                if written < sum(map(len, group)):  # short write (rare): finish it piece by piece
                    rest = b"".join(group)[written:]
                    _pwrite_all(self._open_fd(), memoryview(rest), self._base)
                    self._base += len(rest)
            self._hint()
        finally:
            hashing.result()  # the hashes must be complete before the caller reuses a buffer

    def _hint(self) -> None:
        if self._base - self._hint_mark >= BLOCK:
            self._writeback(self._hinted, self._base)
            self._hinted, self._hint_mark = self._hint_mark, self._base

    def _writeback(self, start: int, end: int) -> None:
        """Start writeback of [start, end) and drop its clean pages from the cache: the final fsync then
        waits only for the tail, and the stream does not fill memory with bytes nobody reads soon."""
        if hasattr(os, "posix_fadvise"):
            try:
                os.posix_fadvise(self._open_fd(), start, end - start, os.POSIX_FADV_DONTNEED)
            except OSError:
                pass  # only a hint; sync() is what makes the file durable

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
        _pwrite_all(self._open_fd(), block, offset)
        self._writeback(max(offset - BLOCK, 0), offset + len(block))  # this block, and the one before

    def _wait(self, index: int) -> None:
        pending, self._pending[index] = self._pending[index], None
        if pending is not None:
            wait_futures(pending)  # both, even when one failed: the other may still use the file
            for future in pending:
                future.result()

    def _drain(self) -> None:
        for index in range(BLOCKS):
            self._wait(index)

    def sync(self) -> int:
        """Make everything appended durable and hashed; returns the file's length. The staged tail goes
        out through the cache (it need not be aligned); its block is written whole later."""
        if self._fd is None:
            raise ValueError("the file is closed")
        self._drain()
        if self._fill:  # only when staged: unstaged writes leave nothing behind
            tail = memoryview(self._block())
            if self._fill > self._hash_from:
                _update_all(self.hashes, tail[self._hash_from : self._fill])
                self._hash_from = self._fill
            _pwrite_all(self._fd, tail[: self._fill], self._base)
        os.fsync(self._fd)
        return self.size

    def truncate(self, length: int) -> None:
        """Take back everything after `length` (bytes that did not verify), durably. The hashes are
        not rewound: they are no use to the caller any more."""
        self._drain()
        os.ftruncate(self._open_fd(), length)
        os.fsync(self._open_fd())
        self._restage(length)

    def close(self) -> None:
        """Close the file (what was not synced may be lost) and free the staging blocks."""
        for pending in self._pending:  # never close a file a helper thread still writes to
            if pending is not None:
                wait_futures(pending)
        self._pending = [None] * BLOCKS
        for fd in (self._fd, self._direct_fd):
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

    @property
    def closed(self) -> bool:
        return self._fd is None
