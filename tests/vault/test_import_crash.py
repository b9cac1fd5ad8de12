"""Crash safety of `kluis import`: SIGKILL at random moments never leaves a visible partial recording,
and `verify` stays clean: a crash at any point leaves no half recording visible and nothing that verify
would flag."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from appliance.box import init_box
from tests.conftest import add_role_users

KLUIS = [sys.executable, "-m", "appliance"]  # as the shared `kluis` fixture runs it
SIZE = 48 * 1024 * 1024
TRIALS = 20
EARLY = 3  # trials killed during start-up, before anything is written
SEED = 20261122


def start_import(data: Path, source: Path, password_file: Path) -> subprocess.Popen:
    return background("import", "--data", data, source, "--camera", "CAM001", "--officer", "J. Jansen",
                      "--start", "2026-11-20T13:05:00Z", "--end", "2026-11-20T13:35:00Z",
                      "--password-file", password_file)


def background(*args) -> subprocess.Popen:
    return subprocess.Popen(KLUIS + [str(a) for a in args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_until_writing(proc: subprocess.Popen, data: Path) -> float:
    """Seconds from now until the import creates its temp file (or exits)."""
    t0 = time.monotonic()
    while proc.poll() is None and not any((data / "tmp").iterdir()):
        time.sleep(0.001)
    return time.monotonic() - t0


def catalog_ids(data: Path) -> list[str]:
    conn = sqlite3.connect(data / "catalog.db")
    try:
        return [r[0] for r in conn.execute("SELECT id FROM recordings ORDER BY id")]
    finally:
        conn.close()


@pytest.mark.slow
def test_kill_9_during_import(tmp_path, password_file):
    password = password_file.read_text().splitlines()[0]
    template = tmp_path / "template"
    init_box(template, "admin", password, kdf_profile="interactive")[0].close()
    add_role_users(template, "fg")  # cat needs a role that views footage
    source = tmp_path / "recording.bin"
    source.write_bytes(os.urandom(SIZE))
    source_sha = hashlib.sha256(source.read_bytes()).hexdigest()

    # Measure one import: start-up (interpreter, fingerprint) until the temp file appears, then the part
    # that stores (encrypt + write, fsync, rename, directory fsync, catalog commit) until it exits.
    probe = tmp_path / "probe"
    shutil.copytree(template, probe)
    proc = start_import(probe, source, password_file)
    startup = wait_until_writing(proc, probe)
    t0 = time.monotonic()
    assert proc.wait() == 0, proc.stderr.read()
    storing = time.monotonic() - t0
    shutil.rmtree(probe)

    # Kill moments: a few in start-up, measured from launch; the rest stratified over the storing part
    # (plus 20 %), measured from the moment the temp file appears, so that a slow start-up on a busy
    # machine does not push them all past the end.
    rng = random.Random(SEED)
    plan = [("launch", rng.uniform(0, startup)) for _ in range(EARLY)]
    plan += [("writing", storing * 1.2 * (i + rng.random()) / (TRIALS - EARLY)) for i in range(TRIALS - EARLY)]
    outcomes = {"complete": 0, "killed: nothing": 0, "killed: partial write": 0, "killed: blob without row": 0,
                "killed: complete": 0}
    reimported = False
    for trial, (anchor, delay) in enumerate(plan):
        data = tmp_path / f"trial{trial}"
        shutil.copytree(template, data)
        proc = start_import(data, source, password_file)
        if anchor == "writing":
            wait_until_writing(proc, data)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)  # a no-op if it already finished
        out, err = proc.communicate()
        killed = proc.returncode == -signal.SIGKILL
        assert killed or proc.returncode == 0, (trial, err)
        leftovers = list((data / "tmp").iterdir())
        blobs = [p for p in (data / "blobs").rglob("*") if p.is_file()]

        # list, verify and cat side by side: they only read, and start-up dominates each of them
        committed = catalog_ids(data)
        checks = {"list": background("list", "--data", data, "--json", "--user", "fg", "--password-file",
                                       password_file),
                  "verify": background("verify", "--data", data, "--password-file", password_file)}
        if committed:
            checks["cat"] = background("cat", "--data", data, committed[0], "--purpose", "complaint",
                                       "--case", "KL-1", "--user", "fg", "--password-file", password_file)
        done = {name: (*proc.communicate(), proc.returncode) for name, proc in checks.items()}
        rows = json.loads(done["list"][0])
        context = (f"trial {trial}: kill {delay:.3f}s after {anchor}, killed={killed}, "
                   f"rows={[r['id'] for r in rows]}, tmp={[p.name for p in leftovers]}, "
                   f"blobs={[(p.name, p.stat().st_size) for p in blobs]}")
        assert done["list"][2] == 0 and sorted(r["id"] for r in rows) == committed, context
        assert len(rows) <= 1, context
        if not killed:
            assert [r["id"] for r in rows] == [out.decode().strip()], context
        verify_out, verify_err, verify_rc = done["verify"]
        assert verify_rc == 0, (context, verify_out, verify_err)
        assert f"ok: {len(rows)} recording(s)".encode() in verify_out, context
        if rows:
            (row,) = rows
            assert row["size"] == SIZE and row["state"] == "stored", context
            plain, cat_err, cat_rc = done["cat"]
            assert cat_rc == 0, (context, cat_err)
            assert hashlib.sha256(plain).hexdigest() == source_sha, context
            outcomes["killed: complete" if killed else "complete"] += 1
        elif blobs:
            outcomes["killed: blob without row"] += 1
        elif leftovers:
            outcomes["killed: partial write"] += 1
        else:
            outcomes["killed: nothing"] += 1
        if not rows and (leftovers or blobs) and not reimported:
            # what a crash left behind does not block importing the same file again
            again = start_import(data, source, password_file)
            new_out, new_err = again.communicate()
            assert again.returncode == 0 and new_out.strip(), (context, new_err)
            assert catalog_ids(data) == [new_out.decode().strip()], context
            reimported = True
        shutil.rmtree(data)
    print(f"\nimport: start-up {startup:.3f}s, storing {storing:.3f}s; outcomes {outcomes}")
    # the kills must have hit imports while they were storing, or the test proved little
    assert outcomes["killed: partial write"] + outcomes["killed: blob without row"] >= 2, outcomes
    assert reimported
