"""A full disk: the box's data directory on a small tmpfs. Offload stops cleanly with an alert, the camera
keeps every recording it still has, nothing half-written is left, and offload resumes by itself when
space returns. Both ways a disk fills: the free-space check before a download (storage.reserve_mb), and
ENOSPC in the middle of one."""

from __future__ import annotations

import errno
import secrets
import shutil
from pathlib import Path

from appliance.box import Box, init_box
from dock_helpers import box_alerts, box_recordings, configure_box, pair, run_kluis, set_config, wait_for

RUN = secrets.token_hex(2).upper()


def fill(path: Path, leave_bytes: int) -> Path:
    """A ballast file that leaves about `leave_bytes` free on path's filesystem."""
    ballast = path / "ballast"
    free = shutil.disk_usage(path).free
    try:
        with open(ballast, "ab") as f:
            f.write(b"\0" * max(0, free - leave_bytes))
    except OSError as exc:
        # The box may be writing at the same moment: then the disk is full before the ballast is
        # written whole, which is the state this helper is for.
        if exc.errno != errno.ENOSPC:
            raise
    return ballast


def test_full_disk_stops_cleanly_and_resumes(small_disk, cameras, serve, password_file):
    small_disk = small_disk("40m")
    data = small_disk / "data"
    init_box(data, "admin", "correct horse battery staple", kdf_profile="interactive")[0].close()
    configure_box(data, ["127.0.0.1"])
    set_config(data, "storage", {"reserve_mb": 4})
    cam = cameras(f"DISK-{RUN}", "--rate", "6000000")
    server = serve(data)
    pair(data, cam, "--pre-record", "0", "--post-record", "0")
    first = cam.record(0.5, filler_mb=2)
    wait_for(lambda: cam.entries() == [] and len(box_recordings(data)) == 1, 30, what="first recording")

    # 1. Not enough room for the next recording (plus the reserve): offload stops before writing.
    ballast = fill(small_disk, 8 * 2**20)
    big = [cam.record(0.5, filler_mb=6), cam.record(0.5, filler_mb=6)]
    server.find(r"ALERT storage_full.*offload paused, cameras keep their recordings", 30)
    assert {e["id"] for e in cam.entries()} == {e["id"] for e in big}
    assert len(box_recordings(data)) == 1
    kinds = [a["kind"] for a in box_alerts(data)]
    assert kinds.count("storage_full") == 1  # one alert, not one per retry

    # 2. Room returns: offload resumes by itself.
    ballast.unlink()
    wait_for(lambda: cam.entries() == [] and len(box_recordings(data)) == 3, 30, what="offload resumed")
    server.find(r"disk space is back: offload resumes")

    # 3. The disk fills up in the middle of a download (ENOSPC): the write is abandoned, nothing
    # half-written stays, the camera keeps the recording.
    set_config(data, "storage", {"reserve_mb": 0})  # read at the next start: let the download begin
    server.stop()
    server = serve(data)
    fill(small_disk, 14 * 2**20)
    mid = cam.record(0.5, filler_mb=10)
    wait_for(lambda: any(Path(data / "tmp").glob("*.part")), 20, what="download started")
    fill(small_disk, 0)
    server.find(r"ALERT storage_full", 30)
    try:
        wait_for(lambda: not any(Path(data / "tmp").iterdir()), 10, what="partial files removed")
    except AssertionError:
        raise AssertionError(f"{list(Path(data / 'tmp').iterdir())}\n{server.output()}") from None
    assert [e["id"] for e in cam.entries()] == [mid["id"]]
    assert len(box_recordings(data)) == 3
    (small_disk / "ballast").unlink()
    wait_for(lambda: cam.entries() == [] and len(box_recordings(data)) == 4, 30, what="resumed after ENOSPC")
    server.stop()

    assert {r["source_ref"] for r in box_recordings(data)} == {first["id"], mid["id"]} | {e["id"] for e in big}
    result = run_kluis("verify", "--data", data, "--deep", "--password-file", password_file, check=False)
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    with Box(data) as box:
        assert not list(box.vault.tmp.iterdir())
        assert {str(p.relative_to(data)) for p in box.vault.blobs.glob("*/*")} == box.catalog.stored_paths()
