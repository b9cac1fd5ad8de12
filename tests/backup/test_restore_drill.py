"""The restore drill: a box with 200 recordings (small ones), some held, some deleted after the last backup
(the journal says so), some past their term by the time of the restore (nothing says so: the box died);
restored onto a fresh box, exactly the right set comes back, and each one plays: it decrypts with the box
key to the bytes that were recorded and matches its hash. And a backup cut off halfway resumes where it
stopped, copying nothing twice."""

from __future__ import annotations

from datetime import timedelta

import pytest

from appliance import audit, backup, backup_store, recordings, restore, retention, sweep
from appliance.box import Box
from appliance.clock import to_iso
from backup_helpers import T0, store
from tests.conftest import PASSWORD, plaintext

COUNT = 200
STEP = timedelta(hours=3)  # recording i ended i * 3 hours before T0: 200 of them span 25 days
HELD = {i for i in range(COUNT) if i % 10 == 0}
EARLY = 7  # deleted ahead of its term (an objection upheld) after the backup


def test_the_restore_drill(cbox, clock, tmp_path):
    ids, plains = [], {}
    for i in range(COUNT):
        rid, plain = store(cbox, tmp_path, T0 - i * STEP, size=600 + i)
        ids.append(rid)
        plains[rid] = plain
    for i in HELD:
        retention.add_hold(cbox, ids[i], "complaint", f"K-{i}", "admin")
    usb = tmp_path / "usb"
    made = backup.run(cbox, usb)
    assert len(made.manifest["recordings"]) == COUNT

    # After the backup: five days of sweeps, and one recording deleted early; the journal gets those.
    clock.advance(days=5)
    swept = set(sweep.sweep(cbox).deleted)
    sweep.delete_early(cbox, ids[EARLY], actor="admin", reason="objection upheld", decision_ref="B-1")
    entry = backup.append_journal(cbox, usb)
    assert {d["recording_id"] for d in entry["deletions"]} == swept | {ids[EARLY]} and len(swept) > 10
    # Then the box dies; two days later the restore. What ended in those days past its term, nothing says.
    clock.advance(days=2)
    now = clock()
    in_term = {i for i in range(COUNT) if T0 - i * STEP > now - timedelta(days=28)}
    expected = {ids[i] for i in (in_term | HELD) - {EARLY}}
    assert len(expected) < COUNT - len(swept) - 1  # some expire in the days no journal covers

    status = backup.status(usb, to_iso(now))
    assert status["restores"]["recordings"] == len(expected)

    new = tmp_path / "fresh"
    result = restore.restore(usb, new, password=PASSWORD, clock=clock)
    assert result.recordings == len(expected)
    with Box(new, clock) as box:
        assert {r["id"] for r in box.catalog.list_recordings()} == expected
        identity = box.unlock("admin", PASSWORD)
        assert recordings.verify(box, identity) == []  # every blob with its header hashes to its recording
        for rid in expected:
            assert plaintext(box, identity, rid) == plains[rid]
        # Nothing else is left on the disk: no blob without its recording, no key of a deleted one.
        assert {str(p.relative_to(new)) for p in (new / "blobs").glob("*/*")} == \
            {box.catalog.get_recording(rid)["stored_path"] for rid in expected}
        assert {r[0] for r in box.catalog.db.execute("SELECT recording_id FROM file_keys")} == expected
        assert all(retention.active_holds(box.catalog, ids[i]) for i in HELD)
        report = {r["recording_id"]: r for r in retention.deletion_report(box.catalog)}
        assert report[ids[EARLY]]["reason"] == "deleted ahead of term: objection upheld"
        assert all(report[ids[i]]["blob_removed_at"] for i in range(COUNT) if ids[i] not in expected)
        assert audit.verify(box.catalog, box.signing_key().verify_key).ok


class Cut(Exception):
    """The run stops here (a pulled plug, a killed process)."""


def test_a_backup_cut_off_halfway_resumes_and_copies_nothing_twice(cbox, clock, tmp_path):
    ids = [store(cbox, tmp_path, T0 - i * STEP)[0] for i in range(30)]
    usb = tmp_path / "usb"
    done = []

    def cut_after_ten(rec: dict) -> None:
        done.append(rec["id"])
        if len(done) == 10:
            raise Cut

    with pytest.raises(Cut):
        backup.run(cbox, usb, progress=cut_after_ten)
    assert backup.list_backups(usb) == []  # no backup half made
    verified = {p.name for p in (usb / "footage").glob("??/*")}
    assert 10 <= len(verified) <= 11  # the ten reported, and the one checked meanwhile on the worker thread
    # A copy that was being written when the power went: unverified, under .part/, never taken as done.
    sha = cbox.catalog.get_recording(ids[20])["sha256"]
    (usb / backup_store.STORE / backup_store.PART / sha).write_bytes(b"half a recording")
    (usb / ".kluis-20260301T120000Z.tmp").mkdir()  # the unfinished backup directory of a killed run

    clock.advance(minutes=5)
    result = backup.run(cbox, usb)
    assert result.manifest["copied"]["recordings"] == 30 - len(verified) and len(result.manifest["recordings"]) == 30
    assert backup.verify_backup(result.path).ok  # deep: every stored recording hashed on the target
    assert list((usb / backup_store.STORE / backup_store.PART).iterdir()) == []
    assert [p.name for p in usb.iterdir() if p.name.endswith(".tmp")] == []

    # The numbers the alerts and the status show.
    last = backup.last_backup(cbox)
    assert last is not None and last.name == result.name and last.recordings == 30
    assert last.footage_days == (T0.date() - (T0 - 29 * STEP).date()).days + 1


def test_a_failed_backup_is_audited_and_is_not_the_last_backup(cbox, clock, tmp_path):
    store(cbox, tmp_path, T0)
    usb = tmp_path / "usb"
    made = backup.run(cbox, usb)
    clock.advance(hours=1)
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    with pytest.raises(backup.KluisError, match="failed"):
        backup.run(cbox, not_a_dir)
    failed, = audit.entries(cbox.catalog, action="backup_failed")
    assert failed["details"]["target"] == str(not_a_dir) and failed["details"]["error"]
    assert backup.last_backup(cbox).name == made.name
    assert backup.last_backup(cbox, target=str(not_a_dir)) is None


def test_a_restore_whose_check_after_the_restore_fails_leaves_no_directory(cbox, clock, tmp_path):
    """The manifest (signed by the box) names another audit head than the catalog in it holds: found only
    once the restored box is open. The half-restored directory, with the box's keys in it, must go."""
    from appliance import signing
    from appliance.canonical import canonical

    store(cbox, tmp_path, T0)
    made = backup.run(cbox, tmp_path / "usb")
    body = {k: v for k, v in made.manifest.items() if k != "signature"}
    body["audit"] = {**body["audit"], "head": "0" * 64}
    (made.path / backup.MANIFEST).write_bytes(canonical(signing.signed(body, cbox.signing_key(),
                                                                       signing.BACKUP_MANIFEST)))
    assert backup.verify_backup(made.path).ok  # nothing a check without the keys can see
    new = tmp_path / "restored"
    with pytest.raises(backup.KluisError, match="audit log is not the one the manifest names"):
        restore.restore(tmp_path / "usb", new, password=PASSWORD, clock=clock)
    assert not new.exists()
