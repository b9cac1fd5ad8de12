"""Several retention categories per recording: the longest term of them is the term, a hold beats every
category, the sweep, delete_after, the status and the backup agree (one rule), and every change is audited."""

from __future__ import annotations

import sqlite3
from datetime import timedelta

import pytest

from appliance import audit, backup, retention, sweep
from appliance.clock import to_iso
from appliance.errors import KluisError

from retention_helpers import T0, set_retention, store

MS = timedelta(milliseconds=1)


def gone(box, recording_id: str) -> bool:
    return box.catalog.db.execute("SELECT 1 FROM recordings WHERE id = ?", [recording_id]).fetchone() is None


def test_the_longest_term_of_a_recordings_categories_wins(rbox, clock, tmp_path):
    set_retention(rbox, default_days=28, categories={"kort": 14, "incident": 90, "evenement": 60})
    plain, short, both, three = (store(rbox, tmp_path, T0) for _ in range(4))
    retention.set_category(rbox, short, "tl", add=["kort"])  # a category may also shorten the term
    retention.set_category(rbox, both, "jansen", add=["evenement"])
    retention.set_category(rbox, both, "system", add=["incident"], source="axis")
    assert retention.set_category(rbox, three, "tl", add=["kort", "evenement", "kort"]) == ["evenement", "kort"]
    expected = {plain: 28, short: 14, both: 90, three: 60}
    for rec, days in expected.items():
        assert retention.delete_after(rbox, rec) == T0 + timedelta(days=days), rec

    order = sorted(expected, key=expected.get)
    for rec in order:  # each goes at its own term, not a millisecond before, by the sweep's own SQL
        moment = T0 + timedelta(days=expected[rec])
        clock.set(moment - MS)
        assert rec not in sweep.sweep(rbox).deleted and not gone(rbox, rec)
        assert retention.status(rbox)["next_expiry"] == to_iso(moment)
        assert retention.count_due(rbox, moment) == 1
        clock.set(moment)
        assert sweep.sweep(rbox).deleted == [rec]
    records = {r["recording_id"]: r for r in retention.deletion_report(rbox.catalog)}
    assert (records[both]["category"], records[both]["term_days"]) == ("evenement,incident", 90)
    assert (records[plain]["category"], records[plain]["term_days"]) == (None, 28)
    # the categories' rows name who set them: they go with the recording
    assert rbox.catalog.db.execute("SELECT count(*) FROM recording_categories").fetchone()[0] == 0


def test_a_hold_beats_every_category_and_taking_one_off_shortens_the_term_again(rbox, clock, tmp_path):
    set_retention(rbox, default_days=28, categories={"kort": 7, "incident": 90})
    held, longer = store(rbox, tmp_path, T0), store(rbox, tmp_path, T0)
    retention.set_category(rbox, held, "tl", add=["kort"])
    retention.add_hold(rbox, held, "complaint", "K-1", actor="tl")
    retention.set_category(rbox, longer, "tl", add=["incident", "kort"])
    clock.set(T0 + timedelta(days=89))
    assert sweep.sweep(rbox).deleted == []  # held past its 7 days; the other kept by its longest category

    after = retention.set_category(rbox, longer, "tl", remove=["incident"])
    assert after == ["kort"] and retention.delete_after(rbox, longer) == T0 + timedelta(days=7)
    assert retention.delete_after(rbox, held) is None
    assert sweep.sweep(rbox).deleted == [longer]
    retention.release_hold(rbox, held, "klacht afgehandeld", actor="tl")
    clock.advance(days=7)
    assert sweep.sweep(rbox).deleted == [held]  # the grace after the hold, then gone

    changes = audit.entries(rbox.catalog, action="category_change", recording_id=longer)
    assert [(c["details"]["old"], c["details"]["new"], c["details"]["term_days"]) for c in changes] == [
        ([], ["incident", "kort"], 90), (["incident", "kort"], ["kort"], 7)]
    assert changes[1]["details"]["delete_after"] == to_iso(T0 + timedelta(days=7))
    assert audit.verify(rbox.catalog, rbox.signing_key().verify_key).ok


def test_category_changes_are_checked_and_an_officer_takes_off_only_their_own(rbox, clock, tmp_path):
    set_retention(rbox, default_days=28, categories={"incident": 90, "evenement": 60})
    rec = store(rbox, tmp_path, T0)
    with pytest.raises(KluisError, match="unknown retention category 'onzin'"):
        retention.set_category(rbox, rec, "tl", add=["onzin"])
    retention.set_category(rbox, rec, "system", add=["incident"], source="usb")
    retention.set_category(rbox, rec, "jansen", add=["evenement"])
    with pytest.raises(retention.NotYours):
        retention.set_category(rbox, rec, "jansen", remove=["incident"], only_own=True)
    assert retention.set_category(rbox, rec, "jansen", remove=["evenement"], only_own=True) == ["incident"]
    before = len(audit.entries(rbox.catalog, action="category_change"))
    assert retention.set_category(rbox, rec, "tl", add=["incident"]) == ["incident"]  # nothing changed ...
    assert len(audit.entries(rbox.catalog, action="category_change")) == before       # ... nothing written
    [row] = retention.categories_of(rbox.catalog, rec)
    assert (row["category"], row["source"], row["set_by"]) == ("incident", "usb", "system")
    assert rbox.catalog.get_recording(rec)["category"] == "incident"


def test_a_category_no_longer_configured_counts_as_the_default(rbox, clock, tmp_path):
    set_retention(rbox, default_days=28, categories={"incident": 90})
    rec = store(rbox, tmp_path, T0)
    retention.set_category(rbox, rec, "tl", add=["incident"])
    set_retention(rbox, default_days=28, categories={})
    assert retention.delete_after(rbox, rec) == T0 + timedelta(days=28)
    clock.set(T0 + timedelta(days=28))
    assert sweep.sweep(rbox).deleted == [rec]


def test_the_backup_carries_what_the_categories_keep(rbox, clock, tmp_path):
    """The backup's "within its term" is the sweep's: a recording kept by its longest category is carried
    with the moment the sweep deletes it; one past every term is left out and reported."""
    set_retention(rbox, default_days=28, categories={"incident": 90})
    kept, expired = store(rbox, tmp_path, T0), store(rbox, tmp_path, T0)
    retention.set_category(rbox, kept, "tl", add=["incident"])
    now = T0 + timedelta(days=30)
    clock.set(now)
    data, carried, expires, _head = backup.snapshot_catalog(rbox, now)
    assert [r["id"] for r in carried] == [kept]
    copy = sqlite3.connect(":memory:")
    copy.deserialize(data)
    assert copy.execute("SELECT recording_id, term_days FROM deletions").fetchall() == [(expired, 28)]
    assert copy.execute("SELECT recording_id, category FROM recording_categories").fetchall() == [(kept, "incident")]
    assert carried[0]["until"] == to_iso(T0 + timedelta(days=90)) and carried[0]["categories"] == ["incident"]
    assert expires == to_iso(T0 + timedelta(days=90))
