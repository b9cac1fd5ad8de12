"""Statistics before and after the sweep deletes a month of recordings are the same (issue 20): the counts
live in a table of their own, and a deleted recording's rows are folded into its month's totals with the
link to it cut. A moving clock (tests/moving_clock.py) takes the box past March's term."""

from __future__ import annotations

from datetime import datetime, timezone

from appliance import retention, stats_report, sweep
from appliance.stats_report import Period

from stats_helpers import known_data_set

TEAM_LEADER = {"name": "tl", "role": "team_leader", "team": "Noord"}


def tables(box, user=None, period: Period | None = None) -> dict:
    return stats_report.report(box.catalog, user, period or Period()).tables


def without_deletions(found: dict) -> dict:
    """The tables, but for the outcomes the deletion adds."""
    return {**found, "outcome": [(v, n) for v, n in found["outcome"] if v != "deleted_term"]}


def test_the_statistics_are_the_same_after_the_sweep_deleted_march(sbox, clock, tmp_path):
    data = known_data_set(sbox, tmp_path)
    before = {who: tables(sbox, user) for who, user in (("all", None), ("tl", TEAM_LEADER))}
    march = tables(sbox, None, stats_report.parse_period("2026-03"))
    assert dict(march["per_month"]) == {"2026-03": 4}

    clock.set(datetime(2026, 4, 15, 12, 0, tzinfo=timezone.utc))
    result = sweep.sweep(sbox)
    gone = {data.ids["n1"], data.ids["n2"]}  # March's recordings not held; u1 is held by its request
    assert set(result.deleted) == gone
    assert sbox.catalog.db.execute("SELECT count(*) FROM recordings WHERE start_time < '2026-04'").fetchone()[0] == 1

    after = {who: tables(sbox, user) for who, user in (("all", None), ("tl", TEAM_LEADER))}
    for who in ("all", "tl"):
        assert without_deletions(after[who]) == without_deletions(before[who]), who
        assert dict(after[who]["outcome"])["deleted_term"] == 2
    assert without_deletions(tables(sbox, None, stats_report.parse_period("2026-03"))) == without_deletions(march)
    # What was counted of them stays: reasons, warnings, views and holds of the deleted recordings.
    assert dict(after["all"]["reason"])["threat"] == 1 and dict(after["all"]["views"])["complaint"] == 3
    assert dict(after["all"]["hold_purpose"])["complaint"] == 1

    # ... and nothing links the counts to them any more.
    db = sbox.catalog.db
    deleted = sorted(gone | {data.ids["n3"]})
    marks = ", ".join("?" * len(deleted))
    assert db.execute(f"SELECT count(*) FROM statistics WHERE recording_id IN ({marks})", deleted).fetchone()[0] == 0
    folded = db.execute("SELECT month, team, fact, value, n FROM statistics WHERE recording_id IS NULL").fetchall()
    assert folded and all(month == "2026-03" for month, *_ in folded)
    assert ("2026-03", "Noord", "recordings", "", 3) in folded  # n1, n2 and the early deletion n3, together
    # The linked rows are the recordings that still exist, no more.
    linked = {row[0] for row in db.execute("SELECT DISTINCT recording_id FROM statistics WHERE recording_id IS NOT NULL")}
    assert linked == {row[0] for row in db.execute("SELECT id FROM recordings")}


def test_an_event_after_the_recording_was_stored_counts_once_under_its_last_value(sbox, clock, tmp_path):
    data = known_data_set(sbox, tmp_path)
    found = tables(sbox)
    # n2's reason was set twice (insult, then threat): it counts once, as threat.
    assert dict(found["reason"]) == {"": 3, "aggression": 2, "insult": 1, "threat": 1}
    retention.add_hold(sbox, data.ids["a2"], "complaint", "K-9", "fg")
    again = tables(sbox)
    assert dict(again["outcome"])["held"] == dict(found["outcome"])["held"] + 1
    assert again["per_month"] == found["per_month"]
