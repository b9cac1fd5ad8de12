"""kill -9 of the box (`kluis serve`) at random moments during offload, 20 times: after every restart each
recording exists exactly once, on the box or still on the camera, and `kluis verify` is clean."""

from __future__ import annotations

import random
import secrets
import signal
import sqlite3
import time
from collections import Counter

import pytest

from appliance.box import Box
from dock_helpers import box_recordings, configure_box, pair, run_kluis, wait_for

TRIALS = 20
RUN = secrets.token_hex(2).upper()


def refs_on_box(data) -> list[str]:
    """Camera recording ids in the catalog (read-only, in-process: a CLI start per trial is too slow)."""
    conn = sqlite3.connect(f"file:{data / 'catalog.db'}?mode=ro", uri=True, timeout=10)
    try:
        return [row[0] for row in conn.execute("SELECT source_ref FROM recordings WHERE source = 'dock'")]
    finally:
        conn.close()


def check_exactly_once(data, cams, made: set[str]) -> None:
    on_box = Counter(refs_on_box(data))
    assert all(n == 1 for n in on_box.values()), f"stored twice: {on_box}"
    on_cameras = {e["id"] for c in cams for e in c.entries()}
    missing = made - set(on_box) - on_cameras
    assert not missing, f"lost: {missing}"
    assert set(on_box) <= made


@pytest.mark.slow
def test_kill_9_during_offload(box_dir, cameras, serve, password_file):
    data = box_dir[0]
    configure_box(data, ["127.0.0.1"])
    # Slow serving (2 MB/s) and ~1 MB recordings: a kill lands mid-download, mid-commit or mid-delete.
    cams = [cameras(f"KILL{i}-{RUN}", "--rate", "2000000") for i in (1, 2)]
    server = serve(data)
    for cam in cams:
        pair(data, cam, "--pre-record", "0", "--post-record", "0")
    server.stop()
    rng = random.Random(RUN)
    made: set[str] = set()
    for cam in cams:
        made.add(cam.record(1, filler_mb=1)["id"])
    began = time.monotonic()
    killed_mid_transfer = 0
    for trial in range(TRIALS):
        made.add(cams[trial % 2].record(0.5, filler_mb=rng.choice([0.5, 1, 2]))["id"])
        server = serve(data)
        time.sleep(rng.uniform(0.1, 1.5))
        if "resuming recording" in "\n".join(server.lines) or "stored as" not in "\n".join(server.lines):
            killed_mid_transfer += 1
        server.stop(signal.SIGKILL)
        check_exactly_once(data, cams, made)
    trials_s = time.monotonic() - began

    server = serve(data)
    wait_for(lambda: all(c.entries() == [] for c in cams) and len(box_recordings(data)) == len(made), 60,
             what="offload completed after the last restart")
    server.stop()
    check_exactly_once(data, cams, made)
    assert {r["source_ref"] for r in box_recordings(data)} == made
    result = run_kluis("verify", "--data", data, "--deep", "--password-file", password_file, check=False)
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    with Box(data) as box:
        assert not list(box.vault.tmp.glob("*")), "half-written files left after the offload completed"
        referenced = box.catalog.stored_paths()
        on_disk = {str(p.relative_to(data)) for p in box.vault.blobs.glob("*/*")}
        assert on_disk == referenced
    assert killed_mid_transfer >= 3, "the kills never hit a transfer: the test does not test anything"
    print(f"{TRIALS} kill -9 trials in {trials_s:.1f} s")
