"""The import pipeline's concurrency: Encryptor.chunks seals ahead on a helper thread, BlobWriter.write
hashes on another while it writes and starts writeback every WRITEBACK_WINDOW bytes. The bytes, the hash
and the buffer-reuse contract must be exactly those of the plain sequential code."""

from __future__ import annotations

import hashlib
import io
import os
import threading
import time

import pytest

from appliance import container, vault as vault_mod
from appliance.container import Encryptor
from appliance.vault import Vault

CHUNK = container.MIN_CHUNK_SIZE


def encryptor(identity, **kw) -> Encryptor:
    return Encryptor([identity.public_key], chunk_size=CHUNK, file_key=b"k" * 32, nonce=b"n" * 16, **kw)


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 7 * CHUNK + 3, 8 * CHUNK])
def test_readahead_seals_the_same_bytes_as_the_sequential_path(identity, size):
    plain = os.urandom(size)
    ahead = [bytes(v) for v in encryptor(identity).chunks(io.BytesIO(plain))]
    sequential = [bytes(v) for v in encryptor(identity).chunks(io.BytesIO(plain), readahead=False)]
    assert ahead == sequential
    assert len(ahead) == max(1, -(-size // CHUNK))
    assert b"".join(container.Decryptor(encryptor(identity).header, b"k" * 32).stream(
        io.BytesIO(b"".join(ahead)))) == plain


def test_a_view_stays_valid_until_the_item_after_next_is_requested(identity):
    """The producer runs ahead into a ring of buffers; it must never overwrite one the consumer may
    still read: the current view and the one before it."""
    plain = os.urandom(20 * CHUNK + 5)
    expected = [bytes(v) for v in encryptor(identity).chunks(io.BytesIO(plain), readahead=False)]
    before = None
    for index, view in enumerate(encryptor(identity).chunks(io.BytesIO(plain))):
        time.sleep(0.005)  # let the producer run as far ahead as it may
        if before is not None:
            assert bytes(before) == expected[index - 1]
        assert bytes(view) == expected[index]
        before = view


def test_closing_early_stops_the_helper_thread(identity):
    threads = threading.active_count()
    chunks = encryptor(identity).chunks(io.BytesIO(os.urandom(50 * CHUNK)))
    next(chunks)
    next(chunks)
    chunks.close()
    assert threading.active_count() == threads


class FailingSource(io.RawIOBase):
    """Gives two chunks of zeros, then a read error (a USB stick pulled out)."""

    def __init__(self):
        self.reads = 0

    def readable(self):
        return True

    def readinto(self, buf):
        self.reads += 1
        if self.reads > 2:
            raise OSError(5, "Input/output error")
        buf[:] = bytes(len(buf))
        return len(buf)


def test_a_read_error_on_the_helper_thread_reaches_the_consumer(identity):
    threads = threading.active_count()
    with pytest.raises(OSError, match="Input/output error"):
        for _ in encryptor(identity).chunks(FailingSource()):
            pass
    assert threading.active_count() == threads


class SlowHash:
    def __init__(self):
        self.sha = hashlib.sha256()

    def update(self, data) -> None:
        time.sleep(0.002)
        self.sha.update(data)

    def hexdigest(self) -> str:
        return self.sha.hexdigest()


def test_parallel_hashing_and_writeback_store_the_right_blob(tmp_path, identity, monkeypatch):
    """Large writes are hashed on the helper thread, small ones inline, across several writeback
    windows; the content address and the payload are those of the bytes given, and the caller may
    reuse its buffer as soon as write() returns."""
    monkeypatch.setattr(vault_mod, "WRITEBACK_WINDOW", 3 * CHUNK)
    hints = []
    real_fadvise = os.posix_fadvise
    monkeypatch.setattr(os, "posix_fadvise", lambda fd, offset, length, advice: (
        hints.append((offset, length, advice)), real_fadvise(fd, offset, length, advice)))
    vault = Vault(tmp_path)
    vault.create()
    enc = encryptor(identity)
    plain = os.urandom(23 * CHUNK + 11)
    container_bytes = enc.header.raw + b"".join(bytes(v) for v in encryptor(identity).chunks(io.BytesIO(plain)))
    writer = vault.writer()
    writer._sha = SlowHash()  # a hash slower than the write: write() must still wait for it
    buf = bytearray(vault_mod.PARALLEL_HASH_MIN + 4096)  # reused for every large write, like Encryptor
    pos = 0
    for step in [5, 100, len(buf), 999, len(buf), len(buf), 70_000] * 40:
        piece = container_bytes[pos : pos + step]
        if not piece:
            break
        view = memoryview(buf)[: len(piece)]
        view[:] = piece
        writer.write(view)
        view[:] = bytes(len(piece))  # scribble: write() must be done with the buffer
        pos += len(piece)
    writer.write(container_bytes[pos:])
    stored = writer.commit()
    assert stored.sha256 == hashlib.sha256(container_bytes).hexdigest()
    assert (tmp_path / stored.stored_path).read_bytes() == container_bytes[enc.header.size :]
    assert stored.container_size == len(container_bytes)
    # Writeback was started window by window, each hint covering the window before last and the last.
    payload = len(container_bytes) - enc.header.size
    assert len(hints) >= payload // (3 * CHUNK + len(buf))
    assert all(advice == os.POSIX_FADV_DONTNEED for _, _, advice in hints)
    assert hints[0][0] == 0
    assert all(a[0] <= b[0] <= a[0] + a[1] < b[0] + b[1] for a, b in zip(hints, hints[1:]))  # no gaps
    assert hints[-1][0] + hints[-1][1] > payload - 3 * CHUNK - len(buf)


def test_resume_after_writeback_windows(tmp_path, identity, monkeypatch):
    """Writeback drops clean pages from the cache; a resumed writer re-reads them from disk to rebuild
    the hash and continues from the durable offset."""
    monkeypatch.setattr(vault_mod, "WRITEBACK_WINDOW", 2 * CHUNK)
    vault = Vault(tmp_path)
    vault.create()
    data = encryptor(identity).header.raw + b"".join(
        bytes(v) for v in encryptor(identity).chunks(io.BytesIO(os.urandom(12 * CHUNK))))
    first = vault.writer("cam-1-rec-9")
    first.write(data[: 7 * CHUNK])
    offset = first.sync()
    first._file.close()  # the process dies here
    second = vault.writer("cam-1-rec-9", resume=True)
    assert second.received == offset
    second.write(data[offset:])
    assert second.commit().sha256 == hashlib.sha256(data).hexdigest()
