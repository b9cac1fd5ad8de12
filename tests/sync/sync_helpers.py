"""Helpers of the sync tests: the archive as a real subprocess, a TCP proxy that cuts the link,
recordings of random bytes."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from appliance import recordings
from appliance.box import Box
from sync.archive.store import Archive

ARCHIVE_PASSWORD = "archive operator password"
KLUIS = [sys.executable, "-m", "appliance"]
T0 = datetime(2026, 11, 20, 14, 0, tzinfo=timezone.utc)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ArchiveProcess:
    """`kluis archive serve` in a subprocess on a fixed port, so that it can be killed and restarted."""

    def __init__(self, data_dir: Path, port: int, log_path: Path):
        self.data_dir, self.port, self.log_path = data_dir, port, log_path
        self.url = f"https://127.0.0.1:{port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(KLUIS + ["archive", "serve", "--data", str(self.data_dir), "--listen",
                                              f"127.0.0.1:{self.port}"], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"archive exited: {self.log_path.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("archive did not start listening")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


def new_token(archive_dir: Path) -> str:
    with Archive(archive_dir) as archive:
        return archive.new_token()


def import_random(box: Box, tmp_path: Path, size: int, *, camera: str = "CAM001", officer: str = "J. Jansen",
                  start: datetime = T0) -> tuple[str, bytes]:
    """A recording of `size` random bytes (random bytes do not compress: bandwidth tests are honest)."""
    data = os.urandom(size)
    path = tmp_path / f"clip-{os.urandom(4).hex()}.bin"
    path.write_bytes(data)
    result = recordings.import_file(box, path, camera=camera, officer=officer, start=start,
                                    end=start + timedelta(minutes=5))
    path.unlink()
    return result.recording_id, data


class CuttingProxy:
    """A TCP proxy on 127.0.0.1 whose link the test cuts: after `cut_after` bytes from the box, both
    sides of the connection are aborted (as a dropped uplink would); later connections pass again.
    Clearing `flowing` stalls what the box sends (the archive's answers still pass)."""

    def __init__(self, target_port: int, cuts: list[int] | None = None):
        self.target_port = target_port
        self.flowing = asyncio.Event()  # cleared: bytes from the box wait (a stalled uplink)
        self.flowing.set()
        self.server: asyncio.base_events.Server | None = None
        self.port = 0
        self.plan = list(cuts or [])  # cut after this many bytes, then after that many more, ...
        self.cut_after: int | None = self.plan.pop(0) if self.plan else None
        self.forwarded = 0  # bytes box -> archive, all connections
        self.cuts = 0
        self.first_byte_at: float | None = None
        self.last_byte_at: float | None = None
        self._open: set[asyncio.Event] = set()  # one per connection: set it to cut that connection

    def cut_now(self) -> None:
        """Cut every open connection, both sides (as a dropped and reset uplink would)."""
        for done in self._open:
            done.set()
        self.cuts += 1

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        self.server.close()

    async def _handle(self, reader, writer) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        done = asyncio.Event()

        async def pump(src, dst, upstream: bool):
            try:
                while data := await src.read(65536):
                    if upstream:
                        now = time.monotonic()
                        self.first_byte_at = self.first_byte_at or now
                        self.last_byte_at = now
                        self.forwarded += len(data)
                        if self.cut_after is not None:
                            self.cut_after -= len(data)
                            if self.cut_after <= 0:
                                self.cut_after = self.plan.pop(0) if self.plan else None
                                self.cuts += 1
                                break
                    if upstream:
                        await self.flowing.wait()
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            done.set()

        tasks = [asyncio.create_task(pump(reader, up_writer, True)), asyncio.create_task(pump(up_reader, writer, False))]
        self._open.add(done)
        await done.wait()
        self._open.discard(done)
        for w in (writer, up_writer):
            w.transport.abort()
        for task in tasks:
            task.cancel()
