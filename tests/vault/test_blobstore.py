"""The blob store (appliance/vault.py): payload-only blobs, durable commits, named writers that resume."""

from __future__ import annotations

import hashlib
import io
import os
import random
import time

import pytest
from nacl.public import PrivateKey

from appliance import container
from appliance.errors import ContainerError
from appliance.vault import Vault

from vault_helpers import CHUNK, open_all, seal


@pytest.fixture
def vault(tmp_path) -> Vault:
    v = Vault(tmp_path / "data")
    v.create()
    return v


@pytest.fixture(scope="module")
def sample():
    ident = PrivateKey.generate()
    plain = os.urandom(5 * CHUNK + 1234)
    return ident, plain, seal(plain, [ident])


def listing(vault: Vault) -> tuple[list[str], list[str]]:
    return (sorted(p.name for p in vault.tmp.iterdir()),
            sorted(str(p.relative_to(vault.root)) for p in vault.blobs.rglob("*") if p.is_file()))


def write_in_pieces(writer, data: bytes, rng: random.Random) -> None:
    pos = 0
    while pos < len(data):
        n = rng.choice([1, 7, 100, 4096, CHUNK + 3])
        writer.write(data[pos : pos + n])
        pos += n


def test_commit_stores_payload_only_under_the_container_hash(vault, sample):
    ident, plain, data = sample
    sha = hashlib.sha256(data).hexdigest()
    writer = vault.writer()
    write_in_pieces(writer, data, random.Random(1))  # pieces that split the header
    stored = writer.commit(sha.upper())
    header = container.parse_header(data)
    assert stored.sha256 == sha and not stored.existed
    assert stored.stored_path == f"blobs/{sha[:2]}/{sha}"
    assert stored.container_size == len(data)
    assert stored.header.raw == header.raw
    blob = (vault.root / stored.stored_path).read_bytes()
    assert blob == data[header.size:]  # no sealed key in the blob store: it lives in the catalog
    assert header.raw[-32:] not in blob
    assert open_all(stored.header.raw + blob, ident) == plain
    assert listing(vault) == ([], [stored.stored_path])
    assert vault.check(stored.stored_path, stored.header.raw, sha) is None


def test_same_container_twice_is_one_blob(vault, sample):
    _, _, data = sample
    first = vault.ingest(io.BytesIO(data))
    second = vault.ingest(io.BytesIO(data))
    assert second.existed and second.stored_path == first.stored_path
    assert listing(vault) == ([], [first.stored_path])


def test_hash_mismatch_is_refused_and_leaves_nothing(vault, sample):
    _, _, data = sample
    writer = vault.writer("cam1-rec1")
    writer.write(data)
    with pytest.raises(ContainerError, match="hash mismatch"):
        writer.commit("0" * 64)
    assert listing(vault) == ([], [])
    with pytest.raises(ContainerError, match="hash mismatch"):
        vault.ingest(io.BytesIO(data[:-1] + bytes([data[-1] ^ 1])), hashlib.sha256(data).hexdigest())
    assert listing(vault) == ([], [])


def test_incomplete_or_foreign_input_leaves_nothing(vault, sample):
    _, _, data = sample
    with pytest.raises(ContainerError, match="incomplete header"):
        vault.ingest(io.BytesIO(data[:100]))
    with pytest.raises(ContainerError, match="magic"):
        vault.ingest(io.BytesIO(b"\x00\x00\x00 ftypisom" + bytes(5000)))  # a plain MP4 is not a container
    assert listing(vault) == ([], [])


@pytest.mark.parametrize("cut", [50, 600, 3 * CHUNK + 17, None])
def test_resume_after_partial_writes(vault, sample, cut):
    """A named writer interrupted (after sync, or with unsynced bytes, or before the header was whole)
    resumes from what it reports and ends with the right hash."""
    ident, plain, data = sample
    sha = hashlib.sha256(data).hexdigest()
    h = container.parse_header(data).size
    rng = random.Random(cut)
    first = vault.writer("CAM7-0042")
    cut = cut if cut is not None else len(data) - 5
    write_in_pieces(first, data[:cut], rng)
    offset = first.sync()
    assert offset == cut == first.received
    first.close()  # the process dies here: no commit, no abort
    second = vault.writer("CAM7-0042", resume=True)
    # before the header is complete nothing is kept: start over
    expected_resume = cut if cut >= h else 0
    assert second.received == expected_resume
    write_in_pieces(second, data[second.received:], rng)
    stored = second.commit(sha)
    assert stored.sha256 == sha
    assert open_all(stored.header.raw + (vault.root / stored.stored_path).read_bytes(), ident) == plain
    assert listing(vault) == ([], [stored.stored_path])


def test_resume_twice_and_fresh_start_discards(vault, sample):
    _, _, data = sample
    sha = hashlib.sha256(data).hexdigest()
    w = vault.writer("x")
    w.write(data[:1000])
    w.sync()
    w.close()
    w = vault.writer("x", resume=True)
    w.write(data[1000:CHUNK])
    w.sync()
    w.close()
    w = vault.writer("x", resume=True)
    assert w.received == CHUNK
    w.close()
    fresh = vault.writer("x")  # resume=False: the old partial is dropped
    assert fresh.received == 0
    fresh.write(data)
    assert fresh.commit(sha).sha256 == sha


def test_abort_leaves_nothing(vault, sample):
    _, _, data = sample
    w = vault.writer("gone")
    w.write(data[: 2 * CHUNK])
    w.sync()
    w.abort()
    assert listing(vault) == ([], [])
    assert vault.writer("gone", resume=True).received == 0


def test_check_reports_damage_and_missing_blobs(vault, sample):
    _, _, data = sample
    stored = vault.ingest(io.BytesIO(data))
    path = vault.root / stored.stored_path
    raw = bytearray(path.read_bytes())
    raw[12345] ^= 0x40
    path.write_bytes(raw)
    assert vault.check(stored.stored_path, stored.header.raw, stored.sha256) == "blob damaged (hash mismatch)"
    path.unlink()
    assert vault.check(stored.stored_path, stored.header.raw, stored.sha256) == "blob missing"


def test_cleanup_removes_only_old_leftovers(vault, sample):
    _, _, data = sample
    kept = vault.ingest(io.BytesIO(data))
    lost = vault.root / "blobs" / "ff" / ("f" * 64)
    lost.parent.mkdir(exist_ok=True)
    lost.write_bytes(b"payload of a write whose catalog commit never happened")
    stale = vault.tmp / "w-1-dead.part"
    stale.write_bytes(b"partial")
    young = vault.tmp / "w-2-busy.part"
    young.write_bytes(b"in progress elsewhere")
    old = time.time() - 7200
    for path in (lost, stale, vault.root / kept.stored_path):
        os.utime(path, (old, old))
    # folders in tmp/ (Axis clips waiting for their key, the USB slot locks) are their owners' business
    owned = vault.tmp / "axis"
    owned.mkdir()
    (owned / "waiting.cbc").write_bytes(b"ciphertext staged until its key object comes")
    for path in (owned / "waiting.cbc", owned):
        os.utime(path, (old, old))
    assert vault.cleanup({kept.stored_path}) == 2
    assert not lost.exists() and not stale.exists()
    assert young.exists() and (vault.root / kept.stored_path).exists()
    assert (owned / "waiting.cbc").exists()
