"""A box that upgrades keeps its history as far as it still has it: the schema step `statistics.create`
(appliance/schema/statistics.py) fills the table in SQL from the recordings and, for those already deleted,
from the deletion report and the audit log. Run on a box whose statistics the events kept, it must give the
same counts: the live rows row for row, the deleted ones as totals (a deleted recording's team was never
kept, so the backfill counts it under team '')."""

from __future__ import annotations

from datetime import datetime, timezone

from appliance import sweep
from appliance.catalog import Catalog

from stats_helpers import known_data_set


def live_rows(db) -> list[tuple]:
    return sorted(db.execute("SELECT recording_id, month, team, fact, value, n FROM statistics "
                             "WHERE recording_id IS NOT NULL").fetchall())


def folded_totals(db) -> list[tuple]:
    return sorted(db.execute("SELECT month, fact, value, sum(n) FROM statistics WHERE recording_id IS NULL "
                             "GROUP BY month, fact, value").fetchall())


def test_the_backfill_counts_what_the_events_counted(sbox, clock, tmp_path):
    known_data_set(sbox, tmp_path)
    clock.set(datetime(2026, 4, 15, 12, 0, tzinfo=timezone.utc))
    assert len(sweep.sweep(sbox).deleted) == 2
    db = sbox.catalog.db
    live, folded = live_rows(db), folded_totals(db)
    assert live and folded
    assert ("2026-03", "outcome", "deleted_term", 2) in folded and ("2026-03", "outcome", "deleted_early", 1) in folded

    path = sbox.catalog.path
    with sbox.catalog.transaction():  # as if this box came from a release without the table
        db.execute("DROP TABLE statistics")
        db.execute("DELETE FROM schema_migrations WHERE migration_set = 'statistics'")
        db.execute(f"PRAGMA user_version={db.execute('PRAGMA user_version').fetchone()[0] - 1}")
    upgraded = Catalog(path)
    try:
        assert live_rows(upgraded.db) == live
        assert folded_totals(upgraded.db) == folded
        teams = {row[0] for row in upgraded.db.execute("SELECT DISTINCT team FROM statistics WHERE recording_id IS NULL")}
        assert teams == {""}
    finally:
        upgraded.close()
