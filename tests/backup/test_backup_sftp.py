"""A network backup target for real: OpenSSH's sshd started for the test on a free port (key logins only),
the box logging in with its own key to a pinned host key, the backup written over sshfs, checked on the
server's disk, restored from there, and refused when the host key is not the pinned one."""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from appliance import audit, backup, backup_sftp, restore, sweep
from appliance.box import Box
from backup_helpers import T0, store
from tests.conftest import PASSWORD

SSHD = "/usr/sbin/sshd"


@pytest.fixture(autouse=True)
def _real_parts():
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


def pair_box(data: Path, port: int, host_pub: str, authorized: Path) -> None:
    """What the keeper sets up once: the box's key on the server, the server's host key on the box."""
    key = data / backup_sftp.SSH_KEY
    authorized.write_text(keygen(key))
    (data / backup_sftp.KNOWN_HOSTS).write_text(f"[127.0.0.1]:{port} {host_pub}")


def test_a_backup_to_an_sftp_share_verifies_on_the_server_and_restores(cbox, clock, tmp_path, sshd):
    port, host_pub, authorized, remote = sshd
    pair_box(cbox.data_dir, port, host_pub, authorized)
    held, _ = store(cbox, tmp_path, T0)
    free, _ = store(cbox, tmp_path, T0)
    url = f"sftp://{getpass.getuser()}@127.0.0.1:{port}{remote}"
    made = backup_sftp.run_to(cbox, url)
    assert made.manifest["copied"]["recordings"] == 2
    # On the server's own disk: the backup, its journal and the footage, and all of it checks.
    on_server = remote / made.name
    assert on_server.is_dir() and backup.verify_backup(on_server, signer=made.manifest["signer"]).ok
    assert len(list((remote / "footage").glob("??/*"))) == 2
    assert not list((cbox.data_dir / "tmp").glob("backup-share-*"))  # unmounted and gone
    entry = audit.entries(cbox.catalog, action="backup")[-1]
    assert entry["details"]["target"] == url and entry["details"]["recordings"] == 2
    assert backup.last_backup(cbox, target=url).name == made.name

    clock.advance(hours=1)
    again = backup_sftp.run_to(cbox, url)
    assert again.manifest["copied"]["recordings"] == 0  # incremental over the network too

    # A deletion after the last backup reaches the share's journal (run after each sweep), and a restore
    # from the share does not bring that recording back.
    sweep.delete_early(cbox, free, actor="admin", reason="objection upheld", decision_ref="B-2")
    entry = backup_sftp.journal_to(cbox, url)
    assert [d["recording_id"] for d in entry["deletions"]] == [free]

    result = restore.restore(remote, tmp_path / "restored", password=PASSWORD, clock=clock)
    assert (result.recordings, result.replayed) == (1, 1)
    with Box(tmp_path / "restored", clock) as box:
        assert {r["id"] for r in box.catalog.list_recordings()} == {held}


def test_a_share_whose_host_key_is_not_the_pinned_one_is_refused_and_audited(cbox, tmp_path, sshd):
    port, host_pub, authorized, remote = sshd
    pair_box(cbox.data_dir, port, host_pub, authorized)
    other = keygen(tmp_path / "impostor")  # a server that is not the one the keeper pinned
    (cbox.data_dir / backup_sftp.KNOWN_HOSTS).write_text(f"[127.0.0.1]:{port} {other}")
    url = f"sftp://{getpass.getuser()}@127.0.0.1:{port}{remote}"
    with pytest.raises(backup.KluisError, match="could not connect"):
        backup_sftp.run_to(cbox, url)
    failed, = audit.entries(cbox.catalog, action="backup_failed")
    assert failed["details"]["target"] == url
    assert list(remote.iterdir()) == []
    assert not list((cbox.data_dir / "tmp").glob("backup-share-*"))
