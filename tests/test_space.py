"""One account of free space: ingests reserve their declared size before writing, and two that each fit
alone but not together are not both admitted, from any thread. On a real small tmpfs."""

from __future__ import annotations

import gc
import logging
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


# --- across processes -------------------------------------------------------------------------------------
HOLDER = """
import sys, time
from pathlib import Path
from appliance import space
from appliance.config_models import Settings, StorageSettings

class DiskBox:
    data_dir = Path(sys.argv[1])
    settings = Settings(storage=StorageSettings(reserve_mb=4))

room = space.reserve(DiskBox, int(sys.argv[2]), "a download in another process")
print("held", flush=True)
time.sleep(600)
"""


def test_a_reservation_of_another_process_counts_until_that_process_dies(disk):
    import subprocess
    import sys

    size = (_free(disk) - 4 * MiB) * 2 // 3  # either fits alone, both do not
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(disk.data_dir), str(size)],
                              stdout=subprocess.PIPE, cwd=Path(__file__).resolve().parent.parent)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
        assert space.in_flight(disk) == size  # booked by `kluis serve`, seen by `kluis import`
        with pytest.raises(StorageFull, match="in flight"):
            space.reserve(disk, size, "an import")
    finally:
        holder.kill()  # kill -9: it gives nothing back itself
        holder.wait()
    assert space.in_flight(disk) == 0  # the room of a dead process is free again
    assert [p.name for p in (disk.data_dir / "reservations").iterdir()] == ["lock"]
    with space.reserve(disk, size, "the import, now"):
        assert space.in_flight(disk) == size


def test_what_is_on_the_disk_is_not_counted_twice(disk):
    size = (_free(disk) - 4 * MiB) * 2 // 3
    room = space.reserve(disk, size, "a download")
    written = size // 2
    (disk.data_dir / "part").write_bytes(b"\1" * written)
    with pytest.raises(StorageFull):  # counted twice: the half on the disk and the whole reservation
        space.check(disk, size - written)
    room.wrote(written)
    assert space.in_flight(disk) == size - written
    space.check(disk, (_free(disk) - 4 * MiB) - (size - written))  # just what is left beside it fits
    room.release()
    assert space.in_flight(disk) == 0


# --- full-disk episodes -------------------------------------------------------------------------------------
@pytest.fixture
def space_log(caplog):
    caplog.set_level(logging.INFO, logger="kluis.space")
    return caplog


def _lines(caplog, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "kluis.space" and text in r.getMessage()]


def test_a_full_disk_is_one_episode_that_ends_only_with_room_for_what_failed(disk, space_log, monkeypatch):
    failed = 6 * MiB
    ballast = disk.data_dir / "ballast"
    ballast.write_bytes(b"\0" * (_free(disk) - 4 * MiB - 2 * MiB))  # room for 2 MiB beyond the reserve
    with pytest.raises(StorageFull):
        space.reserve(disk, failed, "a download")
    alert = space.full(disk, failed, "a download failed")  # starts the episode: the caller alerts, once
    assert alert is not None and alert.startswith("a download failed; ingest paused until 11.0 MiB are free")  # 4 + 6 + 1
    for _ in range(20):  # every retry, every other camera: no new alert, no new line
        assert space.full(disk, failed, "again") is None
    assert not space_log.records  # the alert is the episode's line, the caller's

    # A write that failed frees its part file: room for a small ingest, but the episode holds on.
    with open(ballast, "r+b") as f:
        f.truncate(ballast.stat().st_size - 3 * MiB)  # 5 MiB beyond the reserve: not the 6 + slack needed
    assert space.room_back(disk) is False
    with pytest.raises(StorageFull, match="the disk is full"):
        space.reserve(disk, MiB, "a small clip")
    assert space.in_episode(disk)

    ballast.unlink()
    assert space.room_back(disk) is True
    assert space.room_back(disk) is True  # over: nothing more to say
    assert len(_lines(space_log, "disk space is back")) == 1
    with space.reserve(disk, failed, "the download, now"):
        pass

    # It runs full again right away (something else fills it): the next episode waits a backoff first.
    monkeypatch.setattr(space, "FIRST_BACKOFF_S", 3600.0)  # a backoff no slow machine outlasts in this test
    monkeypatch.setattr(space, "MAX_BACKOFF_S", 3600.0)
    alert = space.full(disk, failed, "full again")
    assert alert is not None and "not before 3600 s" in alert
    assert space.room_back(disk) is False  # room, but not before the backoff
    space._ledger(disk.data_dir).episode.since -= 3600  # the backoff passes
    assert space.room_back(disk) is True
    assert len(_lines(space_log, "disk space is back")) == 2


def test_a_handover_package_kept_on_the_box_reserves_its_size(small_disk, tmp_path):
    from types import SimpleNamespace

    from appliance import package

    data = small_disk("40m") / "data"
    init_box(data, "admin", PASSWORD, kdf_profile="interactive")[0].close()
    config = data / "kluis.toml"
    config.write_text(config.read_text().replace("[storage]\n", "[storage]\nreserve_mb = 4\n", 1))
    with Box(data) as box:
        room = _free(box) - space.reserve_bytes(box)
        readers = {"r1": SimpleNamespace(size=room // 2), "r2": SimpleNamespace(size=room // 2)}
        with space.reserve(box, room // 4, "a download in flight"):
            with pytest.raises(StorageFull, match="not enough room for handover package"):
                package.build(box, {"protection": "none"}, readers, data / "package.zip")
        assert not list(data.glob("package.zip*"))  # refused before a byte was written
        assert space.in_flight(box) == 0
