"""Rotation and deletion replay, on a box whose clock the test moves: a backup carries every recording
within its term, no backup keeps a recording's key past the earliest date it may be deleted, and a restore
replays the deletions made after its backup and applies the term again."""

from __future__ import annotations

import hashlib
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
    assert {r["id"]: r["held"] for r in manifest["recordings"]} == {r_old: True, r_new: True, r_free: False}
    assert {r["id"]: r["until"] for r in manifest["recordings"]}[r_free] == to_iso(T0 + timedelta(days=28))
    # the audit head in the snapshot: the entry before the run's own 'backup' entry
    last = audit.entries(cbox.catalog, newest_first=True, limit=2)
    assert last[0]["action"] == "backup"
    assert manifest["audit"] == {"count": last[1]["seq"], "head": last[1]["hash"]}
    # r_old's term has passed: a release now lets it go grace_days (7) later; r_new and r_free live to their
    # term (28).
    assert manifest["expires_at"] == to_iso(T0 + timedelta(days=7))
    # Nothing in it: it holds no key, so it never expires by this rule.
    clock.advance(days=8)
    retention.release_hold(cbox, r_old, "done", "admin")
    retention.release_hold(cbox, r_new, "done", "admin")
    clock.advance(days=30)
    sweep.sweep(cbox)
    empty = backup.run(cbox, target)
    assert empty.manifest["expires_at"] is None and empty.manifest["recordings"] == []
    # and the store holds nothing any more: the footage no backup lists went with the backups
    assert list((target / "footage").glob("??/*")) == []


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
    assert {r["id"] for r in after.manifest["recordings"]} == {r_new, r_free}
    assert not (target / latest.name).exists()
    sha_old = cbox.catalog.db.execute("SELECT sha256 FROM deletions WHERE recording_id = ?", [r_old]).fetchone()[0]
    assert not (target / "footage" / sha_old[:2] / sha_old).exists()
    assert audit.entries(cbox.catalog, action="backup")[-1]["details"]["footage_removed"] == 1


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
    assert (result.replayed, result.recordings, result.expired) == (1, 2, 0)
    with Box(new, clock) as restored:
        ids = {r["id"] for r in restored.catalog.list_recordings()}
        assert ids == {r_new, r_free}
        assert not restored.catalog.db.execute("SELECT 1 FROM file_keys WHERE recording_id = ?", [r_old]).fetchone()
        assert not list((new / "blobs").rglob(cbox.catalog.db.execute(
            "SELECT sha256 FROM deletions WHERE recording_id = ?", [r_old]).fetchone()[0]))
        report = {r["recording_id"]: r for r in retention.deletion_report(restored.catalog)}
        assert report[r_old]["reason"] == "term expired after hold released"
        assert report[r_old]["blob_removed_at"] is not None  # the sweep's own path removed and recorded it
        deletes = audit.entries(restored.catalog, action="delete", recording_id=r_old)
        assert deletes[-1]["details"]["replayed"] is True and deletes[-1]["details"]["journal_seq"] == 2
        restore_entry = audit.entries(restored.catalog, action="restore")[-1]["details"]
        assert restore_entry["backup"] == made.name and restore_entry["recordings_deleted_again"] == 1
        assert audit.verify(restored.catalog, restored.signing_key().verify_key).ok
        assert recordings.verify(restored) == []
        # the shredded key is gone from the restored catalog file, WAL included
        assert header_old not in (new / "catalog.db").read_bytes()
        assert header_old not in ((new / "catalog.db-wal").read_bytes() if (new / "catalog.db-wal").exists() else b"")


def test_a_restore_never_brings_back_footage_past_its_term_even_without_a_journal_entry(cbox, clock, tmp_path):
    """The box dies after its last backup: no journal entry says what it would have deleted since. The
    restore applies the term itself: what is past it by now does not come back; held footage does."""
    target = tmp_path / "usb"
    r_old, r_new, r_free = held_box(cbox, tmp_path)
    made = backup.run(cbox, target)
    clock.advance(days=29)  # r_free's 28 days are over; r_new is held
    result = restore.restore(target, tmp_path / "n", password=PASSWORD, clock=clock)
    assert (result.name, result.replayed, result.expired, result.recordings) == (made.name, 0, 1, 2)
    with Box(tmp_path / "n", clock) as restored:
        assert {r["id"] for r in restored.catalog.list_recordings()} == {r_old, r_new}
        assert not restored.catalog.db.execute("SELECT 1 FROM file_keys WHERE recording_id = ?", [r_free]).fetchone()
        assert retention.deletion_report(restored.catalog)[-1]["reason"] == "term expired"
        assert audit.entries(restored.catalog, action="restore")[-1]["details"]["recordings_past_term"] == 1
        assert recordings.verify(restored) == []


def test_the_backup_carries_every_recording_in_its_term_and_leaves_out_those_past_it(cbox, tmp_path, box_dir):
    target = tmp_path / "usb"
    r_old, r_new, r_free = held_box(cbox, tmp_path)
    r_past, _ = store(cbox, tmp_path, T0 - timedelta(days=29))  # past its term, the sweep has not run yet
    header_past = cbox.catalog.header_of(r_past)
    made = backup.run(cbox, target)
    identity = cbox.unlock("admin", PASSWORD)
    snap = catalog_of(made.path, identity, tmp_path)
    assert {r[0] for r in snap.execute("SELECT id FROM recordings")} == {r_old, r_new, r_free}
    assert {r[0] for r in snap.execute("SELECT recording_id FROM file_keys")} == {r_old, r_new, r_free}
    assert snap.execute("SELECT reason FROM deletions WHERE recording_id = ?", [r_past]).fetchone()[0] == \
        backup.NOT_IN_BACKUP
    snap.close()
    plain = (tmp_path / next(p.name for p in tmp_path.glob("snap-*.db"))).read_bytes()
    assert header_past not in plain and cbox.catalog.header_of(r_free) in plain
    # The store: each recording as the container it is, named by its SHA-256 (sha256sum checks it).
    stored = sorted(p.name for p in (target / "footage").glob("??/*"))
    shas = {rid: cbox.catalog.get_recording(rid)["sha256"] for rid in (r_old, r_new, r_free)}
    assert stored == sorted(shas.values())
    for rid, sha in shas.items():
        data = (target / "footage" / sha[:2] / sha).read_bytes()
        assert hashlib.sha256(data).hexdigest() == sha and data.startswith(cbox.catalog.header_of(rid))
    # The live catalog is untouched by the stripping.
    assert len(cbox.catalog.list_recordings()) == 4


def test_a_target_holds_one_box_only(cbox, tmp_path):
    target = tmp_path / "usb"
    backup.run(cbox, target)
    from appliance.box import init_box

    other, _ = init_box(tmp_path / "other", "admin", PASSWORD, kdf_profile="interactive")
    with other, pytest.raises(KluisError, match="another box"):
        backup.run(other, target)


def test_each_recording_is_copied_once_and_a_lost_copy_again(cbox, clock, tmp_path):
    target = tmp_path / "usb"
    r_old, r_new, r_free = held_box(cbox, tmp_path)
    first = backup.run(cbox, target)
    assert first.manifest["copied"]["recordings"] == 3
    store(cbox, tmp_path, T0 + timedelta(hours=1))
    clock.advance(hours=2)
    second = backup.run(cbox, target)
    assert second.manifest["copied"]["recordings"] == 1 and len(second.manifest["recordings"]) == 4
    sha_new = cbox.catalog.get_recording(r_new)["sha256"]
    (target / "footage" / sha_new[:2] / sha_new).unlink()  # lost (a file system repair, a careless hand)
    assert not backup.verify_backup(second.path).ok
    clock.advance(hours=1)
    third = backup.run(cbox, target)
    assert third.manifest["copied"]["recordings"] == 1
    assert all(backup.verify_backup(p).ok for p in backup.list_backups(target))
