"""Requests of people who were filmed: inzageverzoek (access, GDPR art. 15), bezwaar (objection, art. 21)
and klacht (complaint). The register, the search-and-hold, the legal deadline, and the outcome.

Registering a request searches the recordings around the moment the requester named (a window of
`[requests] window_minutes` either side, widened per camera by how much its clock offset changed between
the docks around that moment: a recording's corrected time is only as good as that), and places a hold on each match with the
request's kind as purpose and its reference (VZ-2026-0001) as case reference, so nothing expires while
the request is handled. The place is kept as the requester said it; when it is also given as a point on
the map, recordings that carry a location (appliance/recording_places.py: Axis systems) farther than
`place_radius_m` from it are left out, and the register says how many. A recording without a location is
never left out by place.

The answer is due one calendar month (`deadline_months`) after the request came in (31 January ->
28/29 February). An access request or an objection may be extended once or twice, by at most two further
months in all, with reasons, before that first deadline passes (AVG art. 12(3): the requester must hear of
it within the first month); a complaint is not an AVG request and keeps its deadline. Closing releases the request's holds, after which the normal term applies again (never
less than retention's grace period). An objection upheld deletes its recordings ahead of their term
(appliance.sweep.delete_early, audited with the decision reference), except a recording another hold
keeps (an aangifte, say): that one is not deleted, and the request records which holds kept it.

Name: not `requests`, to keep clear of the HTTP library of that name.
"""

from __future__ import annotations

import calendar
import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Literal, overload
from zoneinfo import ZoneInfo

from . import audit, cases, recording_places, retention, statistics, sweep
from . import config as config_mod
from .config_models import RequestsSettings
from .box import Box
from .clock import from_iso, to_iso
from .database import Where
from .errors import KluisError, NotFound
from .purposes import label as purpose_label

# kind (an appliance.purposes code, also the purpose of the hold) <- what a person may type
KINDS = {
    "access_request": ("inzage", "inzageverzoek", "access", "access_request", "access request"),
    "objection": ("bezwaar", "objection"),
    "complaint": ("klacht", "complaint"),
}
OUTCOMES = ("answered", "upheld", "rejected", "withdrawn")
# Which outcome fits which kind: an access request is answered (or refused, or withdrawn); an objection
# or complaint is upheld or rejected. Only an objection upheld deletes footage.
KIND_OUTCOMES = {
    "access_request": ("answered", "rejected", "withdrawn"),
    "objection": ("upheld", "rejected", "withdrawn"),
    "complaint": ("answered", "upheld", "rejected", "withdrawn"),
}
MAX_TEXT = 500


def settings(box: Box) -> RequestsSettings:
    """[requests] of kluis.toml (re-read: an edit applies without a restart)."""
    return config_mod.load(box.data_dir).requests


def parse_kind(text: str | None) -> str:
    wanted = (text or "").strip().lower()
    for code, names in KINDS.items():
        if wanted in names:
            return code
    raise KluisError(f"unknown kind of request {text!r}: inzage, bezwaar or klacht")


def add_months(day: date, months: int) -> date:
    """The same day `months` calendar months later, or the month's last day if it has no such day."""
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def today(box: Box) -> date:
    """The box's local date (the deadline is a date in the municipality's time zone)."""
    return box.clock().astimezone(ZoneInfo(box.settings.box.timezone)).date()


def days_left(box: Box, request: dict) -> int:
    return (date.fromisoformat(request["deadline"]) - today(box)).days


def ref_of(request_id: int, received_on: date) -> str:
    return f"VZ-{received_on.year}-{request_id:04d}"


@overload
def _text(value: str | None, name: str, required: Literal[True], limit: int = MAX_TEXT) -> str: ...
@overload
def _text(value: str | None, name: str, required: bool = False, limit: int = MAX_TEXT) -> str | None: ...
def _text(value: str | None, name: str, required: bool = False, limit: int = MAX_TEXT) -> str | None:
    value = (value or "").strip()
    if required and not value:
        raise KluisError(f"a request needs {name}")
    if len(value) > limit:
        raise KluisError(f"{name}: at most {limit} characters")
    if any(ord(ch) < 32 and ch not in "\t\n" for ch in value):
        raise KluisError(f"{name}: control characters are not allowed")
    return value or None


# The search ---------------------------------------------------------------------------------------------

def clock_uncertainty_s(box: Box, serial: str, at: datetime | None = None) -> float:
    """How far a camera's corrected times around `at` may be off. A recording's time is corrected by the
    offset measured when it was offloaded, but the clock drifted since the dock before: the difference
    between the offsets of the docks on either side of `at` is the uncertainty. Without a dock on both
    sides, the spread of the offsets measured within 30 days of `at`. 0 for a camera never docked
    (imported footage carries the time it was given)."""
    db = box.catalog.db
    moment = to_iso(at or box.clock())
    before = db.execute("SELECT clock_offset_s FROM docks WHERE serial = ? AND clock_offset_s IS NOT NULL AND "
                        "docked_at <= ? ORDER BY docked_at DESC LIMIT 1", [serial, moment]).fetchone()
    after = db.execute("SELECT clock_offset_s FROM docks WHERE serial = ? AND clock_offset_s IS NOT NULL AND "
                       "docked_at >= ? ORDER BY docked_at LIMIT 1", [serial, moment]).fetchone()
    if before and after:
        return abs(float(after[0]) - float(before[0]))
    centre = from_iso(moment)
    offsets = [row[0] for row in db.execute(
        "SELECT clock_offset_s FROM docks WHERE serial = ? AND clock_offset_s IS NOT NULL AND docked_at BETWEEN ? AND ?",
        [serial, to_iso(centre - timedelta(days=30)), to_iso(centre + timedelta(days=30))])]
    return float(max(offsets) - min(offsets)) if len(offsets) > 1 else 0.0


def search(box: Box, at: datetime, window_minutes: int, camera: str | None = None,
           officer: str | None = None) -> list[dict]:
    """Stored recordings that overlap [at - margin, at + margin], where margin is the window widened by
    the camera's clock uncertainty; optionally only one camera or officer (case-insensitive). Each row
    carries `margin_s` (the margin applied) and `uncertainty_s`."""
    db = box.catalog.db
    serials = [row[0] for row in db.execute("SELECT DISTINCT camera_serial FROM recordings")]
    drift = {serial: clock_uncertainty_s(box, serial, at) for serial in serials}
    window = timedelta(minutes=window_minutes)
    widest = window + timedelta(seconds=max(drift.values(), default=0.0))
    where = Where("state = 'stored'", "start_time <= ?", "end_time >= ?",
                  params=[to_iso(at + widest), to_iso(at - widest)])
    # An overlapping recording started at most the longest recording's length before the window: that
    # bound makes the search an index range instead of a walk over everything older (as appliance.recording_search).
    longest = db.execute("SELECT max(julianday(end_time) - julianday(start_time)) FROM recordings").fetchone()[0]
    if longest is not None:
        where.add("start_time >= ?", to_iso(at - widest - timedelta(days=longest, seconds=1)))
    if "derived_from" in {row[1] for row in db.execute("PRAGMA table_info(recordings)")}:
        where.add("derived_from IS NULL")  # a redacted copy is not footage of its own
    where.when(camera, "camera_serial = ? COLLATE NOCASE")
    where.when(officer, "officer = ? COLLATE NOCASE")
    rows = db.query(
        "SELECT id, camera_serial, officer, team, start_time, end_time, clock_offset_s, source FROM recordings"
        f"{where.sql()} ORDER BY start_time, id", where.params)
    found = []
    for row in rows:
        margin = window + timedelta(seconds=drift.get(row["camera_serial"], 0.0))
        if from_iso(row["start_time"]) <= at + margin and from_iso(row["end_time"]) >= at - margin:
            found.append({**row, "margin_s": margin.total_seconds(),
                          "uncertainty_s": drift.get(row["camera_serial"], 0.0)})
    return found


# The register -------------------------------------------------------------------------------------------

@dataclass
class Registered:
    request: dict
    matches: list[dict]                                  # search results, each linked and held
    held: list[int] = field(default_factory=list)        # hold ids placed
    place_note: str | None = None                        # how the place did or did not narrow the search
    elsewhere: list[dict] = field(default_factory=list)  # found by time, left out by place (with distance_m)


def by_place(box: Box, matches: list[dict], point: tuple[float, float] | None,
             radius_m: int) -> tuple[list[dict], list[dict], str | None]:
    """Split the time matches by the place: (kept, left out, a note for the register). Each kept or left
    out recording that carries a location gets `distance_m` (its nearest point's distance)."""
    if point is None:
        return matches, [], None
    nearest = recording_places.nearest(box.catalog.db, [m["id"] for m in matches], point)
    kept: list[dict] = []
    elsewhere: list[dict] = []
    for match in matches:
        distance = nearest.get(match["id"])
        if distance is not None:
            match["distance_m"] = round(distance)
        (elsewhere if distance is not None and distance > radius_m else kept).append(match)
    unknown = sum(1 for m in matches if m["id"] not in nearest)
    note = (f"{len(elsewhere)} recording(s) of that time were made farther than {radius_m} m away and were left "
            f"out; {unknown} recording(s) carry no location and were kept")
    return kept, elsewhere, note


def register(box: Box, *, requester: str, kind: str, received_on: date, given_time: datetime, actor: str,
             place: str | None = None, camera: str | None = None, officer: str | None = None,
             contact: str | None = None, notes: str | None = None, window_minutes: int | None = None,
             place_at: str | tuple[float, float] | None = None, radius_m: int | None = None,
             client: str | None = None) -> Registered:
    """Register a request, search its recordings, link and hold each match; all audited, in one
    transaction (a request is registered with its holds, or not at all). `place_at`: the place as a point
    (text as recording_places.parse_place reads it, or (lat, lon)), narrowing the search within `radius_m`."""
    code = parse_kind(kind)
    point = place_at if isinstance(place_at, tuple) else recording_places.parse_place(place_at)
    requester = _text(requester, "the requester's name", required=True, limit=200)
    place, camera, officer = _text(place, "place"), _text(camera, "camera", limit=100), _text(officer, "officer", limit=200)
    contact, notes = _text(contact, "contact details"), _text(notes, "notes", limit=4000)
    conf = settings(box)
    window = conf.window_minutes if window_minutes is None else window_minutes
    if isinstance(window, bool) or not isinstance(window, int) or not 0 <= window <= 24 * 60:
        raise KluisError("the search window is a whole number of minutes, 0 to 1440")
    radius = conf.place_radius_m if radius_m is None else radius_m
    if isinstance(radius, bool) or not isinstance(radius, int) or not 10 <= radius <= 50_000:
        raise KluisError("the radius around the place is a whole number of metres, 10 to 50000")
    if received_on > today(box):
        raise KluisError(f"the received date {received_on.isoformat()} is in the future")
    if given_time > box.clock() + timedelta(days=1):
        raise KluisError(f"the time the requester gave ({to_iso(given_time)}) is in the future")
    deadline = add_months(received_on, conf.deadline_months)
    now = to_iso(box.clock())
    with box.catalog.transaction():
        db = box.catalog.db
        request_id = db.execute(
            "INSERT INTO requests (ref, kind, requester, contact, received_on, deadline, given_time, place, "
            "camera_serial, officer, window_minutes, notes, registered_by, registered_at, place_lat, place_lon, "
            "place_radius_m) VALUES ('', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [code, requester, contact, received_on.isoformat(), deadline.isoformat(), to_iso(given_time), place,
             camera, officer, window, notes, actor, now, point[0] if point else None, point[1] if point else None,
             radius if point else None]).lastrowid
        assert request_id is not None  # an INSERT sets it
        ref = ref_of(request_id, received_on)
        db.execute("UPDATE requests SET ref = ? WHERE id = ?", [ref, request_id])
        # The request is a case of its own under its reference; its holds name it.
        cases.ensure(box, ref, code, actor, origin="request", client=client)
        matches, elsewhere, place_note = by_place(box, search(box, given_time, window, camera, officer), point, radius)
        # The requester's name stays out of the audit log (it is in the register, for those who handle it).
        audit.record(box.catalog, actor=actor, action="request_add", purpose=code, case_ref=ref, client=client,
                     details={"request": request_id, "kind": code, "received_on": received_on.isoformat(),
                              "deadline": deadline.isoformat(), "given_time": to_iso(given_time),
                              "window_minutes": window, "camera": camera, "officer": officer,
                              "found": [m["id"] for m in matches],
                              **({"place_radius_m": radius, "left_out_by_place": [m["id"] for m in elsewhere]}
                                 if point else {})})
        held = [_link(box, request_id, ref, code, m["id"], "search", actor, client) for m in matches]
    if place and not point:
        place_note = "the place was noted as text; give it as a point on the map to narrow the search"
    return Registered(get(box, request_id), matches, [h for h in held if h is not None], place_note, elsewhere)


def get(box: Box, request: int | str) -> dict:
    """A request by id or by reference (VZ-2026-0001)."""
    text = str(request).strip()
    if text.isdigit():
        rows = list(box.catalog.db.query("SELECT * FROM requests WHERE id = ?", [int(text)]))
    else:
        rows = list(box.catalog.db.query("SELECT * FROM requests WHERE ref = ? COLLATE NOCASE", [text]))
    if not rows:
        raise NotFound(f"no request {text!r}")
    return rows[0]


def list_requests(box: Box, status: str | None = None, text: str | None = None) -> list[dict]:
    """Requests, open ones first by deadline; each with `days_left` and the number of linked recordings.
    `text`: only those whose reference or requester contains it (case-insensitive)."""
    conditions, params = [], []
    if status:
        conditions.append("status = ?")
        params.append(status)
    if text and text.strip():
        pattern = "%" + text.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        conditions.append("(ref LIKE ? ESCAPE '\\' OR requester LIKE ? ESCAPE '\\')")
        params += [pattern, pattern]
    where = ("WHERE " + " AND ".join(conditions)) if conditions else ""
    rows = list(box.catalog.db.query(
        "SELECT q.*, (SELECT count(*) FROM request_recordings l WHERE l.request_id = q.id AND l.unlinked_at IS NULL) "
        f"AS linked FROM requests q {where} ORDER BY q.status = 'closed', q.deadline, q.id", params))
    for row in rows:
        row["days_left"] = days_left(box, row)
    return rows


def due_soon(box: Box) -> list[dict]:
    """Open requests within `warn_days` of their deadline, or past it (the dashboard's list)."""
    limit = today(box) + timedelta(days=settings(box).warn_days)
    rows = list(box.catalog.db.query(
        "SELECT id, ref, kind, deadline FROM requests WHERE status = 'open' AND deadline <= ? ORDER BY deadline, id",
        [limit.isoformat()]))
    for row in rows:
        row["days_left"] = days_left(box, row)
    return rows


def links(box: Box, request_id: int, include_unlinked: bool = True) -> list[dict]:
    """The request's recordings: the link, and the recording if it still exists (None once deleted)."""
    sql = "SELECT * FROM request_recordings WHERE request_id = ?"
    if not include_unlinked:
        sql += " AND unlinked_at IS NULL"
    rows = list(box.catalog.db.query(sql + " ORDER BY linked_at, recording_id", [request_id]))
    for row in rows:
        found = list(box.catalog.db.query(
            "SELECT id, camera_serial, officer, team, start_time, end_time, state FROM recordings WHERE id = ?",
            [row["recording_id"]]))
        row["recording"] = found[0] if found else None
        row["result_detail"] = json.loads(row["result_detail"]) if row["result_detail"] else None
    return rows


def derivatives(box: Box, recording_ids: list[str]) -> dict[str, list[dict]]:
    """Redacted versions of these recordings (appliance.redaction stores them with recordings.derived_from);
    {} on a catalog without that column."""
    columns = {row[1] for row in box.catalog.db.execute("PRAGMA table_info(recordings)")}
    if "derived_from" not in columns or not recording_ids:
        return {}
    found: dict[str, list[dict]] = {}
    marks = ", ".join("?" * len(recording_ids))
    for row in box.catalog.db.query(
            f"SELECT id, derived_from, start_time, state FROM recordings WHERE derived_from IN ({marks}) "
            "ORDER BY ingested_at, id", list(recording_ids)):
        found.setdefault(row["derived_from"], []).append(row)
    return found


def _open(box: Box, request: int | str) -> dict:
    found = get(box, request)
    if found["status"] != "open":
        raise KluisError(f"request {found['ref']} is closed ({found['outcome']})")
    return found


def _link(box: Box, request_id: int, ref: str, kind: str, recording_id: str, how: str, actor: str,
          client: str | None) -> int | None:
    """Link one recording and hold it for the request (unless the request holds it already); audited.
    Returns the hold placed, if one was."""
    db = box.catalog.db
    now = to_iso(box.clock())
    with box.catalog.transaction():
        existing = db.execute("SELECT unlinked_at FROM request_recordings WHERE request_id = ? AND recording_id = ?",
                              [request_id, recording_id]).fetchone()
        if existing is not None and existing[0] is None:
            raise KluisError(f"recording {recording_id} is linked to {ref} already")
        if existing is None:
            db.execute("INSERT INTO request_recordings (request_id, recording_id, how, linked_by, linked_at) "
                       "VALUES (?, ?, ?, ?, ?)", [request_id, recording_id, how, actor, now])
        else:
            db.execute("UPDATE request_recordings SET how = ?, linked_by = ?, linked_at = ?, unlinked_by = NULL, "
                       "unlinked_at = NULL WHERE request_id = ? AND recording_id = ?",
                       [how, actor, now, request_id, recording_id])
        audit.record(box.catalog, actor=actor, action="request_link", recording_id=recording_id, purpose=kind,
                     case_ref=ref, client=client, details={"request": request_id, "how": how})
        statistics.refresh(box.catalog, recording_id)
        if any(cases.same_ref(h["case_ref"], ref) for h in retention.active_holds(box.catalog, recording_id)):
            return None
        return retention.add_hold(box, recording_id, kind, ref, actor, client=client)


def linkable(box: Box, recording_id: str) -> bool:
    """Whether a recording can be linked to a request by hand: it exists and is stored (not deleted)."""
    return box.catalog.db.execute("SELECT 1 FROM recordings WHERE id = ? AND state = 'stored'",
                                  [recording_id]).fetchone() is not None


def link(box: Box, request: int | str, recording_id: str, actor: str, client: str | None = None) -> int | None:
    """Link a recording the search did not find (the operator's choice); it is held for the request."""
    found = _open(box, request)
    box.catalog.get_recording(recording_id)
    return _link(box, found["id"], found["ref"], found["kind"], recording_id, "manual", actor, client)


def unlink(box: Box, request: int | str, recording_id: str, actor: str, reason: str,
           client: str | None = None) -> list[int]:
    """Unlink a recording that is not the requester's after all; the request's hold on it is released
    (the normal term applies again). Returns the holds released."""
    found = _open(box, request)
    reason = _text(reason, "a reason for unlinking", required=True)
    db = box.catalog.db
    with box.catalog.transaction():
        row = db.execute("SELECT unlinked_at FROM request_recordings WHERE request_id = ? AND recording_id = ?",
                         [found["id"], recording_id]).fetchone()
        if row is None or row[0] is not None:
            raise NotFound(f"recording {recording_id} is not linked to {found['ref']}")
        db.execute("UPDATE request_recordings SET unlinked_by = ?, unlinked_at = ? WHERE request_id = ? AND "
                   "recording_id = ?", [actor, to_iso(box.clock()), found["id"], recording_id])
        audit.record(box.catalog, actor=actor, action="request_unlink", recording_id=recording_id,
                     purpose=found["kind"], case_ref=found["ref"], client=client,
                     details={"request": found["id"], "reason": reason})
        released = _release_own(box, found, recording_id, f"unlinked from {found['ref']}: {reason}", actor, client)
    return released


def _release_own(box: Box, request: dict, recording_id: str, reason: str, actor: str,
                 client: str | None) -> list[int]:
    if not any(cases.same_ref(h["case_ref"], request["ref"])
               for h in retention.active_holds(box.catalog, recording_id)):
        return []
    return retention.release_hold(box, recording_id, reason, actor, case_ref=request["ref"], client=client)


# Extending the deadline (AVG art. 12(3)) ------------------------------------------------------------------

EXTENDABLE = ("access_request", "objection")  # AVG requests; a complaint (klacht) follows the Awb, not art. 12
MAX_EXTENSION_MONTHS = 2


def extend(box: Box, request: int | str, months: int, reason: str, actor: str, client: str | None = None) -> dict:
    """Extend an open access request's or objection's deadline by `months` (1 or 2; at most two in all,
    counted from the first deadline), with the reason the requester is told. Only before the first
    deadline has passed: the requester must hear of an extension within the first month. Audited."""
    found = _open(box, request)
    if found["kind"] not in EXTENDABLE:
        raise KluisError(f"a {purpose_label(found['kind'], 'en')} is not an AVG request: its deadline is not "
                         "extended under art. 12(3)")
    if isinstance(months, bool) or not isinstance(months, int) or months < 1:
        raise KluisError("extend by 1 or 2 months")
    done = found["extension_months"] or 0
    if done + months > MAX_EXTENSION_MONTHS:
        raise KluisError(f"{found['ref']} is already extended by {done} month(s): at most "
                         f"{MAX_EXTENSION_MONTHS} in all (AVG art. 12(3))")
    reason = _text(reason, "the reason for the extension", required=True, limit=1000)
    first = date.fromisoformat(found["original_deadline"] or found["deadline"])
    if today(box) > first:
        raise KluisError(f"{found['ref']}: the first deadline ({first.isoformat()}) has passed; an extension had "
                         "to be sent within the first month (AVG art. 12(3))")
    received = date.fromisoformat(found["received_on"])
    # Counted from receipt (31 Jan + 1 + 2 months = 30 Apr), as the first deadline was, where that is how it
    # was made; else from the first deadline itself.
    base = next((m for m in range(1, 25) if add_months(received, m) == first), None)
    total = done + months
    deadline = add_months(received, base + total) if base is not None else add_months(first, total)
    now = to_iso(box.clock())
    with box.catalog.transaction():
        box.catalog.db.execute(
            "UPDATE requests SET original_deadline = ?, deadline = ?, extension_months = ?, extension_reason = ?, "
            "extended_by = ?, extended_at = ? WHERE id = ?",
            [first.isoformat(), deadline.isoformat(), total, reason, actor, now, found["id"]])
        audit.record(box.catalog, actor=actor, action="request_extend", purpose=found["kind"], case_ref=found["ref"],
                     client=client, details={"request": found["id"], "months": months, "extension_months": total,
                                             "first_deadline": first.isoformat(), "deadline": deadline.isoformat(),
                                             "reason": reason})
    return get(box, found["id"])


# Closing ------------------------------------------------------------------------------------------------

@dataclass
class Closed:
    request: dict
    released: list[str] = field(default_factory=list)     # recordings whose request hold was released
    deleted: list[str] = field(default_factory=list)      # recordings deleted ahead of their term
    blocked: dict[str, list[dict]] = field(default_factory=dict)   # recording -> the holds that kept it

    def as_dict(self) -> dict:
        return {"request": self.request, "released": self.released, "deleted": self.deleted,
                "blocked": {rid: [_hold_summary(h) for h in holds] for rid, holds in self.blocked.items()}}


def _hold_summary(hold: dict) -> dict:
    return {"hold": hold["id"], "purpose": hold["purpose"], "purpose_label": purpose_label(hold["purpose"]),
            "case_ref": hold["case_ref"]}


def close(box: Box, request: int | str, outcome: str, actor: str, decision_ref: str | None = None,
          client: str | None = None) -> Closed:
    """Close a request with its outcome. Its holds are released (audited); an objection upheld also
    deletes its recordings ahead of their term, except those another hold keeps (recorded per link)."""
    found = _open(box, request)
    outcome = (outcome or "").strip().lower()
    if outcome not in OUTCOMES:
        raise KluisError(f"unknown outcome {outcome!r}: one of {', '.join(OUTCOMES)}")
    if outcome not in KIND_OUTCOMES[found["kind"]]:
        raise KluisError(f"a {purpose_label(found['kind'], 'en')} cannot be closed as {outcome!r} "
                         f"(one of {', '.join(KIND_OUTCOMES[found['kind']])})")
    decision_ref = _text(decision_ref, "a decision reference", required=outcome != "withdrawn", limit=100)
    ref, rid = found["ref"], found["id"]
    delete = found["kind"] == "objection" and outcome == "upheld"
    result = Closed(found)
    why = f"{ref} closed: {outcome}" + (f" ({decision_ref})" if decision_ref else "")
    db = box.catalog.db
    # Each recording is settled in its own transaction (an early deletion commits before its blob goes);
    # the request is marked closed only after the last, so that a close cut short stays open and closing
    # it again settles what is left.
    # The linked recordings, then any other recording held under the request's reference: a redacted
    # derivative made for it (appliance.redaction holds it so) follows the request too.
    todo = [(item["recording_id"], item["recording"] is not None) for item in links(box, rid, include_unlinked=False)]
    seen = {recording_id for recording_id, _exists in todo}
    todo += [(row[0], True) for row in db.execute(
        "SELECT DISTINCT h.recording_id FROM holds h JOIN recordings r ON r.id = h.recording_id "
        "WHERE h.released_at IS NULL AND h.case_ref = ? COLLATE NOCASE ORDER BY h.recording_id", [ref]) if row[0] not in seen]
    for recording_id, exists in todo:
        if not exists:
            # deleted meanwhile (a sweep after an unlink), or by a close cut short: keep what that said
            db.execute("UPDATE request_recordings SET result = 'gone' WHERE request_id = ? AND recording_id = ? "
                       "AND result IS NULL", [rid, recording_id])
            continue
        blocking = sweep.blocking_holds(box, recording_id, ignore_case_ref=ref)
        if delete and not blocking:
            def release_and_note(recording_id=recording_id) -> None:  # in the deletion's transaction
                _release_own(box, found, recording_id, why, actor, client)
                _set_result(box, rid, recording_id, "deleted", None)

            try:
                sweep.delete_early(box, recording_id, actor=actor, reason="objection upheld",
                                       decision_ref=decision_ref or "", purpose="objection", client=client,
                                       first=release_and_note)
                result.deleted.append(recording_id)
                continue
            except sweep.Held as held:  # a hold placed in between: keep the recording
                blocking = held.holds
        with box.catalog.transaction():
            _release_own(box, found, recording_id, why, actor, client)
            if delete:
                _set_result(box, rid, recording_id, "blocked", [_hold_summary(h) for h in blocking])
                result.blocked[recording_id] = blocking
            else:
                _set_result(box, rid, recording_id, "released", None)
        result.released.append(recording_id)
    with box.catalog.transaction():
        db.execute("UPDATE requests SET status = 'closed', outcome = ?, decision_ref = ?, closed_by = ?, "
                   "closed_at = ? WHERE id = ?", [outcome, decision_ref, actor, to_iso(box.clock()), rid])
        audit.record(box.catalog, actor=actor, action="request_close", purpose=found["kind"], case_ref=ref,
                     client=client, details={"request": rid, "outcome": outcome, "decision_ref": decision_ref,
                                             "released": len(result.released), "deleted": len(result.deleted),
                                             "kept_by_other_holds": sorted(result.blocked)})
        case = cases.find(box, ref)
        if case is not None and cases.is_open(case):  # the request's outcome ends its case
            cases.mark_closed(box, case, actor, f"request closed: {outcome}", client=client)
    result.request = get(box, rid)
    return result


def _set_result(box: Box, request_id: int, recording_id: str, result: str, detail) -> None:
    box.catalog.db.execute(
        "UPDATE request_recordings SET result = ?, result_detail = ? WHERE request_id = ? AND recording_id = ?",
        [result, json.dumps(detail) if detail is not None else None, request_id, recording_id])
