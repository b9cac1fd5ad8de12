"""`kluis serve` speaks systemd's notify protocol (kluis.service is Type=notify with WatchdogSec): a real
`kluis serve` with a real unix datagram socket as $NOTIFY_SOCKET says READY=1 once it serves, pings
WATCHDOG=1 at half of WATCHDOG_USEC, and STOPPING=1 on SIGTERM before it exits cleanly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

KLUIS = [sys.executable, "-m", "appliance"]


def configure(data: Path) -> None:
    # mDNS on loopback only: the test touches no other interface.
    config = data / "kluis.toml"
    text = config.read_text()
    if "[dock]" in text:
        import tomlkit
        doc = tomlkit.parse(text)
        doc["dock"]["interfaces"] = ["127.0.0.1"]
        config.write_text(tomlkit.dumps(doc))
    else:
        config.write_text(text + '\n[dock]\ninterfaces = ["127.0.0.1"]\n')


@pytest.fixture
def notify_socket():
    """A bound unix datagram socket (a short path: sun_path holds 107 bytes)."""
    where = Path(tempfile.mkdtemp(prefix="kluis-n-", dir="/tmp"))
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(where / "notify"))
    sock.settimeout(0.2)
    yield sock, str(where / "notify")
    sock.close()
    (where / "notify").unlink(missing_ok=True)
    where.rmdir()


def messages(sock: socket.socket, until: float, stop_when=None) -> list[tuple[float, str]]:
    got = []
    while time.monotonic() < until:
        try:
            got.append((time.monotonic(), sock.recv(4096).decode()))
        except socket.timeout:
            continue
        if stop_when and stop_when(got):
            break
    return got


def start(data: Path, env: dict) -> subprocess.Popen:
    return subprocess.Popen([*KLUIS, "serve", "--data", str(data), "--listen", "127.0.0.1:0"],
                            env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def test_ready_watchdog_and_stopping(box_dir, notify_socket):
    data = box_dir[0]
    configure(data)
    sock, path = notify_socket
    proc = start(data, {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "600000"})  # 0.6 s: a ping every 0.3 s
    try:
        began = time.monotonic()
        got = messages(sock, began + 60, lambda g: sum("WATCHDOG=1" in m for _, m in g) >= 4)
        ready = [m for _, m in got if m.startswith("READY=1")]
        assert ready, (got, proc.poll())
        assert "STATUS=serving 127.0.0.1:" in ready[0]
        pings = [t for t, m in got if m == "WATCHDOG=1"]
        assert len(pings) >= 4, got
        gaps = [b - a for a, b in zip(pings, pings[1:])]
        assert all(0.1 < gap < 0.6 for gap in gaps), gaps  # about every 0.3 s, within the 0.6 s limit
        proc.send_signal(signal.SIGTERM)
        after = messages(sock, time.monotonic() + 30, lambda g: any(m == "STOPPING=1" for _, m in g))
        assert any(m == "STOPPING=1" for _, m in after), after
        assert proc.wait(timeout=30) == 0
        assert b"kluis.serve: stopped" in proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_abstract_socket_and_no_pings_for_another_process(box_dir):
    # systemd may hand an abstract socket ("@name"); WATCHDOG_PID naming another process (the variables
    # leaked to a child) means: READY=1 and STOPPING=1, but no pings from this one.
    data = box_dir[0]
    configure(data)
    name = f"kluis-test-{os.getpid()}-{time.monotonic_ns()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(0.2)
        proc = start(data, {"NOTIFY_SOCKET": "@" + name, "WATCHDOG_USEC": "200000", "WATCHDOG_PID": "1"})
        try:
            got = messages(sock, time.monotonic() + 60, lambda g: any(m.startswith("READY=1") for _, m in g))
            assert any(m.startswith("READY=1") for _, m in got), got
            later = messages(sock, time.monotonic() + 1.0)
            assert not [m for _, m in later if m == "WATCHDOG=1"], later
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
            assert any(m == "STOPPING=1" for _, m in messages(sock, time.monotonic() + 2))
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
