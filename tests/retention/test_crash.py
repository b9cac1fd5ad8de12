"""kill -9 during a sweep (the real `kluis retention run` in a subprocess, at random moments): the next
sweep finishes the job, and the catalog, the blob store, the deletion records and the audit log agree."""

from __future__ import annotations

import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from appliance import audit, recordings, sweep
from appliance.box import Box

from retention_helpers import store

OLD, NEW, TRIALS, BATCH = 200, 10, 12, "5"
KLUIS = [sys.executable, "-m", "appliance"]


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A box with OLD recordings long expired and NEW recent ones (on the real clock)."""
    from appliance.box import init_box

    root = tmp_path_factory.mktemp("crash")
    box, _ = init_box(root / "data", "admin", "pw-pw-pw-pw", kdf_profile="interactive")
    now = datetime.now(timezone.utc)
    with box:
        box.catalog.db.execute("PRAGMA synchronous=OFF")  # setup speed only; the sweep runs with FULL
        for i in range(OLD):
            store(box, root, now - timedelta(days=100, minutes=i), size=1500)
        for i in range(NEW):
            store(box, root, now - timedelta(days=1, minutes=i), size=1500)
    return root / "data"


def check_consistent(data: Path) -> None:
    with Box(data) as box:
        db = box.catalog.db
        rows = list(db.query("SELECT id, state, stored_path FROM recordings"))
        assert all(r["state"] == "stored" for r in rows)
        assert len(rows) == NEW
        keys = {r[0] for r in db.execute("SELECT recording_id FROM file_keys")}
        assert keys == {r["id"] for r in rows}
        deletions = list(db.query("SELECT recording_id, sha256, blob_removed_at FROM deletions"))
        assert len(deletions) == OLD
        assert all(d["blob_removed_at"] for d in deletions)
        assert not {d["recording_id"] for d in deletions} & keys
        for d in deletions:
            assert not (data / box.vault.relpath(d["sha256"])).exists()
        on_disk = {str(p.relative_to(data)) for p in (data / "blobs").glob("*/*")}
        assert on_disk == {r["stored_path"] for r in rows}
        # Every deletion audited exactly once, and the chain intact.
        deleted = [e["recording_id"] for e in audit.entries(box.catalog, action="delete")]
        assert sorted(deleted) == sorted(d["recording_id"] for d in deletions)
        assert audit.verify(box.catalog, box.signing_key().verify_key).ok
        assert recordings.verify(box) == []


def deletions_so_far(data: Path) -> int:
    conn = sqlite3.connect(data / "catalog.db", timeout=10)
    try:
        return conn.execute("SELECT COUNT(*) FROM deletions").fetchone()[0]
    finally:
        conn.close()


def wait_for_first_deletion(proc: subprocess.Popen, data: Path, timeout: float = 30) -> float:
    """Seconds until the sweep in `proc` has committed its first batch (polling, as a reader would)."""
    started = time.monotonic()
    while proc.poll() is None and time.monotonic() - started < timeout:
        if deletions_so_far(data):
            return time.monotonic() - started
        time.sleep(0.002)
    return time.monotonic() - started


def test_kill_9_during_sweep_then_resume(template, tmp_path):
    rng = random.Random(int.from_bytes(os.urandom(4), "big"))
    # Calibrate: how long the command runs here, and how long its sweep takes once it has begun.
    full = tmp_path / "full"
    shutil.copytree(template, full)
    started = time.monotonic()
    proc = subprocess.Popen(KLUIS + ["retention", "run", "--data", str(full), "--batch", BATCH],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = wait_for_first_deletion(proc, full)
    assert proc.wait(60) == 0
    duration = time.monotonic() - started
    span = max(duration - first, 0.05)
    check_consistent(full)

    interrupted = 0
    for trial in range(TRIALS):
        data = tmp_path / f"t{trial}"
        shutil.copytree(template, data)
        proc = subprocess.Popen(KLUIS + ["retention", "run", "--data", str(data), "--batch", BATCH],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if trial % 3 == 0:
            time.sleep(rng.uniform(0, duration))  # any moment, start-up included
        else:
            wait_for_first_deletion(proc, data)  # a moment inside the sweep
            time.sleep(rng.uniform(0, 0.5 * span))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        with Box(data) as box:
            done = box.catalog.db.execute("SELECT COUNT(*) FROM deletions").fetchone()[0]
            pending = box.catalog.db.execute(
                "SELECT COUNT(*) FROM deletions WHERE blob_removed_at IS NULL").fetchone()[0]
            if 0 < done < OLD or pending:
                interrupted += 1
            result = sweep.sweep(box)
            assert len(result.deleted) + done == OLD
            assert result.finished == pending
        check_consistent(data)
        shutil.rmtree(data)
    print(f"{interrupted} of {TRIALS} kills landed inside a sweep")
    assert interrupted >= TRIALS // 4, "too few kills landed inside a sweep to test resuming"
