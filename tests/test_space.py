"""One account of free space: ingests reserve their declared size before writing, and two that each fit
alone but not together are not both admitted, from any thread. On a real small tmpfs."""

from __future__ import annotations

import gc
import threading
from datetime import datetime, timezone
from pathlib import Path

import pytest

from appliance import recordings, space
from appliance.box import Box, init_box
from appliance.config_models import Settings, StorageSettings
from appliance.errors import StorageFull
from tests.conftest import PASSWORD

MiB = 1 << 20


class DiskBox:
    """What the account needs of a box: its data directory and `[storage] reserve_mb`."""

    def __init__(self, data_dir: Path, reserve_mb: int):
        self.data_dir = data_dir
        self.settings = Settings(storage=StorageSettings(reserve_mb=reserve_mb))


@pytest.fixture
def disk(small_disk) -> DiskBox:
    return DiskBox(small_disk("24m"), reserve_mb=4)  # about 24 MiB free, 4 of them reserved


def _free(box: DiskBox) -> int:
    import shutil
    return shutil.disk_usage(box.data_dir).free


def test_two_concurrent_reservations_that_together_cross_the_reserve_are_refused_together(disk):
    size = (_free(disk) - 4 * MiB) * 2 // 3  # either fits alone, both do not
    start = threading.Barrier(2)
    won, refused = [], []

    def ingest() -> None:
        start.wait()
        try:
            won.append(space.reserve(disk, size, "a camera download"))
        except StorageFull as exc:
            refused.append(str(exc))

    threads = [threading.Thread(target=ingest) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1 and len(refused) == 1
    assert "not enough room for a camera download" in refused[0] and "in flight" in refused[0]
    assert space.in_flight(disk) == size
    won[0].release()
    won[0].release()  # once only
    assert space.in_flight(disk) == 0
    with space.reserve(disk, size, "the second one, now"):
        assert space.in_flight(disk) == size
    assert space.in_flight(disk) == 0


def test_many_threads_never_overbook(disk):
    room = _free(disk) - 4 * MiB
    size = room // 5 - 4096  # five fit, a sixth does not
    start = threading.Barrier(12)
    held, lock = [], threading.Lock()

    def ingest() -> None:
        start.wait()
        try:
            reservation = space.reserve(disk, size, "a USB file")
        except StorageFull:
            return
        with lock:
            held.append(reservation)

    threads = [threading.Thread(target=ingest) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(held) == 5
    with pytest.raises(StorageFull):
        space.check(disk, size)
    for reservation in held:
        reservation.release()
    space.check(disk, size)


def test_a_forgotten_reservation_is_given_back(disk):
    space.reserve(disk, 5 * MiB, "an ingest that lost its reservation")  # not kept: collected at once
    gc.collect()
    assert space.in_flight(disk) == 0


def test_bytes_written_count_as_the_disk_fills(disk):
    with pytest.raises(StorageFull):
        space.reserve(disk, _free(disk), "more than the disk holds")
    (disk.data_dir / "ballast").write_bytes(b"\0" * (_free(disk) - 6 * MiB))
    space.check(disk, MiB)
    with pytest.raises(StorageFull):
        space.check(disk, 3 * MiB)


def test_an_import_is_refused_while_another_ingest_holds_the_room(small_disk, tmp_path):
    data = small_disk("40m") / "data"
    init_box(data, "admin", PASSWORD, kdf_profile="interactive")[0].close()
    config = data / "kluis.toml"
    config.write_text(config.read_text().replace("[storage]\n", "[storage]\nreserve_mb = 4\n", 1))
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"\0" * (2 * MiB))
    with Box(data) as box:
        free = _free(box)
        reserve = space.reserve_bytes(box)
        with space.reserve(box, free - reserve - MiB, "a download in flight"):
            with pytest.raises(StorageFull, match="not enough room for clip.mp4"):
                recordings.import_file(box, clip, camera="CAM1", officer="J", start=datetime.now(timezone.utc),
                                       end=datetime.now(timezone.utc))
        assert space.in_flight(box) == 0
