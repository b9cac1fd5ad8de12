"""Fixtures every area shares: a real initialized box on a real SQLite file, and the real `kluis` CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from appliance import roles, users
from appliance.box import Box, init_box

PASSWORD = "correct horse battery staple"
KLUIS = [sys.executable, "-m", "appliance"]


def secret_file(path: Path, secret: str = PASSWORD) -> Path:
    """path, holding secret on a line of its own: a file for the CLI's --password-file."""
    path.write_text(secret + "\n")
    return path


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    return secret_file(tmp_path / "password.txt")


@pytest.fixture
def box_dir(tmp_path: Path) -> tuple[Path, str]:
    """An initialized data dir (keeper 'admin', fast KDF); returns (path, recovery key)."""
    data = tmp_path / "data"
    box, recovery = init_box(data, "admin", PASSWORD, kdf_profile="interactive")
    box.close()
    return data, recovery


# Users the keeper 'admin' enrols for tests of commands that need a role (the CLI obeys the roles table,
# appliance/roles.py): name -> (role, team). All have PASSWORD, so `password_file` serves them all.
ROLE_USERS = {
    "fg": (roles.PRIVACY_OFFICER, None),
    "tl": (roles.TEAM_LEADER, "Noord"),
    "hh": (roles.OFFICER, "Noord"),
    "au": (roles.AUDITOR, None),
}
USER_OF_ROLE = {role: name for name, (role, _team) in ROLE_USERS.items()}


def add_role_users(data: Path, *names: str) -> None:
    """Enrol these ROLE_USERS (default: all) on the box in `data`, with the keeper's unlocked key."""
    with Box(data) as opened:
        identity = opened.unlock("admin", PASSWORD)
        for name in names or ROLE_USERS:
            role, team = ROLE_USERS[name]
            users.add_user(opened, "admin", name, role, PASSWORD, team=team, identity=identity)


@pytest.fixture
def privacy_officer(box_dir, password_file) -> list:
    """A privacy officer 'fg' on the box_dir box; the CLI arguments that act as them."""
    add_role_users(box_dir[0], "fg")
    return ["--user", "fg", "--password-file", password_file]


@pytest.fixture
def auditor(box_dir, password_file) -> list:
    """An auditor 'au' on the box_dir box; the CLI arguments that act as them."""
    add_role_users(box_dir[0], "au")
    return ["--user", "au", "--password-file", password_file]


@pytest.fixture
def box(box_dir) -> Box:
    with Box(box_dir[0]) as opened:
        yield opened


def run_kluis(*args: str, check: bool = True, input: bytes | None = None, timeout: float = 120,
              env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the real CLI in a subprocess; stdout as bytes, stderr as text."""
    result = subprocess.run(
        KLUIS + [str(a) for a in args], input=input, capture_output=True, timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    if check and result.returncode != 0:
        raise AssertionError(f"kluis {' '.join(map(str, args))} failed ({result.returncode}):\n"
                             f"{result.stderr.decode(errors='replace')}")
    return result


@pytest.fixture
def kluis():
    return run_kluis


@pytest.fixture
def small_disk(tmp_path: Path):
    """small_disk(size): a fresh tmpfs of that size (e.g. "40m"), for a full disk; unmounted afterwards.
    Mounting needs root; CI runs as root, and without it the test says why it did not run."""
    mounts: list[Path] = []

    def make(size: str) -> Path:
        if os.geteuid() != 0:
            pytest.skip("mounting a tmpfs needs root (CI runs as root)")
        mount = tmp_path / f"disk{len(mounts)}"
        mount.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)], check=True)
        mounts.append(mount)
        return mount

    yield make
    for mount in mounts:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def plaintext(box: Box, identity, recording_id: str, start: int = 0, stop: int | None = None) -> bytes:
    """A recording's plaintext for a test's assertions, past the gate's checks and audit entry (the
    audit log of the test stays as the code under test wrote it). Only tests may do this."""
    from appliance import footage

    recording = box.catalog.get_recording(recording_id)
    opened = footage.Footage(box, recording, footage._decryptor(box, identity, recording), 0)
    return b"".join(opened.read_range(start, stop))


def footage_of(box: Box, identity, recording_id: str):
    """The gate's reader of a recording, for tests of what reads it (clips, redaction), without an audit entry."""
    from appliance import footage

    recording = box.catalog.get_recording(recording_id)
    return footage.Footage(box, recording, footage._decryptor(box, identity, recording), 0)


# The suite runs on several workers (pytest-xdist: the Makefile's test target). Tests that put camera
# simulators on the shared LAN (real mDNS on the loopback) or watch it must not see each other's cameras:
# they form one scope, run one after another on one worker; every other test is a scope of its own.
# (A scheduler of our own: xdist's `loadgroup` marks do not reach the node ids under pytest 9.)
SHARED_LAN = ("tests/dock/", "tests/space/", "tests/setup/test_signing_key_page.py",
              "tests/setup/test_startup_cleanup.py", "tests/setup/test_timesync_marks.py",
              "tests/sync/test_sync_camera.py", "tests/webui/test_cameras_live.py", "tests/test_entry_point.py")


def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class SharedLanScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "shared_lan" if nodeid.startswith(SHARED_LAN) else nodeid

    return SharedLanScheduling(config, log)
