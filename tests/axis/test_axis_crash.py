"""kill -9 of `kluis serve` at random moments while a W800 uploads: nothing lost, nothing twice.

A real `kluis serve` (the Axis destination on a loopback port) and a real `kluis axis-sim` uploading
recordings of two clips each, padded so that kills land mid-clip, mid-Complete and in between. The
server is killed with SIGKILL 20 times and started again each time; the simulator, like a W800, keeps
every recording until its upload succeeded and retries. At the end every recording the simulator
delivered is in the catalog exactly once, per clip, and `kluis verify` finds every blob intact.
"""

from __future__ import annotations

import json
import random
import re
import signal
import socket
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from appliance.axis import accounts
from appliance.box import Box, init_box
from tests.conftest import KLUIS

PASSWORD = "crash test horse battery"
RECORDINGS = 16
CLIPS = 2
KILLS = 20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_serve(data: Path, log: Path) -> subprocess.Popen:
    proc = subprocess.Popen([*KLUIS, "serve", "--data", str(data), "--listen", "127.0.0.1:0"],
                            stdout=open(log, "a"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    start = log.read_text().count("Axis content destination: listening")
    while log.read_text().count("Axis content destination: listening") == start:
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.05)
    return proc


def catalog(data: Path, sql: str) -> list:
    conn = sqlite3.connect(f"file:{data / 'catalog.db'}?mode=ro", uri=True, timeout=10)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


@pytest.mark.slow
def test_kill9_during_axis_uploads_loses_and_duplicates_nothing(tmp_path):
    data = tmp_path / "data"
    box, _ = init_box(data, "admin", PASSWORD, kdf_profile="interactive")
    port = free_port()
    box.close()
    toml = data / "kluis.toml"
    toml.write_text(toml.read_text().replace("[axis]\n", f'[axis]\nlisten = "127.0.0.1:{port}"\n', 1)
                    .replace("[storage]\n", "[storage]\nreserve_mb = 16\n", 1))
    with Box(data) as box:
        connection = accounts.connection_file(box, "Crash", [f"https://127.0.0.1:{port}/auth/v1.0"], encrypt=False,
                                              actor="admin")
    conn_file = tmp_path / "conn.json"
    conn_file.write_text(connection.text())

    log = tmp_path / "serve.log"
    serve = start_serve(data, log)
    sim_out = tmp_path / "sim.out"

    def upload() -> subprocess.Popen:  # a W800 batch; the same state: the same System ID every time
        return subprocess.Popen([*KLUIS, "axis-sim", "--connection-file", str(conn_file), "--state",
                                 str(tmp_path / "w800"), "--recordings", str(RECORDINGS), "--clips-per-recording",
                                 str(CLIPS), "--seconds", "2", "--filler-mb", "4", "--concurrency", "3",
                                 "--retry-budget", "240", "--max-backoff", "0.5"],
                                stdout=open(sim_out, "a"), stderr=subprocess.STDOUT)

    sims = [upload()]
    rng = random.Random(20261207)
    kills = 0
    try:
        while kills < KILLS:
            time.sleep(rng.uniform(0.05, 0.6))
            if sims[-1].poll() is not None:  # a fast machine delivered the batch: kill during the next one
                assert sims[-1].returncode == 0, sim_out.read_text()[-3000:]
                sims.append(upload())
                continue
            serve.send_signal(signal.SIGKILL)
            serve.wait()
            kills += 1
            serve = start_serve(data, log)
        assert sims[-1].wait(timeout=300) == 0, sim_out.read_text()[-3000:]
    finally:
        for sim in sims:
            if sim.poll() is None:
                sim.kill()
        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=30)
    expected = RECORDINGS * len(sims)

    delivered = [line.split()[0] for line in sim_out.read_text().splitlines() if re.search(r"\bok\b", line)]
    assert len(delivered) == expected, sim_out.read_text()
    rows = catalog(data, "SELECT source_ref, sha256 FROM recordings WHERE source = 'axis'")
    refs = [ref for ref, _ in rows]
    assert len(refs) == len(set(refs)) == expected * CLIPS, refs  # none twice
    assert {ref.split("/")[0] for ref in refs} == set(delivered)  # none lost
    assert catalog(data, "SELECT count(*) FROM axis_recordings WHERE status != 'complete'") == [(0,)]
    # the audit log has one ingest per stored clip, like dock offload
    assert catalog(data, "SELECT count(*) FROM audit_log WHERE action = 'ingest'") == [(expected * CLIPS,)]
    verify = subprocess.run([*KLUIS, "verify", "--data", str(data)], capture_output=True, text=True, timeout=120)
    assert verify.returncode == 0 and f"ok: {expected * CLIPS} recording(s)" in verify.stdout, verify
    # no traceback in the box's log: a cut upload is one line
    assert "Traceback" not in log.read_text(), log.read_text()[-5000:]
    # what the kills left in the vault is either referenced or a leftover `kluis verify` removes later
    blobs = {str(p.relative_to(data)) for p in (data / "blobs").glob("*/*")}
    referenced = {path for (path,) in catalog(data, "SELECT stored_path FROM recordings")}
    assert referenced <= blobs
    print(json.dumps({"kills": kills, "batches": len(sims), "orphan_blobs": len(blobs - referenced)}))
