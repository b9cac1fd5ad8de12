"""Axis uploads: a simulated W800 sending N recordings at once into `kluis serve`, MB/s vs. curl PUTs.

Targets: with 10 recordings of 512 MiB (or `--size`, when smaller) uploaded at once, the
box's rate is at least 0.8 of ten parallel `curl -T` PUTs of the same bytes over HTTPS to a trivial
aiohttp handler (ratio >= 0.8), and the box's peak memory stays under 200 MB.

Per repeat (untimed set-up first): a fresh box (`kluis init --kdf-profile interactive`) with
`[axis] listen` on a free loopback port, a connection file, and `kluis serve` started. One clip file of
the size (random bytes: the destination does not decode video) is read by every upload. Timed, taking
turns: the baseline, N curls in parallel to a trivial handler (a separate process, the box's own TLS
certificate) that writes each body to a file and fsyncs it, as any server must before it answers 201;
then the box: `kluis axis-sim --concurrency N` from its exec until it exits with every recording
Complete (auth, capabilities, users, devices, containers, the clips sealed while they stream, fsync,
catalog commit; the simulator retries what the box answers 503, "busy", beyond `[axis] max_uploads`).
The simulator sends no ETag, as the Axis spec needs none: the box then computes no MD5, only the SHA-256
of what came (what tells a repeated clip) and the vault's SHA-256 of the sealed blob (docs/axis.md, "Hashes").
The peak RSS of the serve process is read from /proc (VmHWM), and the CPU time of each process (serve
and the trivial server from /proc, the clients from wait4) is shown per GiB, with each round's own ratio:
bench/README.md says what they showed.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import benchlib
from benchlib import MB, fmt_size, peak_rss_mb, result, stop
from bench_offload import catalogued, start_serve, wait_log

NAME = "axis"
PASSWORD = "bench horse battery staple"
DEFAULT_SIZE = 512 * 2**20

# The baseline server: aiohttp over the same TLS certificate, each PUT body written to a file and fsynced.
TRIVIAL = textwrap.dedent("""
    import os, ssl, sys
    from aiohttp import web
    cert, key, out, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    async def put(request):
        path = os.path.join(out, request.match_info["name"])
        with open(path, "wb") as f:
            while chunk := await request.content.read(256 * 1024):
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        return web.Response(status=201)
    app = web.Application()
    app.router.add_put("/{name}", put)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    print("ready", flush=True)
    web.run_app(app, host="127.0.0.1", port=port, ssl_context=context, print=None, access_log=None)
""")


def add_arguments(group) -> None:
    group.add_argument("--axis-recordings", type=int, default=10, help="axis: recordings uploaded at once (default 10)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """A running process's CPU time so far (user + system, all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def curl_all(data: Path, clip: Path, n: int, out: Path) -> tuple[float, float, float]:
    """(seconds, CPU seconds of the trivial server, CPU seconds of the curls)."""
    port = free_port()
    out.mkdir(exist_ok=True)
    server = subprocess.Popen([sys.executable, "-c", TRIVIAL, str(data / "tls" / "cert.pem"),
                               str(data / "tls" / "key.pem"), str(out), str(port)],
                              stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None  # stdout=PIPE
    try:
        if server.stdout.readline().strip() != "ready":
            raise RuntimeError("the baseline server did not start")
        time.sleep(0.2)
        began = time.perf_counter()
        procs = [subprocess.Popen(["curl", "-sf", "--cacert", str(data / "tls" / "cert.pem"), "-T", str(clip),
                                   f"https://127.0.0.1:{port}/clip{i}"]) for i in range(n)]
        curl_cpu = 0.0
        for p in procs:
            _, status, usage = os.wait4(p.pid, 0)
            p.returncode = os.waitstatus_to_exitcode(status)
            curl_cpu += usage.ru_utime + usage.ru_stime
        seconds = time.perf_counter() - began
        if any(p.returncode != 0 for p in procs):
            raise RuntimeError("curl failed")
        server_cpu = cpu_seconds(server.pid)
    finally:
        stop(server)
    for i in range(n):
        if (out / f"clip{i}").stat().st_size != clip.stat().st_size:
            raise RuntimeError("the baseline stored a short body")
        (out / f"clip{i}").unlink()
    return seconds, server_cpu, curl_cpu


def one_round(kluis: list[str], work: Path, clip: Path, n: int) -> dict[str, float]:
    """One round's box and curl seconds, the box's peak RSS (MB) and each side's CPU seconds."""
    data = work / "data"
    password = work / "password.txt"
    password.write_text(PASSWORD + "\n")
    benchlib.run_child([*kluis, "init", "--data", data, "--password-file", password, "--totp-required", "", "--kdf-profile", "interactive"])
    port = free_port()
    toml = data / "kluis.toml"
    toml.write_text(toml.read_text().replace("[axis]\n", f'[axis]\nlisten = "127.0.0.1:{port}"\n', 1))
    conn = work / "conn.json"
    benchlib.run_child([*kluis, "axis", "connection-file", "--data", data, "--site", "Bench",
                        "--url", f"https://127.0.0.1:{port}/auth/v1.0", "--out", conn, "--password-file", password])
    log = work / "serve.log"
    serve = start_serve(kluis, data, log)
    try:
        wait_log(log, "Axis content destination: listening")
        curl_s, trivial_cpu, curl_cpu = curl_all(data, clip, n, work / "curl")
        serve_cpu = cpu_seconds(serve.pid)
        began = time.perf_counter()
        sim = benchlib.run_child([*kluis, "axis-sim", "--connection-file", conn, "--state", work / "w800",
                                  "--recordings", str(n), "--concurrency", str(n), "--clip-file", clip,
                                  "--no-gnss", "--no-etag", "--no-checksum", "--max-backoff", "0.5",
                                  "--retry-budget", "600"], check=False)
        box_s = time.perf_counter() - began
        serve_cpu = cpu_seconds(serve.pid) - serve_cpu
        if sim.returncode != 0 or catalogued(data, "axis") != n:
            raise RuntimeError(f"axis-sim exited {sim.returncode}, {catalogued(data, 'axis')} of {n} recordings complete; "
                               f"see {log}")
        peak = peak_rss_mb(serve.pid)
    finally:
        stop(serve)
    gib = n * clip.stat().st_size / 2**30
    benchlib.progress(f"axis: box {n * clip.stat().st_size / box_s / MB:.0f} MB/s, curl "
                      f"{n * clip.stat().st_size / curl_s / MB:.0f} MB/s; CPU-s/GiB: serve {serve_cpu / gib:.2f}, "
                      f"axis-sim {sim.cpu_seconds / gib:.2f}, trivial server {trivial_cpu / gib:.2f}, curl {curl_cpu / gib:.2f}; "
                      f"peak RSS {peak:.0f} MB")
    return {"box_s": box_s, "curl_s": curl_s, "peak": peak, "serve_cpu": serve_cpu / gib, "sim_cpu": sim.cpu_seconds / gib,
            "trivial_cpu": trivial_cpu / gib, "curl_cpu": curl_cpu / gib}


def run(args) -> list[dict]:
    n = args.axis_recordings
    size = min(args.size, DEFAULT_SIZE)
    kluis = benchlib.kluis_command()
    clip = benchlib.make_input(args.work / "clip.bin", size)
    measured = [one_round(kluis, work, clip, n)
                for work in benchlib.rounds(args, "axis", f"{n} recordings x {fmt_size(size)}")]
    label = f"{n} x {fmt_size(size)}"
    box = result(NAME, f"axis-sim into kluis serve ({label})", [n * size / m["box_s"] / MB for m in measured], "MB/s",
                 note="simulator exec to the last Complete: TLS, sealing, two SHA-256s, fsync, catalog")
    base = result(NAME, f"curl PUT in parallel ({label})", [n * size / m["curl_s"] / MB for m in measured], "MB/s",
                  note="to a trivial aiohttp handler over the same TLS: write and fsync, no hashing or sealing")
    rows = benchlib.versus(NAME, box, base, "axis/curl", "kluis serve", label, [m["peak"] for m in measured], "< 200")
    # Each round's own ratio (both sides saw the same moment of a shared machine): their median and range.
    rows.insert(3, result(NAME, "axis/curl of each round", [m["curl_s"] / m["box_s"] for m in measured], "x",
                          note="the spread of the rounds; the target row above is the ratio of the medians"))
    for key, what in (("serve_cpu", "kluis serve"), ("sim_cpu", "axis-sim"), ("trivial_cpu", "trivial aiohttp server"),
                      ("curl_cpu", "curl (all)")):
        rows.append(result(NAME, f"CPU of {what} per GiB", [m[key] for m in measured], "s",
                           note="user + system, all threads"))
    return rows
