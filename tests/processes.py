"""Real subprocesses for the tests (`kluis serve`, `kluis camera-sim`, ...): their output collected line by line
and searchable while they run, stopped when the test ends. Imported as `tests.processes`."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


class Proc:
    """A subprocess whose output lines are collected (and searchable) while it runs."""

    def __init__(self, args: list[str], name: str, prefix: list[str] = (), env: dict | None = None):
        self.name = name
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [*prefix, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}, cwd=ROOT,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def find(self, pattern: str, timeout: float = 30.0) -> re.Match:
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            # Whether all output is in, asked before the lines are read: a line written just before the
            # process ended is still found.
            ended = self.proc.poll() is not None and not self._reader.is_alive()
            for line in list(self.lines):
                if match := regex.search(line):
                    return match
            if ended:
                raise AssertionError(f"{self.name} exited ({self.proc.returncode}) before {pattern!r}:\n"
                                     + self.output())
            if time.monotonic() > deadline:
                raise AssertionError(f"no {pattern!r} from {self.name} in {timeout:g} s:\n" + self.output())
            time.sleep(0.05)

    def output(self) -> str:
        return "\n".join(self.lines[-200:])

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(5)
        return self.proc.returncode


def stopped_at_end(start: Callable[..., Any], stop: Callable[[Any], Any] = lambda process: process.stop()
                   ) -> Iterator[Callable[..., Any]]:
    """The body of a fixture that hands the test `start` (which starts a process or server, e.g. a Proc) and
    stops every one it started when the test ends: `yield from stopped_at_end(Camera)`."""
    started: list = []

    def start_and_keep(*args, **kwargs):
        started.append(start(*args, **kwargs))
        return started[-1]

    yield start_and_keep
    for process in started:
        stop(process)
