"""The backup targets the keeper configures ([backup] in kluis.toml): `kluis backup` without --to backs up to
the KLUIS-BACKUP disk (when it is there) and to the network target, each reported on its own; a failing
network target is audited and alerted once per episode and does not keep the disk's backup from being
made; and the sweep's deletions reach every target at once, not at its next backup.

Real parts: OpenSSH's sshd on a free port (tests/backup/test_backup_sftp.py's fixture), sshfs, the real
CLI, a real catalog."""

from __future__ import annotations

import getpass
import json
import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from appliance import alerts, audit, backup, backup_journal, backup_sftp, backup_targets, config, restore, sweep
from appliance.box import Box
from backup_helpers import T0, store
from sshd_server import keygen, real_parts
from tests.conftest import PASSWORD


@pytest.fixture(autouse=True)
def _real_parts():
    real_parts()


def configure(data: Path, disk: Path, url: str, host_pub: str) -> None:
    """What the keeper enters on /instellingen: the disk's folder, the network target, its host key."""
    config.change(data, {"backup": {"disk": str(disk), "network": url, "network_host_key": host_pub}})


def sha_of(data: Path, recording_id: str) -> str:
    with Box(data) as box:
        return box.catalog.get_recording(recording_id)["sha256"]


def test_kluis_backup_without_to_backs_up_to_every_configured_target(box_dir, kluis, tmp_path, sshd):
    port, host_pub, authorized, remote = sshd
    data = box_dir[0]
    disk = tmp_path / "usb" / "kluis"
    disk.mkdir(parents=True)
    url = f"sftp://{getpass.getuser()}@127.0.0.1:{port}{remote}"
    with Box(data) as box:
        store(box, tmp_path, box.clock() - timedelta(hours=1))
    # The box's login key, made once; its public half goes into the server's authorized_keys.
    public = kluis("backup", "ssh-key", "--data", data).stdout.decode()
    assert public.startswith("ssh-ed25519 ") and (data / backup_sftp.SSH_KEY).exists()
    authorized.write_text(public)
    configure(data, disk, url, f"127.0.0.1 {host_pub}")  # a line as ssh-keyscan prints it, host first
    assert Box(data).settings.backup.network_host_key == " ".join(host_pub.split()[:2])

    out = kluis("backup", "--data", data).stdout.decode()
    assert f"written to {disk}: 1 recording(s)" in out and f"written to {url}: 1 recording(s)" in out
    assert len(backup.list_backups(disk)) == 1 and len(backup.list_backups(remote)) == 1
    assert not (data / backup_sftp.KNOWN_HOSTS).exists()  # the pin came from the settings

    # The server answers with another host key: the network backup is refused and audited, the disk's is
    # still made, and the command says which failed (exit 1, for the timer's status).
    config.change(data, {"backup": {"network_host_key": keygen(tmp_path / "other")}})
    result = kluis("backup", "--data", data, check=False)
    assert result.returncode == 1
    assert f"written to {disk}" in result.stdout.decode()
    assert "could not connect" in result.stderr.decode() and url in result.stderr.decode()
    assert len(backup.list_backups(disk)) == 2 and len(backup.list_backups(remote)) == 1
    with Box(data) as box:
        failed = [e["details"]["target"] for e in audit.entries(box.catalog, action="backup_failed")]
        assert failed == [url]
        # One alert for the episode, however many nights it goes on failing; the disk is not in it.
        opened = alerts.check(box).opened
        episodes = [e for e in alerts.open_episodes(box) if e["kind"] == alerts.BACKUP_FAILING]
        assert [e["subject"] for e in episodes] == [url] and episodes[0]["id"] in opened
        assert "mislukt" in episodes[0]["detail"] and "could not connect" in episodes[0]["detail"]
    assert kluis("backup", "--data", data, "--only", "network", check=False).returncode == 1
    with Box(data) as box:
        assert alerts.check(box).opened == []  # the same episode goes on: no second alert
        assert [e["id"] for e in alerts.open_episodes(box) if e["kind"] == alerts.BACKUP_FAILING] == [episodes[0]["id"]]

    # Fixed: the next run there ends the condition (the episode closes after its quiet time).
    config.change(data, {"backup": {"network_host_key": host_pub}})
    out = kluis("backup", "--data", data, "--only", "network").stdout.decode()
    assert f"written to {url}" in out and str(disk) not in out
    with Box(data) as box:
        assert alerts.backup_failing(box) == []

    # The disk unplugged: skipped, said so, not a failure.
    shutil.rmtree(disk)
    out = kluis("backup", "--data", data, "--only", "disk").stdout.decode()
    assert f"{disk}: skipped (the backup disk is not plugged in)" in out


def test_deletions_reach_every_target_after_the_sweep_and_restores_stay_right(cbox, clock, tmp_path, sshd):
    port, host_pub, authorized, remote = sshd
    data = cbox.data_dir
    disk = tmp_path / "usb" / "kluis"
    disk.mkdir(parents=True)
    url = f"sftp://{getpass.getuser()}@127.0.0.1:{port}{remote}"
    authorized.write_text(backup_sftp.login_key(cbox))
    configure(data, disk, url, host_pub)
    cbox.settings = config.load(data)
    old, _ = store(cbox, tmp_path, T0 - timedelta(days=27))  # its 28-day term ends tomorrow
    fresh, _ = store(cbox, tmp_path, T0)
    assert all(o.ok for o in backup_targets.run_all(cbox))
    old_sha = sha_of(data, old)
    for target in (disk, remote):
        assert (target / "footage" / old_sha[:2] / old_sha).exists()

    clock.advance(days=2)
    result = sweep.run_sweep(data, clock)  # the scheduled sweep, as `kluis serve` runs it
    assert result is not None and result.deleted == [old]
    for target in (disk, remote):
        # At once, not at the next backup: the journal has the deletion, the stored copy is gone, and
        # every backup there still checks (the journal says why the copy is missing).
        journal = backup_journal.read_journal(target)
        assert [d["recording_id"] for d in journal.entries[-1]["deletions"]] == [old]
        assert not (target / "footage" / old_sha[:2] / old_sha).exists()
        assert list((target / "footage").glob("??/*"))  # the fresh one stays
        _, checks = backup.verify_target(target)
        assert checks and all(c.ok for c in checks), [c.problems for c in checks]
    pushes = audit.entries(cbox.catalog, action="backup_push")
    assert sorted(e["details"]["target"] for e in pushes) == sorted([str(disk), url])
    assert all(e["details"]["deletions"] == 1 and e["details"]["footage_removed"] == 1 for e in pushes)

    # A restore from either target brings back exactly the recording still in its term, and it opens.
    for n, target in enumerate((disk, remote)):
        restored = restore.restore(target, tmp_path / f"restored{n}", password=PASSWORD, clock=clock)
        assert (restored.recordings, restored.replayed) == (1, 1)
        with Box(tmp_path / f"restored{n}", clock) as box:
            assert [r["id"] for r in box.catalog.list_recordings()] == [fresh]

    # The disk unplugged when the next deletion happens: it is pending, and gets it at the first sweep
    # after it is back (nothing deleted by that sweep itself).
    later, _ = store(cbox, tmp_path, clock() - timedelta(days=27, hours=12))
    assert all(o.ok for o in backup_targets.run_all(cbox))
    later_sha = sha_of(data, later)
    unplugged = tmp_path / "drawer"
    disk.rename(unplugged)
    clock.advance(days=1)
    assert sweep.run_sweep(data, clock).deleted == [later]
    assert not (remote / "footage" / later_sha[:2] / later_sha).exists()
    unplugged.rename(disk)
    assert (disk / "footage" / later_sha[:2] / later_sha).exists()
    with Box(data, clock) as box:
        assert backup_targets.pending(box, backup_targets.Target(backup_targets.DISK, str(disk)))
    assert sweep.run_sweep(data, clock).deleted == []
    assert not (disk / "footage" / later_sha[:2] / later_sha).exists()
    entry = json.loads((disk / backup_journal.JOURNAL).read_text().splitlines()[-1])
    assert [d["recording_id"] for d in entry["deletions"]] == [later]
    with Box(data, clock) as box:
        assert not backup_targets.pending(box, backup_targets.Target(backup_targets.DISK, str(disk)))


def test_the_network_backup_is_made_once_a_day_from_its_time_and_retried_hourly(cbox, clock, tmp_path, sshd):
    """What the appliance's 15-minute timer asks (`kluis backup --only network --due`)."""
    port, host_pub, authorized, remote = sshd
    url = f"sftp://{getpass.getuser()}@127.0.0.1:{port}{remote}"
    authorized.write_text(backup_sftp.login_key(cbox))
    config.change(cbox.data_dir, {"backup": {"disk": "", "network": url, "network_host_key": host_pub,
                                             "network_time": "03:30"}, "box": {"timezone": "UTC"}})
    cbox.settings = config.load(cbox.data_dir)
    clock.set(T0.replace(hour=3, minute=0))
    assert backup_targets.network_due(cbox)  # never made: due at once
    outcome, = backup_targets.run_all(cbox, only=backup_targets.NETWORK)
    assert outcome.ok
    assert not backup_targets.network_due(cbox)
    clock.set(T0.replace(hour=3, minute=29))
    assert not backup_targets.network_due(cbox)
    clock.set(T0.replace(hour=3, minute=31))
    assert backup_targets.network_due(cbox)  # today's moment passed since the last one

    cbox.settings = config.change(cbox.data_dir, {"backup": {"network_host_key": keygen(tmp_path / "other")}})
    outcome, = backup_targets.run_all(cbox, only=backup_targets.NETWORK)
    assert outcome.error and "could not connect" in outcome.error
    clock.advance(minutes=45)
    assert not backup_targets.network_due(cbox)  # failed 45 min ago: not at every tick
    clock.advance(minutes=20)
    assert backup_targets.network_due(cbox)
