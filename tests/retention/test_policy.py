"""Retention on a clock the test controls: the term, holds, release and grace, policy changes."""

from __future__ import annotations

from datetime import timedelta

import pytest

from appliance import audit, retention, sweep
from appliance.clock import from_iso, to_iso
from appliance.errors import KluisError, NotFound

from retention_helpers import T0, set_retention, store

MS = timedelta(milliseconds=1)


def exists(box, recording_id: str) -> bool:
    return box.catalog.db.execute("SELECT 1 FROM recordings WHERE id = ?", [recording_id]).fetchone() is not None


def test_expires_at_exactly_the_term_not_before(rbox, clock, tmp_path):
    end = T0 - timedelta(hours=1)
    rec = store(rbox, tmp_path, end)
    keep = store(rbox, tmp_path, end + timedelta(days=1))
    assert retention.delete_after(rbox, rec) == end + timedelta(days=28)

    clock.set(end + timedelta(days=28) - MS)
    assert sweep.sweep(rbox).deleted == []
    assert exists(rbox, rec)

    clock.set(end + timedelta(days=28))
    assert sweep.sweep(rbox, dry_run=True).deleted == [rec]
    assert exists(rbox, rec)  # a dry run changes nothing
    result = sweep.sweep(rbox)
    assert result.deleted == [rec]
    assert not exists(rbox, rec) and exists(rbox, keep)
    sha = rbox.catalog.db.execute("SELECT sha256 FROM deletions").fetchone()[0]
    assert not (rbox.data_dir / rbox.vault.relpath(sha)).exists()
    [record] = retention.deletion_report(rbox.catalog)
    assert record["recording_id"] == rec and record["term_days"] == 28 and record["reason"] == "term expired"
    assert record["deleted_at"] == to_iso(clock()) and record["blob_removed_at"]
    assert "officer" not in record and "J. Jansen" not in str(record)
    [entry] = audit.entries(rbox.catalog, action="delete")
    assert entry["recording_id"] == rec and entry["actor"] == "system"
    assert audit.verify(rbox.catalog, rbox.signing_key().verify_key).ok


def test_category_term(rbox, clock, tmp_path):
    set_retention(rbox, default_days=28, categories={"incident": 90})
    end = T0
    rec = store(rbox, tmp_path, end)
    retention.set_category(rbox, rec, "admin", add=["incident"])
    with pytest.raises(KluisError):
        retention.set_category(rbox, rec, "admin", add=["nonsense"])
    assert retention.delete_after(rbox, rec) == end + timedelta(days=90)
    clock.set(end + timedelta(days=89))
    assert sweep.sweep(rbox).deleted == []
    clock.set(end + timedelta(days=90))
    assert sweep.sweep(rbox).deleted == [rec]


def test_hold_prevents_deletion_then_release_and_grace(rbox, clock, tmp_path):
    end = T0
    rec = store(rbox, tmp_path, end)
    hold = retention.add_hold(rbox, rec, "aangifte", "PV-2026-001", actor="teamleider")
    assert retention.delete_after(rbox, rec) is None
    clock.set(end + timedelta(days=200))
    assert sweep.sweep(rbox).deleted == []
    assert exists(rbox, rec)

    with pytest.raises(KluisError, match="reason"):
        retention.release_hold(rbox, rec, "  ", actor="teamleider")
    released_at = clock()
    assert retention.release_hold(rbox, rec, "zaak gesloten", actor="privacy") == [hold]
    # The term passed long ago: the grace period applies from the release.
    assert retention.delete_after(rbox, rec) == released_at + timedelta(days=7)
    clock.set(released_at + timedelta(days=7) - MS)
    assert sweep.sweep(rbox).deleted == []
    clock.set(released_at + timedelta(days=7))
    assert sweep.sweep(rbox).deleted == [rec]
    [record] = retention.deletion_report(rbox.catalog)
    assert record["reason"] == "term expired after hold released"
    actions = [(e["action"], e["purpose"], e["case_ref"]) for e in audit.entries(rbox.catalog, recording_id=rec)]
    assert actions == [("ingest", None, None), ("hold_add", "police_report", "PV-2026-001"),
                       ("hold_release", "police_report", "PV-2026-001"), ("delete", None, None)]
    [add] = audit.entries(rbox.catalog, action="hold_add")
    assert add["actor"] == "teamleider"


def test_early_release_keeps_the_normal_term(rbox, clock, tmp_path):
    end = T0
    rec = store(rbox, tmp_path, end)
    retention.add_hold(rbox, rec, "complaint", "K-1", actor="a")
    clock.set(end + timedelta(days=2))
    retention.release_hold(rbox, rec, "klacht ingetrokken", actor="a")
    assert retention.delete_after(rbox, rec) == end + timedelta(days=28)


def test_every_hold_must_end(rbox, clock, tmp_path):
    rec = store(rbox, tmp_path, T0)
    first = retention.add_hold(rbox, rec, "complaint", "K-1", actor="a")
    second = retention.add_hold(rbox, rec, "access_request", "AVG-7", actor="a")
    clock.advance(days=60)
    with pytest.raises(KluisError, match="2 active holds"):
        retention.release_hold(rbox, rec, "klaar", actor="a")
    assert retention.release_hold(rbox, rec, "klaar", actor="a", case_ref="K-1") == [first]
    assert sweep.sweep(rbox).deleted == []  # the other hold still stands
    clock.advance(days=30)
    assert sweep.sweep(rbox).deleted == []
    assert retention.release_hold(rbox, rec, "verstrekt", actor="a", hold_id=second) == [second]
    with pytest.raises(NotFound):
        retention.release_hold(rbox, rec, "again", actor="a")
    clock.advance(days=7)
    assert sweep.sweep(rbox).deleted == [rec]


def test_hold_with_end_date_lapses_then_grace(rbox, clock, tmp_path):
    rec = store(rbox, tmp_path, T0)
    until = T0 + timedelta(days=40)
    retention.add_hold(rbox, rec, "requisition", "OM-12", actor="a", until=until)
    clock.set(until - MS)
    assert sweep.sweep(rbox).deleted == []
    clock.set(until + timedelta(days=1))
    result = sweep.sweep(rbox)
    assert result.holds_ended == 1 and result.deleted == []
    [hold] = retention.list_holds(rbox.catalog, rec, include_released=True)
    assert hold["released_at"] == to_iso(until) and hold["released_by"] == "system"
    assert retention.delete_after(rbox, rec) == until + timedelta(days=7)
    clock.set(until + timedelta(days=7))
    assert sweep.sweep(rbox).deleted == [rec]


def test_policy_change_never_shortens_a_held_life(rbox, clock, tmp_path):
    end = T0
    held = store(rbox, tmp_path, end)
    free = store(rbox, tmp_path, end)
    sweep.sweep(rbox)  # adopts the 28-day policy
    retention.add_hold(rbox, held, "objection", "B-3", actor="a")

    set_retention(rbox, default_days=7, grace_days=7)
    clock.set(end + timedelta(days=10))
    assert sweep.sweep(rbox).deleted == [free]  # a shorter term applies to what is not held
    [change] = audit.entries(rbox.catalog, action="policy_change")[-1:]
    assert change["details"]["old"]["default_days"] == 28 and change["details"]["new"]["default_days"] == 7
    assert change["details"]["held_recordings_kept"] == 1

    retention.release_hold(rbox, held, "bezwaar afgewezen", actor="a")
    # Under the old policy it lived until end + 28 days: the change may not take that away.
    assert retention.delete_after(rbox, held) == end + timedelta(days=28)
    clock.set(end + timedelta(days=28) - MS)
    assert sweep.sweep(rbox).deleted == []
    clock.set(end + timedelta(days=28))
    assert sweep.sweep(rbox).deleted == [held]


def test_policy_longer_term_applies_and_bad_policy_refused(rbox, clock, tmp_path):
    rec = store(rbox, tmp_path, T0)
    set_retention(rbox, default_days=60)
    clock.set(T0 + timedelta(days=59))
    assert sweep.sweep(rbox).deleted == []
    assert retention.delete_after(rbox, rec) == T0 + timedelta(days=60)
    set_retention(rbox, default_days=0)
    with pytest.raises(KluisError, match="default_days"):
        sweep.sweep(rbox)
    assert len(audit.entries(rbox.catalog, action="policy_change")) == 1


def test_hold_input_checked(rbox, tmp_path):
    rec = store(rbox, tmp_path, T0)
    with pytest.raises(KluisError, match="unknown purpose"):
        retention.add_hold(rbox, rec, "curiosity", "X", actor="a")
    with pytest.raises(KluisError, match="case reference"):
        retention.add_hold(rbox, rec, "complaint", " ", actor="a")
    with pytest.raises(NotFound):
        retention.add_hold(rbox, "nope", "complaint", "K", actor="a")
    with pytest.raises(KluisError, match="passed"):
        retention.add_hold(rbox, rec, "complaint", "K", actor="a", until=T0 - timedelta(days=1))


def test_status_and_review(rbox, clock, tmp_path):
    rec = store(rbox, tmp_path, T0)
    other = store(rbox, tmp_path, T0 + timedelta(days=3))
    hold = retention.add_hold(rbox, rec, "complaint", "K-9", actor="a")
    info = retention.status(rbox)
    assert info["recordings"] == 2 and info["held"] == 1 and info["due"] == 0
    assert from_iso(info["next_expiry"]) == T0 + timedelta(days=31)
    clock.advance(days=91)
    info = retention.status(rbox)
    assert info["holds_due_for_review"] == 1 and info["due"] == 1
    retention.review_hold(rbox, hold, actor="a")
    assert retention.status(rbox)["holds_due_for_review"] == 0
    assert sweep.sweep(rbox).deleted == [other]
    info = retention.status(rbox)
    assert info["deleted_total"] == 1 and info["last_sweep"]["deleted"] == 1
    assert retention.delete_after(rbox, rec) is None
