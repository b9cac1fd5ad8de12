"""A real OpenSSH server for the network backup tests (key logins only, on a free port), and the check
that sshfs and FUSE are there: missing, a test fails rather than checking nothing."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

SSHD = "/usr/sbin/sshd"


def real_parts() -> None:
    """A real sshd and sshfs (`make debs`) and FUSE: missing, the test fails rather than checking nothing."""
    assert os.path.exists(SSHD) and shutil.which("sshfs") and os.path.exists("/dev/fuse"), \
        "needs openssh-server, sshfs and /dev/fuse: run `make debs`"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def keygen(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path.with_suffix(".pub").read_text() if path.suffix else Path(str(path) + ".pub").read_text()


@pytest.fixture
def sshd(tmp_path):
    """A real sshd on 127.0.0.1; yields (port, host public key line, authorized_keys path, remote dir)."""
    yield from run_sshd(tmp_path)


def run_sshd(tmp_path: Path):
    """The sshd fixture's body, for a fixture of another name (tests outside tests/backup)."""
    work = tmp_path / "sshd"
    work.mkdir()
    host_pub = keygen(work / "host")
    authorized = work / "authorized_keys"
    authorized.touch()
    remote = tmp_path / "nas" / "kluis"
    remote.mkdir(parents=True)
    port = free_port()
    (work / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {work / 'host'}\nAuthorizedKeysFile {authorized}\n"
        f"PidFile {work / 'pid'}\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
        "PermitRootLogin prohibit-password\nStrictModes no\nSubsystem sftp internal-sftp\n")
    Path("/run/sshd").mkdir(exist_ok=True)  # its privilege separation directory
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(work / "sshd_config")], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    try:
        yield port, host_pub, authorized, remote
    finally:
        proc.terminate()
        proc.wait(timeout=10)
