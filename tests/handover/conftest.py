"""A box for handover tests (tests/handover_box.py): one user per role (two privacy officers, for four eyes),
real H.264 recordings, and a real age key pair made by the Debian `age-keygen`."""

from __future__ import annotations

import os
import pty
import select
import shutil
import time
from datetime import timedelta
from pathlib import Path

import pytest

from tests.conftest import secret_file
from tests.handover_box import START, template_fixture
from tests.handover_box import age_key, opened_copy  # noqa: F401  (fixtures)
from tests.template_fixtures import ids, original, template_copy  # noqa: F401  (fixtures)

RECEIVER = "Politie Eenheid Amsterdam, District Centrum, J. de Boer (brigadier, 123456)"
BASIS = "vordering art. 126nd Sv"
CASE = "PV-2026-118"

needs_age = pytest.mark.skipif(shutil.which("age") is None or shutil.which("age-keygen") is None,
                               reason="the age CLI (Debian package age) is not installed")

box_template = template_fixture("handoverbox", (  # (key, camera, officer, team, start, seconds)
    ("noord", "CAM001", "hh", "Noord", START, 8),
    ("zuid", "CAM002", "de Vries", "Zuid", START + timedelta(hours=2), 3),
))


@pytest.fixture
def pw(tmp_path) -> Path:
    return secret_file(tmp_path / "pw.txt")


def age_with_passphrase(args: list[str], passphrase: str, prompts: int = 1, timeout: float = 60) -> tuple[int, str]:
    """Run the real age CLI, which reads a passphrase only from a terminal: give it one (a pty) and type
    the passphrase at each prompt. Returns (exit status, what it printed)."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: age, with the pty as its terminal
        try:
            os.execvp("age", ["age", *args])
        finally:
            os._exit(127)
    seen, typed, deadline = b"", 0, time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(fd, 1024)
                except OSError:
                    break
                if not chunk:
                    break
                seen += chunk
                if typed < prompts and seen.lower().count(b"passphrase") > typed:
                    os.write(fd, passphrase.encode() + b"\n")
                    typed += 1
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(status), seen.decode(errors="replace")
        os.kill(pid, 9)
    finally:
        os.close(fd)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), seen.decode(errors="replace")
