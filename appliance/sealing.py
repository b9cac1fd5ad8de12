"""Sealing a stream that arrives in pieces (an HTTP request body) into the vault, off the event loop.

The event loop pushes each piece as it arrives; a worker thread seals it into a Kluis container
(appliance.container.Encryptor, public keys only) and writes it through a vault writer, so plaintext
exists only in memory, a few chunks at a time. An optional transform (AES-CBC decryption of an Axis
clip) runs on the worker side too, and so do the digests asked of the bytes as they came (`digests`: the
SHA-256 that tells a repeated upload of the same bytes, the MD5 of a Swift ETag when one is wanted).

Backpressure: `push` waits while more than PIPE_BYTES are queued, so a fast client cannot fill the
box's memory with a slow disk. `finish` returns only after the blob is durable (fsync, rename,
directory fsync) under its content address; `abort` leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import hashlib
import queue
import threading
from dataclasses import dataclass
from typing import Callable, Sequence

from .box import Box
from .container import Encryptor
from .vault import Stored

# Queued between the loop and the worker, per stream: a chunk's worth keeps the worker fed (it takes pieces
# while it fills a chunk). Every byte here is per upload, times [axis] max_uploads (bench/bench_axis.py).
PIPE_BYTES = 1024 * 1024


class Aborted(Exception):
    """The stream was given up before its end (the client went away, or a check failed)."""


class _Pipe:
    """A bounded byte queue: the loop puts pieces in, the worker thread reads them with readinto.

    The event loop's thread is the one a stream saturates (TLS, HTTP parsing), so its side is kept to a
    C queue's put and two counters: `put_bytes` is written by the loop only, `taken_bytes` by the worker
    only. The loop sets `_waiting` before it looks at the counters again, the worker counts what it took
    before it looks at `_waiting`: one of them always sees the other, and no wake-up is lost."""

    _END, _FAIL = object(), object()

    def __init__(self, transform: Callable[[bytes | memoryview], bytes] | None, final: Callable[[], bytes] | None,
                 digests: Sequence[str] = ()):
        self._pieces: queue.SimpleQueue = queue.SimpleQueue()
        self._put_bytes = 0
        self._taken_bytes = 0
        self._waiting = False  # the loop waits for room: the worker wakes it (one wake-up, not one a piece)
        self.closed = False  # the worker ended (a full disk): nothing takes pieces any more
        self._space = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self.transform, self.final = transform, final
        self.digests = {name: hashlib.new(name) for name in digests}  # of the bytes as they came
        self.size = 0  # plaintext bytes handed to the sealer

    # the loop's side
    async def put(self, data: bytes) -> None:
        while self._put_bytes - self._taken_bytes >= PIPE_BYTES and not self.closed:
            self._space.clear()
            self._waiting = True
            if self._put_bytes - self._taken_bytes < PIPE_BYTES:  # the worker took some meanwhile
                self._waiting = False
                break
            await self._space.wait()
        self._put_bytes += len(data)
        self._pieces.put(data)

    def end(self, failed: bool = False) -> None:
        self._pieces.put(self._FAIL if failed else self._END)

    def worker_ended(self) -> None:
        """In the loop, when the worker has ended: a put() waiting for room must not wait for ever."""
        self.closed = True
        self._space.set()

    # the worker's side
    def _plain(self, data: bytes | memoryview, received: bool = True) -> bytes | memoryview:
        if received:  # the final tail of a transform is plaintext already
            for digest in self.digests.values():  # of the bytes as they came (a client's ETag is over them)
                digest.update(data)
            if self.transform is not None:
                data = self.transform(data)
        self.size += len(data)
        return data

    def _next(self) -> memoryview | None:
        piece = self._pieces.get()
        if piece is self._FAIL:
            raise Aborted("stream aborted")
        if piece is self._END:
            self._pieces.put(piece)  # a later call sees the end too
            return None
        self._taken_bytes += len(piece)
        if self._waiting and self._put_bytes - self._taken_bytes < PIPE_BYTES:  # only when the loop waits
            self._waiting = False
            self._loop.call_soon_threadsafe(self._space.set)
        return memoryview(piece)

    def readinto(self, view: memoryview) -> int:
        while True:
            if self._pending:
                n = min(len(view), len(self._pending))
                view[:n] = self._pending[:n]
                self._pending = self._pending[n:]
                return n
            piece = self._next()
            if piece is None:
                if self.final is not None:
                    tail, self.final = self.final(), None
                    self._pending = memoryview(self._plain(tail, received=False))
                    continue
                return 0
            self._pending = memoryview(self._plain(piece))

    _pending: memoryview = memoryview(b"")


def _settle(future: asyncio.Future, pipe: _Pipe, result, exc: BaseException | None) -> None:
    pipe.worker_ended()
    if not future.done():
        future.set_exception(exc) if exc is not None else future.set_result(result)


@dataclass(frozen=True)
class Sealed:
    stored: Stored
    size: int  # plaintext bytes sealed
    received: dict[str, str]  # hex digests of the bytes as they were pushed, by algorithm ("sha256", "md5")


class PushSealer:
    """One stream into one vault blob. Use from the event loop: `await push(...)`, then `await finish()`
    or `abort()`."""

    def __init__(self, box: Box, *, transform: Callable[[bytes | memoryview], bytes] | None = None,
                 final: Callable[[], bytes] | None = None, digests: Sequence[str] = ()):
        # digests: hashlib names, computed on the worker over the bytes as pushed. Each costs CPU per byte
        # (MD5 ~1.4 s per GiB here, SHA-256 ~0.6): ask only for what the caller needs.
        self._pipe = _Pipe(transform, final, digests)
        self._encryptor = Encryptor(box.recipients(), chunk_size=box.settings.storage.chunk_size)
        self._writer = box.vault.writer()  # unnamed: an HTTP PUT is not resumable, the client sends again
        # A thread of its own, not the loop's default pool: a stream holds it for as long as the upload
        # takes, and the pool is shared with short jobs.
        loop = asyncio.get_running_loop()
        self._worker: asyncio.Future = loop.create_future()
        self._worker.add_done_callback(lambda f: f.cancelled() or f.exception())  # never "never retrieved"
        threading.Thread(target=self._run, args=(loop,), name="kluis-push-seal", daemon=True).start()

    def _run(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            self._writer.write(self._encryptor.header.raw)
            # No readahead thread: uploads run side by side and keep the cores busy, and a thread and two
            # chunk buffers fewer per upload bound the box's memory (bench/bench_axis.py: peak RSS).
            for sealed in self._encryptor.chunks(self._pipe, readahead=False):
                self._writer.write(sealed)
            result = self._writer.commit()
        except BaseException as exc:
            self._writer.abort()
            loop.call_soon_threadsafe(_settle, self._worker, self._pipe, None, exc)
        else:
            loop.call_soon_threadsafe(_settle, self._worker, self._pipe, result, None)

    async def push(self, data: bytes) -> None:
        if self._worker.done():  # the worker failed (a full disk): stop taking bytes, say why
            await self._worker
        await self._pipe.put(data)

    async def finish(self) -> Sealed:
        self._pipe.end()
        stored = await self._worker
        return Sealed(stored, self._pipe.size, {name: d.hexdigest() for name, d in self._pipe.digests.items()})

    async def abort(self) -> None:
        self._pipe.end(failed=True)
        try:
            await self._worker
        except BaseException:  # the worker's own error, or Aborted: either way nothing was stored
            pass
