"""A box for handover tests: one user per role (two privacy officers, for four eyes), real H.264
recordings, and a real age key pair made by the Debian `age-keygen`. Built once per session, copied per
test so that tests do not see each other's handovers, holds or audit entries."""

from __future__ import annotations

import os
import pty
import select
import shutil
import subprocess
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from appliance import roles
from appliance.box import Box
from tests.handover_box import build_template

PASSWORD = "correct horse battery staple"
# name -> (role, team)
USERS = {
    "fg": (roles.PRIVACY_OFFICER, None),
    "fg2": (roles.PRIVACY_OFFICER, None),
    "tl": (roles.TEAM_LEADER, "Noord"),
    "hh": (roles.OFFICER, "Noord"),
    "au": (roles.AUDITOR, None),
}
START = datetime(2026, 11, 20, 13, 5, 0, tzinfo=timezone.utc)
NOW = START + timedelta(days=2)
RECEIVER = "Politie Eenheid Amsterdam, District Centrum, J. de Boer (brigadier, 123456)"
BASIS = "vordering art. 126nd Sv"
CASE = "PV-2026-118"

needs_age = pytest.mark.skipif(shutil.which("age") is None or shutil.which("age-keygen") is None,
                               reason="the age CLI (Debian package age) is not installed")


def fixed_clock() -> datetime:
    return NOW


@pytest.fixture(scope="session")
def handover_template(tmp_path_factory) -> tuple[Path, dict]:
    clips = (  # (key, camera, officer, team, start, seconds)
        ("noord", "CAM001", "hh", "Noord", START, 8),
        ("zuid", "CAM002", "de Vries", "Zuid", START + timedelta(hours=2), 3),
    )
    return build_template(tmp_path_factory.mktemp("handoverbox"), PASSWORD, USERS, clips, fixed_clock)


@pytest.fixture
def data(handover_template, tmp_path) -> Path:
    shutil.copytree(handover_template[0], tmp_path / "data")
    return tmp_path / "data"


@pytest.fixture
def hbox(data):
    with Box(data, clock=fixed_clock) as opened:
        yield opened


@pytest.fixture
def ids(handover_template) -> dict:
    return handover_template[1]


@pytest.fixture
def original(handover_template):
    """The plaintext MP4 a recording was imported from, by key."""
    return lambda key: (handover_template[0].parent / f"{key}.mp4").read_bytes()


@pytest.fixture(scope="session")
def age_key(tmp_path_factory) -> tuple[Path, str]:
    """(identity file, public key) from the real age-keygen."""
    if shutil.which("age-keygen") is None:
        pytest.skip("age-keygen (Debian package age) is not installed")
    path = tmp_path_factory.mktemp("agekey") / "receiver.key"
    subprocess.run(["age-keygen", "-o", str(path)], check=True, capture_output=True)
    public = next(line.split(": ", 1)[1].strip() for line in path.read_text().splitlines()
                  if line.startswith("# public key: "))
    return path, public


@pytest.fixture
def pw(tmp_path) -> Path:
    path = tmp_path / "pw.txt"
    path.write_text(PASSWORD + "\n")
    return path


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
