"""Counts for the pilot evaluation and the report to the council (the Statistieken page and its CSV)."""

from __future__ import annotations

from .catalog import Catalog


def statistics(catalog: Catalog) -> dict[str, list[tuple[str, int]]]:
    """Recordings per month, per team, per reason; holds per purpose. Months are UTC months (a recording
    near midnight on the last day may count in the next month)."""
    db = catalog.db
    return {
        "per_month": [tuple(r) for r in db.execute(
            "SELECT substr(start_time, 1, 7), count(*) FROM recordings GROUP BY 1 ORDER BY 1")],
        "per_team": [tuple(r) for r in db.execute(
            "SELECT coalesce(team, ''), count(*) FROM recordings GROUP BY 1 ORDER BY 2 DESC, 1")],
        "per_reason": [tuple(r) for r in db.execute(
            "SELECT coalesce(reason, ''), count(*) FROM recordings GROUP BY 1 ORDER BY 2 DESC, 1")],
        "holds_per_purpose": [tuple(r) for r in db.execute(
            "SELECT purpose, count(*) FROM holds GROUP BY 1 ORDER BY 2 DESC, 1")],
    }
