"""`kluis serve` starting after a power cut: leftovers of interrupted writes that nothing will resume (an
import's part file, a blob committed but never catalogued) are removed, as `kluis verify` removes them;
recent ones (a write in progress in another process) and everything the catalog names stay."""

from __future__ import annotations

import os
import time
from datetime import datetime, timezone

from appliance.box import Box
from appliance.dock.footage import make_mp4


def test_serve_removes_old_leftovers_at_start(box_dir, tmp_path, kluis, serve, password_file):
    data = box_dir[0]
    clip = make_mp4(tmp_path / "clip.mp4", 1, datetime(2026, 11, 20, 13, 5, tzinfo=timezone.utc), "CAM001")
    kluis("import", "--data", data, clip, "--camera", "CAM001", "--officer", "J. Jansen", "--start",
          "2026-11-20T14:05:00", "--password-file", password_file)
    with Box(data) as box:
        kept = set(box.catalog.stored_paths())
    assert len(kept) == 1
    hour_ago = time.time() - 7200
    stale_part = data / "tmp" / "w-123-abcdef.part"
    stale_blob = data / "blobs" / "ff" / ("ff" * 32)
    fresh_part = data / "tmp" / "CAM001-0002.part"
    for path in (stale_part, stale_blob, fresh_part):
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"left by a power cut")
    for path in (stale_part, stale_blob):
        os.utime(path, (hour_ago, hour_ago))
    from tests.dock.dock_helpers import configure_box  # discovery on loopback only

    configure_box(data, ["127.0.0.1"])
    box = serve(data)
    box.find(r"Kluis is serving")
    assert box.find(r"removed 2 leftover\(s\) of interrupted writes")
    assert not stale_part.exists() and not stale_blob.exists() and fresh_part.exists()
    assert all((data / path).exists() for path in kept)
    assert box.stop() == 0
