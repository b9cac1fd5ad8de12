"""A network backup target for real: OpenSSH's sshd started for the test on a free port (key logins only),
the box logging in with its own key to a pinned host key, the backup written over sshfs, checked on the
server's disk, restored from there, and refused when the host key is not the pinned one."""

from __future__ import annotations

import getpass
from pathlib import Path

import pytest

from appliance import audit, backup, backup_sftp, restore, sweep
from appliance.box import Box
from backup_helpers import T0, store
from sshd_server import keygen, real_parts
from tests.conftest import PASSWORD


@pytest.fixture(autouse=True)
def _real_parts():
    real_parts()


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
