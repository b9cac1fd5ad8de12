"""Sync to the archive over loopback: `kluis sync run` vs `curl --upload-file` to a trivial aiohttp handler.

Setup, outside the timing: an archive (`kluis archive init`, served by `kluis archive serve` in its own
process), a box enrolled at it, and one held recording of --size random bytes. Each round times
`kluis sync run` (a whole process: start-up, signed requests, the container streamed in one request with
the archive's written offset asked for alongside, fsync every 64 MiB and at the end, the archive's hash
check and rename, the receipt) and `curl -k --upload-file` of the same container
bytes over HTTPS to a trivial aiohttp PUT handler that writes them to a file and fsyncs once. Between
rounds the archive's copy and the box's receipt are removed so that the next round sends it again.
Targets: sync/curl >= 0.8; the archive's peak RSS (VmHWM of its process over all rounds) < 200 MB.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import benchlib
from benchlib import fmt_size, progress, ratio, result, run_child

NAME = "sync"

BASELINE_SERVER = r'''
import os, sys
from aiohttp import web
from appliance import tls

async def put(request):
    with open(sys.argv[3], "wb") as f:
        while block := await request.content.read(1024 * 1024):
            f.write(block)
        f.flush()
        os.fsync(f.fileno())
    return web.json_response({"ok": True})

app = web.Application(client_max_size=2**40)
app.router.add_put("/upload", put)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[2]), ssl_context=tls.server_context(sys.argv[1]),
            access_log=None, print=None)
'''


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_listening(port: int, proc: subprocess.Popen) -> None:
    for _ in range(400):
        if proc.poll() is not None:
            raise RuntimeError(f"server exited ({proc.returncode})")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not start")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(args) -> list[dict]:
    from appliance import recordings, retention
    from appliance.box import Box, init_box
    from datetime import datetime, timezone
    from sync.archive.store import Archive, init_archive
    from sync.client import Syncer

    work: Path = args.work
    kluis = benchlib.kluis_command()
    size = args.size
    label = fmt_size(size)
    progress(f"sync: setting up a box with one held {label} recording and an archive")
    src = benchlib.make_input(work / "input.bin", size)
    archive_dir, box_dir = work / "archive", work / "box"
    init_archive(archive_dir, "bench", kdf_profile="interactive")[0].close()
    box, _ = init_box(box_dir, "admin", "bench", kdf_profile="interactive")
    box.close()
    port, base_port = _port(), _port()
    log = open(work / "archive.log", "wb")
    server = subprocess.Popen(kluis + ["archive", "serve", "--data", archive_dir, "--listen", f"127.0.0.1:{port}"],
                              stdout=log, stderr=subprocess.STDOUT)
    (work / "baseline.py").write_text(BASELINE_SERVER)
    baseline = subprocess.Popen([sys.executable, str(work / "baseline.py"), str(archive_dir), str(base_port),
                                 str(work / "baseline.out")], stdout=subprocess.DEVNULL, stderr=log)
    try:
        _wait_listening(port, server)
        _wait_listening(base_port, baseline)
        with Archive(archive_dir) as archive:
            token = archive.new_token()
        run_child(kluis + ["sync", "enroll", "--data", box_dir, f"https://127.0.0.1:{port}", token])
        with Box(box_dir) as box:
            rid = recordings.import_file(box, src, camera="CAM001", officer="bench",
                                         start=datetime(2026, 11, 20, tzinfo=timezone.utc),
                                         end=datetime(2026, 11, 20, 0, 10, tzinfo=timezone.utc)).recording_id
            retention.add_hold(box, rid, "police_report", "BENCH-1", actor="admin")
            row = box.catalog.get_recording(rid)
            container = work / "container.bin"
            with open(container, "wb") as out, box.vault.open_payload(row["stored_path"]) as payload:
                out.write(box.catalog.header_of(rid))
                while block := payload.read(4 * 2**20):
                    out.write(block)
        sent = container.stat().st_size

        def ours():
            _reset(box_dir, archive_dir, row["sha256"])
            benchlib.warm(box_dir / row["stored_path"])
            return run_child(kluis + ["sync", "run", "--data", box_dir])

        def curl():
            benchlib.warm(container)
            return run_child(["curl", "-sS", "-k", "--fail", "--upload-file", container,
                              f"https://127.0.0.1:{base_port}/upload"])

        def in_process():
            _reset(box_dir, archive_dir, row["sha256"])
            benchlib.warm(box_dir / row["stored_path"])
            with Box(box_dir) as box:
                start = time.perf_counter()
                passed = asyncio.run(Syncer(box).run())
                seconds = time.perf_counter() - start
            if not passed.ok:
                raise RuntimeError(f"sync pass failed: {passed.as_dict()}")
            return benchlib.Child(seconds, 0.0, 0.0, 0, b"", b"")

        contenders = {"kluis sync run": ours, "curl --upload-file": curl, "Syncer.run()": in_process}
        samples: dict[str, list[float]] = {name: [] for name in contenders}
        # CPU per GB sent, of the sender and of the receiving server: where the time goes.
        servers = {"kluis sync run": server, "curl --upload-file": baseline}
        cpu: dict[str, list[float]] = {f"{who} {name}": [] for name in servers for who in ("sender", "server")}
        for r in range(args.repeats):
            names = list(contenders)
            for i in range(len(names)):
                name = names[(r + i) % len(names)]
                before = _cpu_seconds(servers[name].pid) if name in servers else 0.0
                child = contenders[name]()
                samples[name].append(sent / child.seconds / benchlib.MB)
                if name in servers:
                    cpu[f"sender {name}"].append(child.cpu_seconds / (sent / 1e9))
                    cpu[f"server {name}"].append((_cpu_seconds(servers[name].pid) - before) / (sent / 1e9))
            progress(f"sync round {r + 1}/{args.repeats}: " + ", ".join(
                f"{n} {samples[n][-1]:.0f} MB/s" for n in names))
        peak = benchlib.peak_rss_mb(server.pid)
    finally:
        for proc in (server, baseline):
            benchlib.stop(proc, timeout=10)
        log.close()
    speed = {name: result(NAME, f"{name} ({label})", got, "MB/s") for name, got in samples.items()}
    speed["kluis sync run"]["note"] = "whole process over loopback HTTPS: start-up, one signed streamed request, the archive hashes once"
    speed["curl --upload-file"]["note"] = "one PUT to a trivial aiohttp handler (same TLS cert), one fsync"
    speed["Syncer.run()"]["note"] = "the same pass timed inside this process: no start-up"
    return [
        *speed.values(),
        ratio(NAME, "sync/curl", speed["kluis sync run"], speed["curl --upload-file"], target=">= 0.8"),
        ratio(NAME, "Syncer.run()/curl", speed["Syncer.run()"], speed["curl --upload-file"]),
        *(result(NAME, f"CPU {name}", got, "s/GB") for name, got in cpu.items()),
        result(NAME, f"peak RSS archive ({label}, {args.repeats} rounds)", peak, "MB", target="< 200"),
    ]


def _reset(box_dir: Path, archive_dir: Path, sha: str) -> None:
    """Make the archive forget the recording and the box send it again (bench only)."""
    from appliance.box import Box
    from sync.archive.store import Archive

    with Archive(archive_dir) as archive:
        archive.db.execute("DELETE FROM recordings WHERE sha256 = ?", [sha])
    (archive_dir / "blobs" / sha[:2] / sha).unlink(missing_ok=True)
    with Box(box_dir) as box:
        box.catalog.db.execute("DELETE FROM sync_receipts")
        box.catalog.db.execute("UPDATE sync_outbox SET state = 'queued', sent_bytes = 0, metadata_sent = NULL")
    os.sync()
