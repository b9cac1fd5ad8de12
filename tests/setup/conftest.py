"""Fixtures of the first-boot and maintenance tests: `kluis serve` as a real subprocess (its log lines collected), and an
HTTPS client that keeps cookies like a browser."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import aiohttp
import pytest

KLUIS = [sys.executable, "-m", "appliance"]
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Serve:
    """`kluis serve --data DIR --listen 127.0.0.1:PORT`, output collected line by line."""

    def __init__(self, data_dir: Path, port: int | None = None, env: dict | None = None):
        self.data_dir = data_dir
        self.port = port or free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            KLUIS + ["serve", "--data", str(data_dir), "--listen", f"127.0.0.1:{self.port}"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
            env={**os.environ, **(env or {})})
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def find(self, pattern: str, timeout: float = 30) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if match := re.search(pattern, line):
                    return match
            if self.proc.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.05)
        raise AssertionError(f"no {pattern!r} in kluis serve's output:\n" + "\n".join(self.lines))

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._reader.join(5)
        return self.proc.returncode


@pytest.fixture
def serve():
    started: list[Serve] = []

    def start(data_dir: Path, **kwargs) -> Serve:
        server = Serve(data_dir, **kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def client() -> aiohttp.ClientSession:
    """A browser-like HTTPS client: cookies kept (for an IP address too), the box's own certificate
    accepted (the tests compare its fingerprint instead)."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False),
                                 cookie_jar=aiohttp.CookieJar(unsafe=True))


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF token on the page:\n" + html
    return match.group(1)
