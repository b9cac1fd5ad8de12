"""The alert storm of a full disk: a download that resumes (8 of 10 MiB on the disk after a cut) runs out
of room (ENOSPC: something else filled the disk). Its part file is freed, which makes room for the 2 MiB
the resume needed: a check of that much passes, "space is back", the download starts over from byte 0
and fails again. It must be one episode instead: one alert, no retry until the reserve is free plus
room for the whole recording, then one "space back" line and the offload completes."""

from __future__ import annotations

import errno
import re
import secrets
import shutil
import time
from pathlib import Path

from appliance.box import init_box
from tests.dock.dock_helpers import box_alerts, box_recordings, configure_box, pair, set_config, wait_for

RUN = secrets.token_hex(2).upper()
MiB = 1 << 20


def fill_up(path: Path) -> Path:
    """Fill the file system to the last byte (the box may take some of it first: that is the point)."""
    ballast = path / "ballast"
    try:
        with open(ballast, "ab") as f:
            f.write(b"\0" * shutil.disk_usage(path).free)
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
    return ballast


def test_a_resumed_download_that_meets_a_full_disk_is_one_episode(small_disk, cameras, serve):
    disk = small_disk("48m")
    data = disk / "data"
    init_box(data, "admin", "correct horse battery staple", kdf_profile="interactive")[0].close()
    configure_box(data, ["127.0.0.1"])
    set_config(data, "storage", {"reserve_mb": 4})
    cam = cameras(f"RESUME-{RUN}", "--rate", "1000000")
    server = serve(data)
    pair(data, cam, "--pre-record", "0", "--post-record", "0")
    cam.faults(cut_after=8 * MiB, cut_count=1)
    recording = cam.record(0.5, 10)

    server.find(r"resuming recording .* at byte", 60)  # 8 MiB are on the disk, 2 MiB to come
    ballast = fill_up(disk)
    server.find(r"ALERT storage_full", 30)
    wait_for(lambda: not any((data / "tmp").glob("*.part")), 10, what="the part file freed")
    time.sleep(3)  # six probe intervals: room for the 2 MiB is there, for the 10 MiB it is not
    out = server.output()
    assert len(re.findall(r"ALERT storage_full", out)) == 1, out
    assert "disk space is back" not in out, out
    assert cam.entries() and not box_recordings(data)

    ballast.unlink()
    wait_for(lambda: not cam.entries() and len(box_recordings(data)) == 1, 60, what="offload completed")
    out = server.output()
    assert len(re.findall(r"ALERT storage_full", out)) == 1, out
    assert len(re.findall(r"disk space is back", out)) == 1, out
    assert [a["kind"] for a in box_alerts(data)].count("storage_full") == 1
    assert box_recordings(data)[0]["source_ref"] == recording["id"]
    server.stop()
