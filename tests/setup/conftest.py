"""Fixtures of the first-boot and maintenance tests: `kluis serve` as a real subprocess (its log lines collected), and an
HTTPS client that keeps cookies like a browser."""

from __future__ import annotations

import re
import signal
import socket
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.processes import Proc, stopped_at_end

KLUIS = [sys.executable, "-m", "appliance"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Serve(Proc):
    """`kluis serve --data DIR --listen 127.0.0.1:PORT`, output collected line by line."""

    def __init__(self, data_dir: Path, port: int | None = None, env: dict | None = None):
        self.data_dir = data_dir
        self.port = port or free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        super().__init__(KLUIS + ["serve", "--data", str(data_dir), "--listen", f"127.0.0.1:{self.port}"],
                         "kluis serve", env=env)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        return super().stop(sig, timeout)


@pytest.fixture
def serve():
    """serve(data_dir, port=None, env=None): a started Serve."""
    yield from stopped_at_end(Serve)


def client() -> aiohttp.ClientSession:
    """A browser-like HTTPS client: cookies kept (for an IP address too), the box's own certificate
    accepted (the tests compare its fingerprint instead)."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False),
                                 cookie_jar=aiohttp.CookieJar(unsafe=True))


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF token on the page:\n" + html
    return match.group(1)
