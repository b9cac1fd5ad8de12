"""Crypto-shredding: after the sweep, a copy of the blob taken before it plus everything left in the
catalog files and the recovery key still open nothing."""

from __future__ import annotations

import shutil
from datetime import timedelta

import pytest

from appliance import sweep
from appliance.container import MAGIC, ContainerError, Decryptor, parse_header
from appliance.errors import KluisError, NotFound

from retention_helpers import T0, store


def catalog_bytes(box) -> bytes:
    return b"".join(p.read_bytes() for p in (box.data_dir / n for n in ("catalog.db", "catalog.db-wal"))
                    if p.exists())


def candidate_headers(data: bytes):
    """Every place in the catalog files that looks like a container header."""
    start = 0
    while (at := data.find(MAGIC, start)) >= 0:
        start = at + 1
        for end in range(at + 64, min(at + 4096, len(data)) + 1):
            try:
                yield parse_header(data[at:end])
                break
            except (ContainerError, KluisError, ValueError):
                continue


def test_deleted_recording_cannot_be_decrypted_with_recovery_key_and_old_blob(box_dir, rbox, clock, tmp_path):
    gone = store(rbox, tmp_path, T0, size=200_000)
    kept = store(rbox, tmp_path, T0 + timedelta(days=20), size=5_000)
    header = rbox.catalog.header_of(gone)
    stored_path = rbox.catalog.get_recording(gone)["stored_path"]
    identity = rbox.unlock_recovery(box_dir[1])
    # Before: the copy would open.
    plain_before = b"".join(retention_free_read(rbox, identity, gone))
    assert len(plain_before) == 200_000
    copy = tmp_path / "blobs-copy"
    shutil.copytree(rbox.data_dir / "blobs", copy)

    clock.set(T0 + timedelta(days=28))
    result = sweep.sweep(rbox)
    assert result.deleted == [gone] and result.wal_truncated

    with pytest.raises(NotFound):
        rbox.catalog.header_of(gone)
    assert not (rbox.data_dir / stored_path).exists()
    data = catalog_bytes(rbox)
    assert data.count(MAGIC) >= 1  # the kept recording's header is there: the search does find headers
    # Nothing secret or unique of the shredded header survives anywhere: not a 16-byte piece of any sealed
    # file key, nor its nonce or MAC (recipient public keys are public and shared by every header).
    parsed = parse_header(header)
    secrets = [sealed for _, sealed in parsed.stanzas] + [header[16:32], header[-32:]]
    for secret in secrets:
        for i in range(0, len(secret) - 15, 4):
            assert secret[i:i + 16] not in data, "a piece of the shredded header remains in the catalog files"

    # Try everything the catalog still holds against the old blob, with the recovery key.
    tried = 0
    for candidate in candidate_headers(data):
        tried += 1
        try:
            file_key = candidate.unwrap(identity)
        except KluisError:
            continue
        with open(copy / stored_path.removeprefix("blobs/"), "rb") as payload:
            with pytest.raises(ContainerError):
                for _ in Decryptor(candidate, file_key).stream(payload):
                    pass
    assert tried >= 1
    # And the kept recording still opens.
    assert len(b"".join(retention_free_read(rbox, identity, kept))) == 5_000


def retention_free_read(box, identity, recording_id):
    from tests.conftest import footage_of

    return footage_of(box, identity, recording_id).read_range()


def test_the_sweep_also_drops_the_outbox_row_and_its_rewrapped_key(rbox, clock, tmp_path):
    gone = store(rbox, tmp_path, T0, size=5_000)
    kept = store(rbox, tmp_path, T0 + timedelta(days=20), size=5_000)
    for rid in (gone, kept):  # as the sync leaves a re-wrapped header (a sealed file key) behind
        rbox.catalog.db.execute(
            "INSERT INTO sync_outbox (recording_id, reason, queued_at, state, header) VALUES (?, 'hold:x', ?, "
            "'sent', ?)", [rid, T0.isoformat(), rbox.catalog.header_of(rid)])
    clock.set(T0 + timedelta(days=28))
    assert sweep.sweep(rbox).deleted == [gone]
    left = [r[0] for r in rbox.catalog.db.execute("SELECT recording_id FROM sync_outbox")]
    assert left == [kept]
