"""Several cameras offload at once onto a small real disk (a tmpfs) with `[storage] reserve_mb = 8`: the
downloads in flight are reserved together, so free space never drops below the reserve; the disk that
runs out is one episode (one alert, one audit entry, one log line at its start and one at its end, no
retries meanwhile), and the offload resumes and completes by itself once room is back."""

from __future__ import annotations

import re
import secrets
import shutil
import threading
import time
from pathlib import Path

from appliance.box import Box, init_box
from tests.dock.dock_helpers import box_alerts, box_recordings, configure_box, pair, set_config, wait_for

RUN = secrets.token_hex(2).upper()
MiB = 1 << 20
RESERVE_MB = 8


class FreeWatcher:
    """The lowest free space of a file system while it runs (sampled in a thread, as often as it can)."""

    def __init__(self, path: Path):
        self.path, self.lowest, self._stop = path, shutil.disk_usage(path).free, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.lowest = min(self.lowest, shutil.disk_usage(self.path).free)
            time.sleep(0.001)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.lowest


def leave_free(path: Path, free_bytes: int) -> Path:
    ballast = path / "ballast"
    with open(ballast, "ab") as f:
        f.write(b"\0" * max(0, shutil.disk_usage(path).free - free_bytes))
    return ballast


def storage_full_audit_entries(data: Path) -> list[dict]:
    with Box(data) as box:
        return [e for e in box.catalog.db.query("SELECT * FROM audit_log WHERE action = 'offload_error'")
                if '"storage_full"' in (e.get("details") or "")]


def test_cameras_offloading_at_once_keep_the_reserve_and_a_full_disk_is_one_episode(small_disk, cameras, serve):
    disk = small_disk("72m")
    data = disk / "data"
    init_box(data, "admin", "correct horse battery staple", kdf_profile="interactive")[0].close()
    configure_box(data, ["127.0.0.1"], concurrency=4)
    set_config(data, "storage", {"reserve_mb": RESERVE_MB})
    cams = [cameras(f"SPC{i}-{RUN}", "--rate", "4000000") for i in range(4)]
    server = serve(data)
    for cam in cams:
        pair(data, cam, "--pre-record", "0", "--post-record", "0")

    # Room beyond the reserve for three recordings and a half: the fourth must wait, not eat the reserve.
    recording = 6 * MiB
    ballast = leave_free(disk, RESERVE_MB * MiB + 3 * recording + recording // 2)
    watcher = FreeWatcher(disk)
    threads = [threading.Thread(target=cam.record, args=(0.5, 6)) for cam in cams]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    server.find(r"ALERT storage_full", 60)
    wait_for(lambda: len(box_recordings(data)) == 3 and sum(not cam.entries() for cam in cams) == 3, 60,
             what="three recordings stored and deleted on their cameras")
    waiting = [cam for cam in cams if cam.entries()]
    assert len(waiting) == 1  # the one that did not fit keeps its recording

    # The box waits: it does not try again (which would fail, free a part file and try again) nor alert.
    time.sleep(3)  # six probe intervals
    lowest = watcher.stop()
    assert lowest >= RESERVE_MB * MiB, f"free space fell to {lowest / MiB:.2f} MiB, below the reserve"
    assert len(box_recordings(data)) == 3 and waiting[0].entries()

    ballast.unlink()
    wait_for(lambda: len(box_recordings(data)) == 4 and not any(cam.entries() for cam in cams), 60,
             what="offload resumed and completed")
    out = server.output()
    assert len(re.findall(r"ALERT storage_full", out)) == 1, out
    assert len(re.findall(r"disk space is back", out)) == 1, out
    assert [a["kind"] for a in box_alerts(data)].count("storage_full") == 1
    assert len(storage_full_audit_entries(data)) == 1  # the episode's start, once; no entry per retry
    server.stop()
