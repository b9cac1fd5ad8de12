"""The recordings search behind the Opnames page and `bench/bench_opnames.py`: filters, sorting, paging
within the user's scope.

Every value from a filter is a bound parameter and every column name comes from a fixed list, so SQL
metacharacters in a filter are just text that matches nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from . import roles
from .clock import from_iso, to_iso
from .config_models import DEFAULT_REASONS

PAGE_SIZE = 50
SORTS = {  # what the user may sort by -> SQL; rowid breaks ties so paging is stable
    "start": "r.start_time", "camera": "r.camera_serial", "officer": "r.officer", "team": "r.team",
    "size": "r.size", "state": "r.state",
}
HELD = "held"  # the state filter's extra value: has an active hold

# The built-in reason codes; the reasons in force are [reasons] choices (appliance.recording_reasons.current).
REASONS = tuple(DEFAULT_REASONS)
NO_REASON = "none"  # the reason filter's value for "no reason given yet" (the team leader's Te doen links it)


@dataclass
class Filters:
    start: datetime | None = None      # recordings that overlap [start, end]
    end: datetime | None = None
    camera: str = ""
    officer: str = ""
    team: str = ""
    purpose: str = ""                  # of an active hold
    state: str = ""
    reason: str = ""                   # a reason code, or NO_REASON
    sort: str = "start"
    descending: bool = True
    page: int = 1
    errors: list[str] = field(default_factory=list)


@dataclass
class Page:
    rows: list[dict]
    total: int
    page: int
    pages: int


def search(catalog, user: dict, f: Filters, page_size: int = PAGE_SIZE) -> Page:
    where, params = _where(catalog, user, f)
    total = catalog.db.execute(f"SELECT count(*) FROM recordings r WHERE {where}", params).fetchone()[0]
    pages = max(1, -(-total // page_size))
    page = min(max(1, f.page), pages)
    order = SORTS.get(f.sort, SORTS["start"])
    direction = "DESC" if f.descending else "ASC"
    held = ("(SELECT group_concat(DISTINCT h.purpose) FROM holds h WHERE h.recording_id = r.id "
            "AND h.released_at IS NULL)")
    # Deferred join: find the page's rowids on an index alone (deep OFFSETs step over index entries, not
    # rows), then read only those 50 rows. rowid breaks ties, so the order is the index order.
    rows = list(catalog.db.query(
        f"SELECT r.id, r.camera_serial, r.officer, r.team, r.start_time, r.end_time, r.size, r.state, "
        f"r.reason, r.clock_synced, {held} AS hold_purposes FROM (SELECT r.rowid AS page_rowid FROM recordings r WHERE {where} "
        f"ORDER BY {order} {direction}, r.rowid {direction} LIMIT ? OFFSET ?) page "
        f"JOIN recordings r ON r.rowid = page.page_rowid ORDER BY {order} {direction}, r.rowid {direction}",
        params + [page_size, (page - 1) * page_size]))
    for row in rows:
        row["hold_purposes"] = sorted((row["hold_purposes"] or "").split(",")) if row["hold_purposes"] else []
        seconds = int((from_iso(row["end_time"]) - from_iso(row["start_time"])).total_seconds())
        row["duration"] = f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
    return Page(rows, total, page, pages)


def _where(catalog, user: dict, f: Filters) -> tuple[str, list]:
    scope, params = roles.scope_sql(user)
    clauses = [scope]
    if f.end is not None:
        clauses.append("r.start_time <= ?")
        params.append(to_iso(f.end))
    if f.start is not None:
        clauses.append("r.end_time >= ?")
        params.append(to_iso(f.start))
        # Overlapping recordings started at most `longest` before the range: that bound turns the
        # start_time index into a short range instead of everything older than the end.
        longest = catalog.db.execute(
            "SELECT max(julianday(end_time) - julianday(start_time)) FROM recordings").fetchone()[0]
        if longest is not None:
            clauses.append("r.start_time >= ?")
            params.append(to_iso(f.start - timedelta(days=longest, seconds=1)))
    for column, value in (("r.camera_serial", f.camera), ("r.officer", f.officer), ("r.team", f.team)):
        if value:
            clauses.append(f"{column} = ?")
            params.append(value)
    if f.state == HELD:
        clauses.append("EXISTS (SELECT 1 FROM holds h WHERE h.recording_id = r.id AND h.released_at IS NULL)")
    elif f.state:
        clauses.append("r.state = ?")
        params.append(f.state)
        if f.state == "stored":  # shown as "held" when a hold is active (webui.labels.recording_state)
            clauses.append("NOT EXISTS (SELECT 1 FROM holds h WHERE h.recording_id = r.id AND h.released_at IS NULL)")
    if f.reason == NO_REASON:  # originals only: a redacted copy takes its original's reason
        clauses.append("r.reason IS NULL AND r.derived_from IS NULL")
    elif f.reason:
        clauses.append("r.reason = ?")
        params.append(f.reason)
    if f.purpose:
        clauses.append("EXISTS (SELECT 1 FROM holds h WHERE h.recording_id = r.id "
                       "AND h.released_at IS NULL AND h.purpose = ?)")
        params.append(f.purpose)
    return " AND ".join(clauses), params


def choices(catalog, user: dict) -> dict[str, list[str]]:
    """Known cameras, officers, teams and states within the user's scope, for the filter form's lists."""
    scope, params = roles.scope_sql(user)
    columns = (("cameras", "camera_serial"), ("officers", "officer"), ("teams", "team"), ("states", "state"))
    if scope in ("1", "0"):
        # Every recording: each list is a walk over the distinct keys of that column's index.
        return {key: [r[0] for r in catalog.db.execute(
            f"SELECT DISTINCT r.{column} FROM recordings r WHERE {scope} AND r.{column} IS NOT NULL "
            f"ORDER BY 1 LIMIT 500")] for key, column in columns}
    # A team's or an officer's recordings: one pass over the table for all four lists (NOT INDEXED: walking
    # an index and looking every row up costs ten times more).
    found: dict[str, set] = {key: set() for key, _ in columns}
    for row in catalog.db.execute(
            f"SELECT DISTINCT r.camera_serial, r.officer, r.team, r.state FROM recordings r NOT INDEXED "
            f"WHERE {scope}", params):
        for (key, _column), value in zip(columns, row):
            if value is not None:
                found[key].add(value)
    return {key: sorted(values)[:500] for key, values in found.items()}
