"""A full disk is one episode across restarts: `kluis serve` restarted while the disk is still full (an
update, a watchdog restart, a power cut) does not alert again, and the end is noticed once; a new
episode after the disk was back still alerts. The episode's mark on the disk is a name only: it is made
on a disk without a free byte.

Real parts: tmpfs file systems of a few MiB, `kluis serve` and the camera simulator as processes, and
other processes on the same data directory (each a fresh interpreter, as a restarted service is)."""

from __future__ import annotations

import re
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

from appliance.box import init_box
from tests.dock.dock_helpers import ROOT, box_alerts, box_recordings, configure_box, pair, set_config, wait_for

RUN = secrets.token_hex(2).upper()
MiB = 1 << 20

# One run of a process on the data directory: "full" is an ingest that failed for lack of space, "back"
# the check the offload's probe makes. Prints what the caller would do, and the log lines.
STEP = """
import logging, sys
from pathlib import Path
from types import SimpleNamespace
logging.basicConfig(level=logging.INFO, format="LOG %(message)s", stream=sys.stdout)
from appliance import config, space
# What space.py reads of a box; not the catalog, which does not even open on a disk without a free byte.
box = SimpleNamespace(data_dir=Path(sys.argv[1]), settings=config.load(Path(sys.argv[1])))
if sys.argv[2] == "full":
    text = space.full(box, 1 << 20, "test: a write failed")
    print("ALERT " + text if text else "same episode")
else:
    print("back" if space.room_back(box) else "still full")
"""


def step(data: Path, what: str) -> str:
    done = subprocess.run([sys.executable, "-c", STEP, str(data), what], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    return done.stdout


def fill_up(path: Path, leave: int = 0) -> Path:
    """Fill the file system up to `leave` bytes free."""
    ballast = path / "ballast"
    with open(ballast, "ab") as f:
        f.write(b"\0" * max(0, shutil.disk_usage(path).free - leave))
    return ballast


def marks(data: Path) -> list[str]:
    return sorted(p.name for p in (data / "reservations").iterdir() if p.name.startswith(("episode.", "ended.")))


def test_a_full_disk_episode_outlives_the_process_and_needs_no_byte(small_disk):
    disk = small_disk("16m")
    data = disk / "data"
    init_box(data, "admin", "correct horse battery staple", kdf_profile="interactive")[0].close()
    set_config(data, "storage", {"reserve_mb": 1})
    ballast = fill_up(disk)
    assert shutil.disk_usage(disk).free == 0

    first = step(data, "full")
    assert first.startswith("ALERT test: a write failed; ingest paused"), first
    assert [m.split(".")[0] for m in marks(data)] == ["episode"]  # made on a disk without a free byte
    # The next process (the service restarted, or another ingest) is in the same episode: no alert.
    second = step(data, "full")
    assert "same episode" in second and "has been full since an earlier run" in second, second
    assert "still full" in step(data, "back")

    ballast.unlink()
    back = step(data, "back")
    assert "back" in back.splitlines()[-1] and back.count("disk space is back") == 1, back
    assert [m.split(".")[0] for m in marks(data)] == ["ended"]
    # Full again soon after: a new episode, alerted, and it backs off (it ran full again soon).
    again = step(data, "full")
    assert again.startswith("ALERT") and "it ran full again soon" in again, again


def test_kluis_serve_restarted_on_a_full_disk_does_not_alert_again(small_disk, cameras, serve):
    disk = small_disk("48m")
    data = disk / "data"
    init_box(data, "admin", "correct horse battery staple", kdf_profile="interactive")[0].close()
    configure_box(data, ["127.0.0.1"])
    set_config(data, "storage", {"reserve_mb": 4})
    cam = cameras(f"RESTART-{RUN}", "--rate", "1000000")
    server = serve(data)
    pair(data, cam, "--pre-record", "0", "--post-record", "0")
    ballast = fill_up(disk, leave=3 * MiB)  # the catalog still writes; a recording does not fit the reserve
    cam.record(0.5, 10)
    server.find(r"ALERT storage_full", 30)
    server.stop()
    assert [m.split(".")[0] for m in marks(data)] == ["episode"]

    again = serve(data)
    again.find(r"the disk has been full since an earlier run", 30)
    time.sleep(3)  # six probe intervals: the camera is still there with its recording
    out = again.output()
    assert "ALERT storage_full" not in out and "disk space is back" not in out, out
    assert cam.entries() and not box_recordings(data)

    ballast.unlink()
    wait_for(lambda: not cam.entries() and len(box_recordings(data)) == 1, 60, what="offload completed")
    out = again.output()
    assert len(re.findall(r"disk space is back", out)) == 1 and "ALERT storage_full" not in out, out
    assert [a["kind"] for a in box_alerts(data)].count("storage_full") == 1
    again.stop()
