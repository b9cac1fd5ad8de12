"""The statistics that outlive the footage: counts for the pilot's evaluation and the report to the council,
in a table of their own (`statistics`, appliance/schema/statistics.py) that retention never deletes.

Why this design. A pilot is evaluated after months, but a recording is deleted after 28 days: counting the
live `recordings` table loses every month the evaluation is about. So every event that matters (stored,
reason set, category set, hold, view per purpose, handover, access request or objection, redaction,
deletion) updates the table at its one domain function, in that function's transaction.

- While a recording exists, its facts are rows linked to it (`recording_id`): one row per fact and value,
  with its month and team. A later event recomputes the linked rows from the recording as it is then
  (`refresh`), so a reason changed twice counts once, under its last value, and nothing is counted twice.
  Linked rows add no personal data: the recording itself still holds it all.
- When the sweep (or an early deletion) shreds the recording, its rows are folded into per-month, per-team
  totals (`fold`), and the link goes: what is left is counters, each the sum of every recording of that
  month and team with that fact. No row is about one recording any more, and no row carries a recording
  id, an officer, a place, a time finer than the month or a case reference, so the counts cannot be joined
  back to the deletion report or the audit log. Only the month, the team, and the marginal counts (reason,
  warning, category, camera model, purposes viewed, outcome: each counted on its own, not crossed with
  each other) survive. Per-recording rows kept after deletion were the alternative: they keep the whole
  combination of one recording's facts (team, month, camera, reason, warnings, purposes), which in a small
  team singles out one officer's incident; marginal totals keep what the council asks without that.

A small cell (one recording of a team in a month) still says that much; the team leader sees only their
own team's, and the council report (appliance/council_report.py) is box-wide.

Months are UTC months of the recording's start (a recording just after midnight on the first of the month
may count in the month before), the same in the backfill, which runs in SQL. Everything is counted in the
month of the recording, not of the event: "of November's recordings, 3 were viewed for a complaint".

A redacted copy is not a recording of its own: its events (a view, its hold) count for its original, and
making it counts as the original's outcome 'redacted'.
"""

from __future__ import annotations

from typing import Iterable

from .catalog import Catalog

# Facts (the `fact` column) and the values they take.
RECORDINGS = "recordings"      # '' : one per recording
SOURCE = "source"              # dock, usb, axis, import
CAMERA_MODEL = "camera_model"  # the camera's model as the box knew it, 'usb:<profile>', or ''
REASON = "reason"              # the officer's reason code, '' : not set
WARNING = "warning"            # yes, no, '' : not set
WARNINGS = "warnings"          # how many warnings were given, when the officer said
CATEGORY = "category"          # retention category, '' : none
HOLD_PURPOSE = "hold_purpose"  # holds placed, per purpose (n: how many holds)
VIEWED = "viewed"              # recordings viewed for this purpose (n: 1 per recording)
VIEWS = "views"                # views for this purpose (n: how many times)
OUTCOME = "outcome"            # held, handed_over, access_request, objection, complaint, redacted,
#                                deleted_term, deleted_early

DELETED_TERM, DELETED_EARLY = "deleted_term", "deleted_early"
READ_ACTIONS = frozenset({"view", "range_read", "export"})  # the gate's entries that are a view
EVENT_FACTS = (VIEWED, VIEWS)  # counted as they happen; `refresh` keeps them

_MODEL = (
    "coalesce((SELECT v.model FROM devices v WHERE v.serial = ? AND coalesce(v.model, '') != ''),"
    " (SELECT x.model FROM axis_devices x WHERE x.serial = ? AND coalesce(x.model, '') != ''"
    "   ORDER BY x.updated_at DESC LIMIT 1),"
    " (SELECT 'usb:' || o.profile FROM usb_volumes o WHERE o.serial = ? AND o.profile IS NOT NULL"
    "   ORDER BY o.last_seen DESC LIMIT 1), '')"
)


def month_of(time: str) -> str:
    """The month (YYYY-MM, UTC) a recording starting at this ISO 8601 UTC time counts in."""
    return time[:7]


def _subject(catalog: Catalog, recording_id: str) -> dict | None:
    """The recording whose facts an event on `recording_id` changes: itself, or for a redacted copy its
    original; None when that is gone."""
    rows = list(catalog.db.query("SELECT * FROM recordings WHERE id = ?", [recording_id]))
    while rows and rows[0].get("derived_from"):
        rows = list(catalog.db.query("SELECT * FROM recordings WHERE id = ?", [rows[0]["derived_from"]]))
    return rows[0] if rows else None


def _team(catalog: Catalog, recording: dict) -> str:
    if recording.get("team"):
        return recording["team"]
    row = catalog.db.execute("SELECT team FROM users WHERE name = ?", [recording.get("officer")]).fetchone()
    return (row[0] if row else None) or ""


def _categories(catalog: Catalog, recording: dict) -> list[str]:
    """The recording's retention categories (appliance/retention.py keeps them in `recording_categories`;
    the `category` column is their sorted, comma-separated list)."""
    found = {row[0] for row in catalog.db.execute(
        "SELECT category FROM recording_categories WHERE recording_id = ?", [recording["id"]])}
    found |= {c for c in (recording.get("category") or "").split(",") if c}
    return sorted(found) or [""]


def _warning(recording: dict) -> tuple[str, str | None]:
    """Whether a warning was given ('yes', 'no', '') and how many, if the officer said."""
    given = recording.get("warning_given")
    count = recording.get("warnings")
    if count is not None:
        return ("yes" if count else "no"), str(int(count))
    if given is None:
        return "", None
    return ("yes" if given else "no"), None


def facts(catalog: Catalog, recording: dict) -> list[tuple[str, str, int]]:
    """The (fact, value, n) a recording has now, but for the views (EVENT_FACTS): its own columns, its
    camera's model, its holds, handovers, requests and redacted copies."""
    db = catalog.db
    rid = recording["id"]
    serial = recording.get("camera_serial") or ""
    model = db.execute(f"SELECT {_MODEL}", [serial, serial, serial]).fetchone()[0]
    warning, count = _warning(recording)
    found = [(RECORDINGS, "", 1), (SOURCE, recording.get("source") or "", 1), (CAMERA_MODEL, model, 1),
             (REASON, recording.get("reason") or "", 1), (WARNING, warning, 1)]
    if count is not None:
        found.append((WARNINGS, count, 1))
    found += [(CATEGORY, category, 1) for category in _categories(catalog, recording)]
    holds = db.execute("SELECT purpose, count(*) FROM holds WHERE recording_id = ? GROUP BY purpose", [rid]).fetchall()
    found += [(HOLD_PURPOSE, purpose, n) for purpose, n in holds]
    outcomes = set()
    if holds:
        outcomes.add("held")
    if db.execute("SELECT 1 FROM handover_items i JOIN handovers o ON o.id = i.handover_id "
                  "WHERE i.recording_id = ? AND o.state = 'approved'", [rid]).fetchone():
        outcomes.add("handed_over")
    outcomes |= {row[0] for row in db.execute(
        "SELECT q.kind FROM request_recordings l JOIN requests q ON q.id = l.request_id WHERE l.recording_id = ?",
        [rid])}
    if db.execute("SELECT 1 FROM redactions WHERE original_id = ?", [rid]).fetchone():
        outcomes.add("redacted")
    found += [(OUTCOME, outcome, 1) for outcome in sorted(outcomes)]
    return found


def refresh(catalog: Catalog, recording_id: str) -> None:
    """Bring a recording's linked rows up to date after an event on it (or on its redacted copy); inside
    the caller's transaction. A recording that is gone (deleted meanwhile) changes nothing."""
    recording = _subject(catalog, recording_id)
    if recording is None:
        return
    rid, month, team = recording["id"], month_of(recording["start_time"]), _team(catalog, recording)
    db = catalog.db.conn
    kept = ", ".join("?" * len(EVENT_FACTS))
    db.execute(f"DELETE FROM statistics WHERE recording_id = ? AND fact NOT IN ({kept})", [rid, *EVENT_FACTS])
    db.execute("UPDATE statistics SET month = ?, team = ? WHERE recording_id = ?", [month, team, rid])
    db.executemany("INSERT INTO statistics (month, team, fact, value, n, recording_id) VALUES (?, ?, ?, ?, ?, ?)",
                   [(month, team, fact, value, n, rid) for fact, value, n in facts(catalog, recording)])


def count_read(catalog: Catalog, recording_id: str, action: str, purpose: str | None) -> None:
    """The footage gate read a recording (appliance.footage): a view for its purpose, counted once per
    recording under VIEWED and every time under VIEWS. Inside the gate's transaction."""
    if action not in READ_ACTIONS or not purpose:
        return
    recording = _subject(catalog, recording_id)
    if recording is None:
        return
    rid = recording["id"]
    if not catalog.db.execute("SELECT 1 FROM statistics WHERE recording_id = ? AND fact = ?",
                              [rid, RECORDINGS]).fetchone():
        refresh(catalog, rid)  # a recording stored before its rows could be (kept consistent)
    row = catalog.db.execute("SELECT month, team FROM statistics WHERE recording_id = ? AND fact = ?",
                             [rid, RECORDINGS]).fetchone()
    month, team = row
    db = catalog.db.conn
    db.execute("INSERT INTO statistics (month, team, fact, value, n, recording_id) VALUES (?, ?, ?, ?, 1, ?) "
               "ON CONFLICT(recording_id, fact, value) WHERE recording_id IS NOT NULL DO NOTHING",
               [month, team, VIEWED, purpose, rid])
    db.execute("INSERT INTO statistics (month, team, fact, value, n, recording_id) VALUES (?, ?, ?, ?, 1, ?) "
               "ON CONFLICT(recording_id, fact, value) WHERE recording_id IS NOT NULL DO UPDATE SET n = n + 1",
               [month, team, VIEWS, purpose, rid])


def fold(catalog: Catalog, recording_ids: Iterable[str], outcome: str) -> None:
    """The recordings are being deleted (`outcome`: DELETED_TERM or DELETED_EARLY): add the outcome, add
    their rows to their months' totals and drop the rows with their link. Inside the deletion's transaction;
    a sweep's batch at once (set-wise: a row per recording would cost the sweep seconds per 10 000). A
    redacted copy has no rows of its own, and is not counted."""
    db = catalog.db.conn
    db.execute("CREATE TEMP TABLE IF NOT EXISTS statistics_folding (id TEXT PRIMARY KEY)")
    db.execute("DELETE FROM temp.statistics_folding")
    db.executemany("INSERT OR IGNORE INTO temp.statistics_folding (id) VALUES (?)", [(rid,) for rid in recording_ids])
    folding = "recording_id IN (SELECT id FROM temp.statistics_folding)"
    db.execute("INSERT INTO statistics (month, team, fact, value, n, recording_id) "
               f"SELECT month, team, ?, ?, 1, recording_id FROM statistics WHERE fact = ? AND {folding} "
               "ON CONFLICT(recording_id, fact, value) WHERE recording_id IS NOT NULL DO NOTHING",
               [OUTCOME, outcome, RECORDINGS])
    db.execute("INSERT INTO statistics (month, team, fact, value, n, recording_id) "
               f"SELECT month, team, fact, value, n, NULL FROM statistics WHERE {folding} "
               "ON CONFLICT(month, team, fact, value) WHERE recording_id IS NULL DO UPDATE SET n = n + excluded.n")
    db.execute(f"DELETE FROM statistics WHERE {folding}")
    db.execute("DELETE FROM temp.statistics_folding")


def adopt_team(catalog: Catalog, team: str) -> None:
    """Recordings just given `team` (appliance.teams.adopt_recordings): their linked rows follow."""
    catalog.db.execute("UPDATE statistics SET team = ? WHERE team = '' AND recording_id IN "
                       "(SELECT id FROM recordings WHERE team = ?)", [team, team])
