"""Camera offload: N simulated cameras over loopback into `kluis serve`, MB/s vs. curl of the same bytes.

Targets: with 10 cameras holding one recording of `--size` each (default 1 GiB), the box's
offload rate is at least 0.8 of ten parallel `curl`s fetching the same recordings from the same simulators
to disk (ratio >= 0.8), and the box's peak memory stays under 200 MB.

Per repeat (untimed set-up first): a fresh box (`kluis init --kdf-profile interactive`), N fresh
`kluis camera-sim` processes on 127.0.0.1, paired through a first `kluis serve`, which then stops; each
camera records one incident padded to `--size`. Timed, taking turns: the baseline, N `curl -o FILE`
in parallel with the box's signed request headers (curl does not fsync; the files are removed after), then
the box: `kluis serve` is started and the time runs from its "Kluis is serving" log line (the offload
starts then) until every recording is committed in the catalog (manifest checks, download, hashing, fsync,
commit); the rate from the exec, Python's start-up included, is shown too. The peak RSS of
the serve process is read from /proc (VmHWM) before it stops. The cameras delete what the box committed,
so every repeat makes its recordings anew.
"""

from __future__ import annotations

import json
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import benchlib
from benchlib import MB, fmt_size, peak_rss_mb, result, stop

NAME = "offload"
PASSWORD = "bench horse battery staple"


def add_arguments(group) -> None:
    group.add_argument("--offload-cameras", type=int, default=10, help="offload: simulated cameras (default 10)")


class Sim:
    def __init__(self, kluis: list[str], state: Path, serial: str):
        self.state, self.serial = state, serial
        self.proc = subprocess.Popen([*kluis, "camera-sim", "--serial", serial, "--state", str(state), "--bind",
                                      "127.0.0.1", "--address", "127.0.0.1"],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)
        self.port, self.code = 0, ""
        assert self.proc.stdout is not None  # stdout=PIPE
        while not (self.port and self.code):
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"camera simulator {serial} exited")
            if m := re.search(r"listening on port (\d+)", line):
                self.port = int(m.group(1))
            if m := re.match(r"pairing code: (\d{8})$", line.strip()):
                self.code = m.group(1)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def set_dock_config(data: Path) -> None:
    path = data / "kluis.toml"
    path.write_text(path.read_text().replace(
        "[dock]\n", '[dock]\ninterfaces = ["127.0.0.1"]\nprobe_interval_s = 0.5\nretry_s = 0.5\n'
                    "concurrency = 16\n", 1))


def catalogued(data: Path, source: str = "dock") -> int:
    """Recordings from `source` (dock, axis, usb) in the box's catalog, read without a lock."""
    conn = sqlite3.connect(f"file:{data / 'catalog.db'}?mode=ro", uri=True, timeout=5)
    try:
        return conn.execute("SELECT count(*) FROM recordings WHERE source = ?", [source]).fetchone()[0]
    finally:
        conn.close()


def start_serve(kluis: list[str], data: Path, log: Path) -> subprocess.Popen:
    proc = subprocess.Popen([*kluis, "serve", "--data", str(data), "--listen", "127.0.0.1:0"],
                            stdout=open(log, "a"), stderr=subprocess.STDOUT)
    return proc


def wait_log(log: Path, pattern: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not re.search(pattern, log.read_text()):
        if time.monotonic() > deadline:
            raise RuntimeError(f"kluis serve: no {pattern!r} within {timeout} s; see {log}")
        time.sleep(0.1)


def one_round(args, kluis: list[str], work: Path, n: int) -> tuple[float, float, float, float, int]:
    """(box seconds from "serving", box seconds from exec, curl seconds, box peak RSS MB, total bytes)."""
    data = work / "data"
    password = work / "password.txt"
    password.write_text(PASSWORD + "\n")
    benchlib.run_child([*kluis, "init", "--data", data, "--password-file", password, "--totp-required", "", "--kdf-profile",
                        "interactive"])
    set_dock_config(data)
    log = work / "serve.log"
    sims = [Sim(kluis, work / f"cam{i}", f"BENCH-{i:02d}") for i in range(n)]
    try:
        serve = start_serve(kluis, data, log)
        wait_log(log, "Kluis is serving")
        for sim in sims:
            benchlib.run_child([*kluis, "cameras", "pair", "--data", data, sim.serial, sim.code,
                                "--pre-record", "0", "--post-record", "0", "--password-file", password])
        stop(serve)
        filler_mb = max(0.0, args.size / 2**20 - 0.2)  # the MP4 itself is ~0.2 MiB
        procs = [subprocess.Popen([*kluis, "camera-sim", "record", "--state", str(sim.state), "--seconds", "1",
                                   "--filler-mb", str(filler_mb), "--wait", "600"], stdout=subprocess.DEVNULL)
                 for sim in sims]
        for proc in procs:
            if proc.wait() != 0:
                raise RuntimeError("a camera did not record")
        entries = [json.loads(next((sim.state / "recordings").glob("*.json")).read_text()) for sim in sims]
        total = sum(e["size"] for e in entries)

        curl_s = curl_all(data, sims, entries, work / "curl")
        log.write_text("")
        launched = time.perf_counter()
        serve = start_serve(kluis, data, log)
        while "Kluis is serving" not in log.read_text():  # Python start-up and imports are not offload
            if serve.poll() is not None:
                raise RuntimeError(f"kluis serve exited; see {log}")
            time.sleep(0.01)
        serving = time.perf_counter()
        while catalogued(data) < n:
            if serve.poll() is not None:
                raise RuntimeError(f"kluis serve exited; see {log}")
            time.sleep(0.02)
        done = time.perf_counter()
        peak = peak_rss_mb(serve.pid)
        stop(serve)
        return done - serving, done - launched, curl_s, peak, total
    finally:
        for sim in sims:
            sim.stop()


def curl_all(data: Path, sims: list[Sim], entries: list[dict], out: Path) -> float:
    """N parallel curls of the recordings, each with the box's signed request headers."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from appliance.clock import system_clock
    from appliance.dock import protocol
    from appliance.keys import read_signing_key

    key = read_signing_key(data / "keys" / "signing.key")
    out.mkdir(exist_ok=True)
    cmds = []
    for sim, entry in zip(sims, entries):
        path = f"{protocol.API_PREFIX}/recordings/{entry['id']}"
        headers = protocol.sign_request(key, "GET", path, b"", system_clock())
        cmd = ["curl", "-sf", "-o", str(out / entry["id"]), f"http://127.0.0.1:{sim.port}{path}"]
        for name, value in headers.items():
            cmd += ["-H", f"{name}: {value}"]
        cmds.append(cmd)
    began = time.perf_counter()
    procs = [subprocess.Popen(cmd) for cmd in cmds]
    if any(p.wait() != 0 for p in procs):
        raise RuntimeError("curl failed")
    seconds = time.perf_counter() - began
    for entry in entries:
        got = (out / entry["id"]).stat().st_size
        if got != entry["size"]:
            raise RuntimeError(f"curl fetched {got} bytes of {entry['size']}")
        (out / entry["id"]).unlink()
    return seconds


def run(args) -> list[dict]:
    n = args.offload_cameras
    kluis = benchlib.kluis_command()
    # (box seconds from "serving", from exec, curl seconds, box peak RSS MB, total bytes) of each round
    measured = [one_round(args, kluis, work, n)
                for work in benchlib.rounds(args, "offload", f"{n} cameras x {fmt_size(args.size)}")]

    def rates(column: int) -> list[float]:
        return [m[4] / m[column] / MB for m in measured]

    label = f"{n} x {fmt_size(args.size)}"
    box = result(NAME, f"kluis serve offload ({label})", rates(0), "MB/s",
                 note="from 'Kluis is serving' to the last catalog commit: manifests, download, hash, fsync, commit")
    wall = result(NAME, f"kluis serve from exec ({label})", rates(1), "MB/s",
                  note="the same, with the process start-up (imports, catalog, web UI)")
    base = result(NAME, f"curl in parallel ({label})", rates(2), "MB/s", note="no fsync, no hashing")
    rows = benchlib.versus(NAME, box, base, "offload/curl", "kluis serve", label, [m[3] for m in measured], "< 200")
    rows.insert(1, wall)
    return rows
