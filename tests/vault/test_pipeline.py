"""The import pipeline's concurrency: Encryptor.chunks seals ahead on a helper thread; BlobWriter.write
copies into staging blocks that are hashed and written (O_DIRECT where the filesystem has it) on two more.
The bytes, the hash, the resume offsets and the buffer-reuse contract must be exactly those of plain
sequential code."""

from __future__ import annotations

import errno
import hashlib
import io
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

import pytest

from appliance import appendfile, container
from appliance.container import Encryptor
from appliance.errors import StorageFull
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


def o_direct_works(directory: Path) -> bool:
    if not hasattr(os, "O_DIRECT"):
        return False
    try:
        os.close(os.open(directory / "probe", os.O_WRONLY | os.O_CREAT | os.O_DIRECT, 0o600))
        return True
    except OSError:
        return False
    finally:
        (directory / "probe").unlink(missing_ok=True)


@pytest.fixture(params=["disk", "tmpfs"])
def store(request, tmp_path, monkeypatch) -> Vault:
    """A vault on the test's disk (O_DIRECT where it has it) and one on tmpfs (no O_DIRECT: writes go
    through the page cache). A machine without /dev/shm gets the test's disk as a platform without
    O_DIRECT instead: the same cached path."""
    if request.param == "disk":
        root = tmp_path / "vault"
    elif os.path.isdir("/dev/shm"):
        root = Path(tempfile.mkdtemp(dir="/dev/shm"))
        request.addfinalizer(lambda: shutil.rmtree(root, ignore_errors=True))
    else:
        monkeypatch.delattr(os, "O_DIRECT", raising=False)
        root = tmp_path / "vault"
    vault = Vault(root)
    vault.create()
    return vault


def container_bytes(identity, chunks: float) -> bytes:
    plain = os.urandom(int(chunks * CHUNK))
    return encryptor(identity).header.raw + b"".join(
        bytes(v) for v in encryptor(identity).chunks(io.BytesIO(plain)))


def test_staged_writes_store_the_right_blob(store, identity):
    """Writes of every size land in staging blocks that are hashed and written on helper threads; the
    content address and the payload are those of the bytes given, and the caller may reuse its buffer
    as soon as write() returns, even when hashing is slower than writing."""
    data = container_bytes(identity, 70.3)  # several staging blocks and a tail
    header_size = encryptor(identity).header.size
    writer = store.writer()
    assert writer._file.direct == o_direct_works(store.tmp)
    slow = SlowHash()  # nothing is hashed yet: swap it in for the writer's hash
    writer._sha, writer._file.hashes = slow, (slow,)
    buf = bytearray(4 * CHUNK + 4096)  # reused for every write, like Encryptor's ring
    pos = 0
    for step in [5, 100, len(buf), 999, len(buf), len(buf), 70_000] * 200:
        piece = data[pos : pos + step]
        if not piece:
            break
        view = memoryview(buf)[: len(piece)]
        view[:] = piece
        writer.write(view)
        view[:] = bytes(len(piece))  # scribble: write() must be done with the buffer
        pos += len(piece)
    writer.write(data[pos:])
    stored = writer.commit()
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert (store.root / stored.stored_path).read_bytes() == data[header_size:]
    assert stored.container_size == len(data)
    assert list(store.tmp.iterdir()) == []


@pytest.mark.parametrize("cut", [0.5, 3.0, appendfile.BLOCK / CHUNK, 40.25])
def test_resume_from_a_synced_offset(store, identity, cut):
    """A writer synced mid-block (offsets not aligned for O_DIRECT) and closed, as when a download is cut
    or the process dies; the next one rebuilds the hash from the disk and continues at the durable offset."""
    data = container_bytes(identity, 45.5)
    first = store.writer("cam-1-rec-9")
    first.write(data[: int(cut * CHUNK)])
    offset = first.sync()
    first.close()  # the process dies here
    second = store.writer("cam-1-rec-9", resume=True)
    assert second.received == offset == int(cut * CHUNK)
    second.write(data[offset:])
    assert second.commit().sha256 == hashlib.sha256(data).hexdigest()


def test_a_writer_removes_its_names_half_written_header_sidecar(store, identity):
    """Killed while the header sidecar was being written (durable.write_atomic's temp file, named at random),
    a writer leaves `.<name>.hdr.<random>.tmp`; the next writer of that name removes it, and nothing of
    another name's."""
    data = container_bytes(identity, 3.5)
    store.tmp.mkdir(parents=True, exist_ok=True)
    stale = store.tmp / ".cam-1-rec-9.hdr.8fec847a.tmp"
    other = store.tmp / ".cam-2-rec-1.hdr.0badc0de.tmp"
    for path in (stale, other):
        path.write_bytes(b"half a header")
    writer = store.writer("cam-1-rec-9", resume=True)
    assert not stale.exists() and other.exists()
    writer.write(data)
    assert writer.commit().sha256 == hashlib.sha256(data).hexdigest()
    assert list(store.tmp.iterdir()) == [other]


def test_a_sync_in_the_middle_of_a_block_changes_nothing(store, identity):
    """sync() writes the staged tail through the cache; the block is later written whole over it."""
    data = container_bytes(identity, 10.7)
    writer = store.writer()
    for i in range(0, len(data), 300_001):
        writer.write(data[i : i + 300_001])
        writer.sync()
    stored = writer.commit()
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert (store.root / stored.stored_path).stat().st_size == len(data) - encryptor(identity).header.size


def test_a_write_error_on_the_disk_thread_reaches_the_caller(tmp_path, identity, monkeypatch):
    """The disk is full while a block is written on the helper thread: the next write (or commit) says
    so, and nothing is left behind."""
    vault = Vault(tmp_path)
    vault.create()
    data = container_bytes(identity, 40)
    writer = vault.writer()

    def full(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(writer._file, "_write_block", full)
    with pytest.raises(StorageFull):
        for i in range(0, len(data), CHUNK):
            writer.write(data[i : i + CHUNK])
        writer.commit()
    assert list(vault.tmp.iterdir()) == []


@pytest.mark.parametrize("staged", [True, False])
def test_appendfile_hashes_only_what_it_appends_and_takes_back_a_tail(store, staged):
    """The archive resumes a part file at its length and rolls back a range that did not verify: the
    hashes see the appended bytes only, and truncate() leaves the file as it was before them. Not
    staged, the file's length is all that was appended as soon as write() returns."""
    path = store.tmp / "upload.part"
    before = os.urandom(3 * appendfile.ALIGN + 123)  # not aligned: the first block starts below it
    path.write_bytes(before)
    appended = os.urandom(2 * appendfile.BLOCK + 77_777)
    digest = hashlib.sha256()
    f = appendfile.AppendFile(path, [digest], staged=staged)
    assert f.size == len(before)
    f.write(appended[:1000])
    assert path.stat().st_size == len(before) + (0 if staged else 1000)
    assert f.sync() == len(before) + 1000
    f.write(appended[1000:])
    assert f.sync() == len(before) + len(appended)
    assert digest.hexdigest() == hashlib.sha256(appended).hexdigest()
    assert path.read_bytes() == before + appended
    f.truncate(len(before) + 5000)
    f.write(b"tail")
    f.sync()
    f.close()
    assert path.read_bytes() == before + appended[:5000] + b"tail"
