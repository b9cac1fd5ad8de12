"""What a user has to do ("Te doen"), for the overview: one list per user, by role and scope.

- handovers waiting for the user's approval (the privacy officer: not those they prepared themselves,
  unless [handover] single_approval); a team leader, who prepares but does not approve, sees the own team's
  handovers that wait for approval, so that a waiting one is seen by someone who can chase it;
- open requests of filmed people near their legal deadline, and those past it (whoever handles requests);
- holds whose review date has come or comes within a week, on recordings in the user's scope;
- recordings still without the officer's reason `[reasons] todo_days` after they ended (the officer: their
  own, on "Mijn opnames"; the team leader: the team's);
- archive sync that fails (the keeper: outbox rows in state 'failing', or a last pass with errors);
- device alerts the user has not marked as read, and cameras found on the network but not paired (the keeper).

Every task names where it is done (`href`), how many there are and the first few. Read-only, apart from
`mark_alerts_read`, which remembers up to which alert a user has read (table `alerts_read`)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta

from . import access_requests, handover, outbox, recording_reasons, roles
from .box import Box
from .clock import to_iso

SHOWN = 5  # entries named per task; the count says how many there are
REVIEW_AHEAD = timedelta(days=7)  # holds whose review falls within this are listed (as on the overview)

# kinds, in the order the block lists them
HANDOVER_APPROVE = "handover_approve"
HANDOVER_WAITING = "handover_waiting"
REQUEST_OVERDUE = "request_overdue"
REQUEST_DUE = "request_due"
REVIEW_DUE = "review_due"
REASON_MISSING = "reason_missing"
SYNC_FAILING = "sync_failing"
ALERTS_UNREAD = "alerts_unread"
CAMERAS_FOUND = "cameras_found"


@dataclass
class Task:
    kind: str
    count: int
    href: str  # where the work is done
    entries: list[dict] = field(default_factory=list)  # the first SHOWN, each with its own href


def for_user(box: Box, user: dict) -> list[Task]:
    """The user's tasks (user: a users row with name, role, team); only kinds with something to do."""
    role = user["role"]
    tasks: list[Task] = []
    if roles.allowed(role, roles.HANDOVER_APPROVE) or roles.allowed(role, roles.HANDOVER_PREPARE):
        tasks += handovers(box, user)
    if roles.allowed(role, roles.REQUESTS_MANAGE):
        tasks += requests(box)
    if roles.allowed(role, roles.HOLDS_MANAGE):
        tasks += reviews(box, user)
    if roles.allowed(role, roles.RECORDINGS_ANNOTATE):
        tasks += reasons_missing(box, user)
    if roles.allowed(role, roles.SETTINGS_MANAGE):
        tasks += sync_failing(box)
    if roles.allowed(role, roles.CAMERAS_MANAGE):
        tasks += alerts_unread(box, user) + cameras_found(box)
    return [task for task in tasks if task.count]


def handovers(box: Box, user: dict) -> list[Task]:
    """Prepared handovers: those the user may approve (handover.awaiting_approval), or, for who cannot
    approve, those of the own scope; oldest first, the longest waiting on top."""
    approver = roles.allowed(user["role"], roles.HANDOVER_APPROVE)
    if approver:
        found = handover.awaiting_approval(box, user)
    else:
        found = list(reversed(handover.visible_handovers(box, user, state=handover.PREPARED)))
    entries = [{"id": row["id"], "href": f"/overdrachten/{row['id']}", "case_ref": row["case_ref"],
                "receiver": row["receiver"], "prepared_by": row["prepared_by"], "since": row["prepared_at"]}
               for row in found[:SHOWN]]
    kind = HANDOVER_APPROVE if approver else HANDOVER_WAITING
    return [Task(kind, len(found), "/overdrachten", entries)]


def requests(box: Box) -> list[Task]:
    """Open requests past their deadline, and those within the warning days before it."""
    rows = access_requests.due_soon(box)
    for row in rows:
        row["href"] = f"/verzoeken/{row['id']}"
    overdue = [row for row in rows if row["days_left"] < 0]
    near = [row for row in rows if row["days_left"] >= 0]
    return [Task(REQUEST_OVERDUE, len(overdue), "/verzoeken", overdue[:SHOWN]),
            Task(REQUEST_DUE, len(near), "/verzoeken", near[:SHOWN])]


def reviews(box: Box, user: dict) -> list[Task]:
    """Active holds due for review within a week (or overdue), on recordings in the user's scope."""
    where, params = roles.scope_sql(user)
    sql = (f"FROM holds h JOIN recordings r ON r.id = h.recording_id WHERE h.released_at IS NULL "
           f"AND h.review_at IS NOT NULL AND h.review_at <= ? AND {where}")
    params = [to_iso(box.clock() + REVIEW_AHEAD), *params]
    db = box.catalog.db
    count = db.execute(f"SELECT count(*) {sql}", params).fetchone()[0]
    entries = list(db.query(f"SELECT h.recording_id, h.purpose, h.case_ref, h.review_at {sql} "
                            "ORDER BY h.review_at LIMIT ?", [*params, SHOWN]))
    for row in entries:
        row["href"] = f"/opnames/{row['recording_id']}"
        row["overdue"] = row["review_at"] <= to_iso(box.clock())
    return [Task(REVIEW_DUE, count, "/opnames?state=held", entries)]


def reasons_missing(box: Box, user: dict) -> list[Task]:
    """Recordings in the user's scope without a reason [reasons] todo_days after they ended, oldest first.
    An officer fills them in on "Mijn opnames"; a team leader on the recording's page."""
    count, rows = recording_reasons.missing(box, user, SHOWN)
    own = roles.allowed(user["role"], roles.OWN_RECORDINGS)
    for row in rows:
        row["href"] = f"/mijn-opnames/{row['id']}" if own else f"/opnames/{row['id']}#reden"
    return [Task(REASON_MISSING, count, "/mijn-opnames?zonder=1" if own else "/opnames?reason=none", rows)]


def sync_failing(box: Box) -> list[Task]:
    """Recordings the archive sync failed to send, or the errors of its last pass (an enrolled box only)."""
    if outbox.enrollment(box) is None:
        return []
    db = box.catalog.db
    count = db.execute("SELECT count(*) FROM sync_outbox WHERE state = 'failing'").fetchone()[0]
    entries = list(db.query("SELECT recording_id, attempts, last_error, last_attempt_at FROM sync_outbox "
                            "WHERE state = 'failing' ORDER BY last_attempt_at DESC LIMIT ?", [SHOWN]))
    if not count:  # nothing failing in the outbox: the last pass itself may have failed (archive unreachable)
        last = box.catalog.get_meta(outbox.META_LAST_PASS)
        errors = json.loads(last).get("errors", []) if last else []
        count = len(errors)
        entries = [{"recording_id": None, "last_error": error} for error in errors[:SHOWN]]
    return [Task(SYNC_FAILING, count, "/instellingen#sync", entries)]


def _last_read(box: Box, name: str) -> int:
    row = box.catalog.db.execute("SELECT last_id FROM alerts_read WHERE user = ?", [name]).fetchone()
    return row[0] if row else 0


def alerts_unread(box: Box, user: dict) -> list[Task]:
    """Device alerts after the last one the user marked as read."""
    last = _last_read(box, user["name"])
    db = box.catalog.db
    count = db.execute("SELECT count(*) FROM device_alerts WHERE id > ?", [last]).fetchone()[0]
    entries = list(db.query("SELECT id, at, serial, address, kind FROM device_alerts WHERE id > ? "
                            "ORDER BY id DESC LIMIT ?", [last, SHOWN]))
    for row in entries:
        row["href"] = "/cameras#meldingen"
    return [Task(ALERTS_UNREAD, count, "/cameras#meldingen", entries)]


def unread_alert_ids(box: Box, name: str) -> set[int]:
    """The ids of the alerts `name` has not marked as read (for marking them on /cameras)."""
    last = _last_read(box, name)
    return {row[0] for row in box.catalog.db.execute("SELECT id FROM device_alerts WHERE id > ?", [last])}


def mark_alerts_read(box: Box, name: str, up_to: int) -> None:
    """`name` has read the alerts up to id `up_to` (the newest they were shown: one that came in after the
    page was drawn stays unread)."""
    with box.catalog.transaction():
        box.catalog.db.execute(
            "INSERT INTO alerts_read (user, last_id, read_at) VALUES (?, ?, ?) ON CONFLICT(user) DO UPDATE SET "
            "last_id = max(last_id, excluded.last_id), read_at = excluded.read_at", [name, up_to, box.now_iso()])


def cameras_found(box: Box) -> list[Task]:
    """Devices seen on the network or plugged in but not paired or registered: the keeper's to decide."""
    rows = found_devices(box)
    for row in rows:
        row["href"] = "/cameras#gevonden"
    return [Task(CAMERAS_FOUND, len(rows), "/cameras#gevonden", rows[:SHOWN])]


def found_devices(box: Box) -> list[dict]:
    """The keeper's "Gevonden" list: every device the box knows that is not paired, newest first."""
    return list(box.catalog.db.query(
        "SELECT serial, model, firmware, proto, address, port, online, first_seen, last_seen, status, advertised_fp "
        "FROM devices WHERE paired = 0 ORDER BY last_seen DESC, serial LIMIT 200"))
