"""appliance/sealing.py: a stream pushed from the event loop is sealed into the vault on a worker thread.

Real parts: a real box, a real file system (a small tmpfs for the full disk), the real container reader."""

from __future__ import annotations

import asyncio
import hashlib
import os

import pytest

from appliance import recordings
from appliance.box import init_box
from appliance.container import Decryptor, parse_header
from appliance.errors import StorageFull
from appliance.sealing import PIPE_BYTES, PushSealer

PASSWORD = "correct horse battery staple"


async def test_a_pushed_stream_is_sealed_whole_with_the_digests_asked(tmp_path):
    box, _ = init_box(tmp_path / "data", "admin", PASSWORD, kdf_profile="interactive")
    data = os.urandom(3 * PIPE_BYTES + 12345)  # more than the pipe holds: the loop waits for room
    sealer = PushSealer(box, digests=("sha256", "md5"))
    for i in range(0, len(data), 65536):
        await sealer.push(data[i:i + 65536])
    sealed = await sealer.finish()
    assert sealed.size == len(data)
    assert sealed.received == {"sha256": hashlib.sha256(data).hexdigest(), "md5": hashlib.md5(data).hexdigest()}
    assert (box.data_dir / sealed.stored.stored_path).exists()
    identity = box.unlock("admin", PASSWORD)
    header = parse_header(sealed.stored.header.raw)
    with box.vault.open_payload(sealed.stored.stored_path) as payload:
        plain = b"".join(Decryptor(header, header.unwrap(identity)).stream(payload))
    assert plain == data
    box.close()


async def test_no_digest_is_computed_unasked(tmp_path):
    box, _ = init_box(tmp_path / "data", "admin", PASSWORD, kdf_profile="interactive")
    sealer = PushSealer(box)
    await sealer.push(b"x" * 1000)
    sealed = await sealer.finish()
    assert sealed.received == {} and sealed.size == 1000
    box.close()


async def test_abort_leaves_nothing(tmp_path):
    box, _ = init_box(tmp_path / "data", "admin", PASSWORD, kdf_profile="interactive")
    sealer = PushSealer(box)
    await sealer.push(os.urandom(100_000))
    await sealer.abort()
    assert [p for p in (box.data_dir / "blobs").rglob("*") if p.is_file()] == []
    assert [p for p in (box.data_dir / "tmp").iterdir() if p.is_file()] == []
    box.close()


async def test_a_full_disk_mid_stream_is_an_error_not_a_hang(small_disk):
    # The worker fails on ENOSPC while the loop waits for room in a full pipe: push must not wait for
    # ever (a W800's upload would hang until its own time-out), and nothing half-written stays.
    box, _ = init_box(small_disk("24m") / "data", "admin", PASSWORD, kdf_profile="interactive")
    sealer = PushSealer(box)
    piece = os.urandom(256 * 1024)

    async def stream() -> None:
        for _ in range(400):  # 100 MiB into a 24 MiB disk
            await sealer.push(piece)
        await sealer.finish()

    with pytest.raises(StorageFull):
        await asyncio.wait_for(stream(), timeout=60)
    assert [p for p in (box.data_dir / "tmp").iterdir() if p.is_file()] == []
    assert recordings.verify(box) == []
    box.close()
