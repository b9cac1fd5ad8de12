"""Rotation and deletion replay, on a box whose clock the test moves: no backup keeps a recording's key
past the earliest date it may be deleted, and a restore replays the deletions made after its backup."""

from __future__ import annotations

from datetime import timedelta

import pytest

from appliance import audit, backup, recordings, restore, retention, sweep
from appliance.box import Box
from appliance.clock import to_iso
from appliance.errors import KluisError
from backup_helpers import T0, catalog_of, listing, set_grace, store
from tests.conftest import PASSWORD


def held_box(cbox, tmp_path):
    """r_old: ended 40 days ago (past its 28-day term), held; r_new: ended now, held; r_free: no hold."""
    r_old, _ = store(cbox, tmp_path, T0 - timedelta(days=40))
    r_new, _ = store(cbox, tmp_path, T0)
    r_free, _ = store(cbox, tmp_path, T0)
    retention.add_hold(cbox, r_old, "complaint", "K-1", "admin")
    retention.add_hold(cbox, r_new, "police_report", "PV-2", "admin")
    return r_old, r_new, r_free


def test_expiry_is_the_earliest_lawful_deletion_of_any_recording_in_it(cbox, clock, tmp_path):
    target = tmp_path / "usb"
    r_old, r_new, r_free = held_box(cbox, tmp_path)
    result = backup.run(cbox, target)
    manifest = result.manifest
    assert {r["id"] for r in manifest["recordings"]} == {r_old, r_new}
    # the audit head in the snapshot: the entry before the run's own 'backup' entry
    last = audit.entries(cbox.catalog, newest_first=True, limit=2)
    assert last[0]["action"] == "backup"
    assert manifest["audit"] == {"count": last[1]["seq"], "head": last[1]["hash"]}
    # r_old's term has passed: a release now lets it go grace_days (7) later; r_new lives to its term (28).
    assert manifest["expires_at"] == to_iso(T0 + timedelta(days=7))
    # No held recording: nothing in it has a key, so it never expires by this rule.
    retention.release_hold(cbox, r_old, "done", "admin")
    retention.release_hold(cbox, r_new, "done", "admin")
    clock.advance(minutes=1)
    assert backup.run(cbox, target).manifest["expires_at"] is None


def test_rotation_keeps_n_and_removes_expired_and_stale_backups(cbox, clock, tmp_path):
    target = tmp_path / "usb"
    r_old, r_new, r_free = held_box(cbox, tmp_path)
    names = []
    for _ in range(3):
        names.append(backup.run(cbox, target, keep=2).name)
        clock.advance(hours=1)
    # keep=2: the first went when the third was made
    assert listing(target) == names[1:]
    runs = [e["details"] for e in audit.entries(cbox.catalog, action="backup")]
    assert runs[2]["pruned"] == [{"name": names[0], "why": "more than the newest 2"}]

    # Past the expiry date (T0 + 7 days) every older backup goes at the next run, whatever keep says.
    clock.advance(days=7)
    latest = backup.run(cbox, target, keep=10)
    assert listing(target) == [latest.name]
    assert all("expired" in why for _, why in latest.pruned) and len(latest.pruned) == 2

    # A policy change lets r_old go before that backup's expiry: the next run removes every backup holding it.
    set_grace(cbox, 0)
    retention.release_hold(cbox, r_old, "case closed", "admin")
    clock.advance(hours=1)
    assert r_old in sweep.sweep(cbox).deleted
    clock.advance(hours=1)
    after = backup.run(cbox, target, keep=10)
    assert listing(target) == [after.name]
    assert after.pruned == [(latest.name, "holds 1 recording(s) deleted since")]
    assert {r["id"] for r in after.manifest["recordings"]} == {r_new}
    assert not (target / latest.name).exists()


def test_a_recording_deleted_after_the_backup_stays_deleted_after_restore(cbox, clock, tmp_path, box_dir):
    target = tmp_path / "usb"
    r_old, r_new, r_free = held_box(cbox, tmp_path)
    made = backup.run(cbox, target)
    header_old = cbox.catalog.header_of(r_old)

    # After the backup: the hold on r_old ends, a shorter grace lets the sweep delete it at once, and the
    # deletion reaches the target's journal (`kluis backup journal`, run after sweeps).
    set_grace(cbox, 0)
    clock.advance(hours=1)
    retention.release_hold(cbox, r_old, "case closed", "admin")
    clock.advance(hours=1)
    assert sweep.sweep(cbox).deleted == [r_old]
    entry = backup.append_journal(cbox, target)
    assert [d["recording_id"] for d in entry["deletions"]] == [r_old] and entry["seq"] == 2

    # The backup itself still has r_old (not expired): restore it and the journal deletes r_old again.
    new = tmp_path / "restored"
    result = restore.restore(target, new, password=PASSWORD, name=made.name, clock=clock)
    assert (result.replayed, result.recordings) == (1, 1)
    with Box(new, clock) as restored:
        ids = [r["id"] for r in restored.catalog.list_recordings()]
        assert ids == [r_new]
        assert not restored.catalog.db.execute("SELECT 1 FROM file_keys WHERE recording_id = ?", [r_old]).fetchone()
        assert not list((new / "blobs").rglob(cbox.catalog.db.execute(
            "SELECT sha256 FROM deletions WHERE recording_id = ?", [r_old]).fetchone()[0]))
        report = {r["recording_id"]: r for r in retention.deletion_report(restored.catalog)}
        assert report[r_old]["reason"] == "term expired after hold released"
        assert report[r_free]["reason"] == backup.NOT_IN_BACKUP
        deletes = audit.entries(restored.catalog, action="delete", recording_id=r_old)
        assert deletes[-1]["details"]["replayed"] is True and deletes[-1]["details"]["journal_seq"] == 2
        restore_entry = audit.entries(restored.catalog, action="restore")[-1]["details"]
        assert restore_entry["backup"] == made.name and restore_entry["recordings_deleted_again"] == 1
        assert audit.verify(restored.catalog, restored.signing_key().verify_key).ok
        assert recordings.verify(restored) == []
        # the shredded key is gone from the restored catalog file, WAL included
        assert header_old not in (new / "catalog.db").read_bytes()
        assert header_old not in ((new / "catalog.db-wal").read_bytes() if (new / "catalog.db-wal").exists() else b"")


def test_an_expired_backup_is_restored_only_when_asked_and_then_with_the_journal(cbox, clock, tmp_path):
    target = tmp_path / "usb"
    r_old, r_new, r_free = held_box(cbox, tmp_path)
    made = backup.run(cbox, target)
    clock.advance(days=1)
    retention.release_hold(cbox, r_old, "case closed", "admin")
    clock.advance(days=8)  # past the backup's expiry and r_old's grace
    assert sweep.sweep(cbox).deleted == [r_old]
    backup.append_journal(cbox, target)
    with pytest.raises(KluisError, match="expired"):
        restore.restore(target, tmp_path / "n1", password=PASSWORD, clock=clock)
    assert not (tmp_path / "n1").exists()
    result = restore.restore(target, tmp_path / "n2", password=PASSWORD, include_expired=True, clock=clock)
    assert result.name == made.name and result.replayed == 1
    with Box(tmp_path / "n2", clock) as restored:
        assert [r["id"] for r in restored.catalog.list_recordings()] == [r_new]


def test_the_backup_leaves_out_recordings_not_under_hold_and_their_keys(cbox, tmp_path, box_dir):
    target = tmp_path / "usb"
    r_old, r_new, r_free = held_box(cbox, tmp_path)
    header_free = cbox.catalog.header_of(r_free)
    made = backup.run(cbox, target)
    identity = cbox.unlock("admin", PASSWORD)
    snap = catalog_of(made.path, identity, tmp_path)
    assert {r[0] for r in snap.execute("SELECT id FROM recordings")} == {r_old, r_new}
    assert {r[0] for r in snap.execute("SELECT recording_id FROM file_keys")} == {r_old, r_new}
    snap.close()
    plain = (tmp_path / next(p.name for p in tmp_path.glob("snap-*.db"))).read_bytes()
    assert header_free not in plain and cbox.catalog.header_of(r_old) in plain
    blobs = sorted(p.name for p in (made.path / "blobs").iterdir())
    shas = {rid: cbox.catalog.get_recording(rid)["sha256"] for rid in (r_old, r_new, r_free)}
    assert blobs == sorted([shas[r_old], shas[r_new]])
    # The live catalog is untouched by the stripping.
    assert len(cbox.catalog.list_recordings()) == 3


def test_a_target_holds_one_box_only(cbox, tmp_path):
    target = tmp_path / "usb"
    backup.run(cbox, target)
    from appliance.box import init_box

    other, _ = init_box(tmp_path / "other", "admin", PASSWORD, kdf_profile="interactive")
    with other, pytest.raises(KluisError, match="another box"):
        backup.run(other, target)


def test_link_shares_an_intact_blob_with_the_earlier_backup_and_copies_a_damaged_one(cbox, clock, tmp_path):
    target = tmp_path / "usb"
    r_old, r_new, r_free = held_box(cbox, tmp_path)
    first = backup.run(cbox, target)
    clock.advance(hours=1)
    second = backup.run(cbox, target, link=True)
    sha_old = cbox.catalog.get_recording(r_old)["sha256"]
    sha_new = cbox.catalog.get_recording(r_new)["sha256"]
    assert (second.path / "blobs" / sha_old).stat().st_nlink == 2
    # a damaged earlier copy is not linked: the new backup gets a good copy of its own
    damaged = first.path / "blobs" / sha_new
    data = damaged.read_bytes()  # flip the first byte (writing b"x" was no change when it was an "x" already)
    damaged.write_bytes(bytes([data[0] ^ 0xFF]) + data[1:])
    (second.path / "blobs" / sha_new).unlink()  # (it was a link to the same damaged file)
    backup.shred_backup(second.path)
    clock.advance(hours=1)
    third = backup.run(cbox, target, link=True)
    assert (third.path / "blobs" / sha_old).stat().st_nlink == 2
    assert (third.path / "blobs" / sha_new).stat().st_nlink == 1
    assert backup.verify_backup(third.path).ok and not backup.verify_backup(first.path).ok
