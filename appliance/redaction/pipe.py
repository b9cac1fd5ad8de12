"""A bounded byte pipe in memory, between the muxer's thread and the Encryptor's."""

from __future__ import annotations

import threading

PIPE_BYTES = 8 * 1024 * 1024


class Pipe:
    """A bounded byte pipe between two threads, in memory: the muxer writes, the Encryptor reads.
    Writes block while PIPE_BYTES are waiting; either side can break it (the other then gets an error)."""

    def __init__(self, limit: int = PIPE_BYTES):
        self.limit = limit
        self._buf = bytearray()
        self._cond = threading.Condition()
        self._closed = False   # the writer is done
        self._broken = False   # the reader gave up
        self.written = 0

    # writer side (PyAV calls write; no seek/tell: the muxer knows the output is a stream)
    def write(self, data) -> int:
        data = bytes(data)
        with self._cond:
            while len(self._buf) >= self.limit and not self._broken:
                self._cond.wait()
            if self._broken:
                raise BrokenPipeError("the reader of the redaction output stopped")
            self._buf += data
            self.written += len(data)
            self._cond.notify_all()
        return len(data)

    def flush(self) -> None:
        pass

    def close_writer(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    # reader side
    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        with self._cond:
            while not self._buf and not self._closed and not self._broken:
                self._cond.wait()
            if self._broken:
                raise BrokenPipeError("the redaction stopped")
            n = min(len(view), len(self._buf))
            view[:n] = self._buf[:n]
            del self._buf[:n]
            self._cond.notify_all()
            return n

    def read(self, n: int = -1) -> bytes:
        buf = bytearray(n if n >= 0 else self.limit)
        got = self.readinto(buf)
        return bytes(buf[:got])

    def break_(self) -> None:
        with self._cond:
            self._broken = True
            self._cond.notify_all()
