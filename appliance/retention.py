"""Retention: the policy (bewaartermijn), holds (blokkering), when a recording goes, and the reports.

A recording lives `term` days counted from its end (28 by default; a category may have its own term).
A hold stops deletion for a purpose from appliance.purposes; releasing it needs a reason. When the last
hold ends, the normal term applies again, but never less than `grace_days` from that moment. A policy
change never shortens the life of a recording under hold: such a recording keeps, at least, the deletion
date it had under the old policy (`recordings.keep_until`).

The sweep that deletes what is due, and deletion ahead of term, are appliance/sweep.py.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from . import audit, cases
from . import config as config_mod
from .config_models import RetentionSettings
from .box import Box
from .clock import from_iso, to_iso
from .database import Where
from .errors import KluisError, NotFound
from .purposes import parse_purpose

log = logging.getLogger("kluis.retention")

POLICY_META = "retention_policy"
LAST_SWEEP_META = "retention_last_sweep"
FAR_FUTURE = "9999-12-31T23:59:59.999Z"


# Policy -----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Policy:
    """The terms in force (their defaults and bounds: [retention] in appliance.config_models)."""
    default_days: int
    review_days: int
    grace_days: int
    categories: dict[str, int] = field(default_factory=dict)

    def term_days(self, category: str | None) -> int:
        return self.categories.get(category, self.default_days) if category else self.default_days

    def as_dict(self) -> dict[str, Any]:
        return {"default_days": self.default_days, "review_days": self.review_days,
                "grace_days": self.grace_days, "categories": dict(sorted(self.categories.items()))}


def policy_from_settings(section: RetentionSettings) -> Policy:
    return Policy(default_days=section.default_days, review_days=section.review_days,
                  grace_days=section.grace_days, categories=dict(section.categories))


def current_policy(box: Box) -> Policy:
    """The policy in kluis.toml now (re-read, so that an edit takes effect without a restart)."""
    return policy_from_settings(config_mod.load(box.data_dir).retention)


def sync_policy(box: Box, actor: str = "system") -> Policy:
    """Adopt the policy in kluis.toml. A change is audited, and recordings under hold keep at least the
    deletion date the old policy gave them, so that a shorter term never shortens a held life."""
    new = current_policy(box)
    with box.catalog.transaction():
        stored = box.catalog.get_meta(POLICY_META)
        old = Policy(**json.loads(stored)) if stored else None
        if old == new:
            return new
        pinned = 0
        if old is not None:
            pinned = _pin_held(box, old, new)
        box.catalog.set_meta(POLICY_META, json.dumps(new.as_dict(), sort_keys=True))
        audit.record(box.catalog, actor=actor, action="policy_change", clock=box.clock,
                     details={"old": old.as_dict() if old else None, "new": new.as_dict(),
                              "source": "kluis.toml", "held_recordings_kept": pinned})
    if old is not None:
        log.info("retention policy changed: %s -> %s", old.as_dict(), new.as_dict())
    return new


def _pin_held(box: Box, old: Policy, new: Policy) -> int:
    db = box.catalog.db
    rows = db.execute(
        "SELECT id, end_time, category, keep_until FROM recordings WHERE state = 'stored' AND id IN "
        "(SELECT recording_id FROM holds WHERE released_at IS NULL)"
    ).fetchall()
    pinned = 0
    for recording_id, end_time, category, keep_until in rows:
        if new.term_days(category) >= old.term_days(category):
            continue
        floor = to_iso(from_iso(end_time) + timedelta(days=old.term_days(category)))
        if keep_until is None or keep_until < floor:
            db.execute("UPDATE recordings SET keep_until = ? WHERE id = ?", [floor, recording_id])
            pinned += 1
    return pinned


# Holds ------------------------------------------------------------------------------------------------

def stored_recording(box: Box, recording_id: str) -> dict:
    """The catalog row of a recording that is not being deleted (NotFound, or KluisError if it is)."""
    recording = box.catalog.get_recording(recording_id)
    if recording["state"] != "stored":
        raise KluisError(f"recording {recording_id} is being deleted")
    return recording


def add_hold(box: Box, recording_id: str, purpose: str, case_ref: str, actor: str, until: datetime | None = None,
             review_at: datetime | None = None, client: str | None = None) -> int:
    """Place a hold; returns its id. `until`: the hold ends by itself then (an end date); otherwise it
    stays until released and comes up for review every `review_days`. The hold belongs to the case its
    reference names, opened here if the reference is new (appliance.cases.ensure); a closed case takes
    no hold."""
    code = parse_purpose(purpose)
    case_ref = " ".join((case_ref or "").split())
    if not case_ref:
        raise KluisError("a hold needs a case reference (zaaknummer)")
    now = box.clock()
    if until is not None and until <= now:
        raise KluisError(f"the end date {to_iso(until)} of the hold has passed")
    policy = current_policy(box)
    review = review_at or now + timedelta(days=policy.review_days)
    if until is not None:
        review = min(review, until)
    with box.catalog.transaction():
        stored_recording(box, recording_id)
        case_ref = cases.ensure(box, case_ref, code, actor, origin="hold", client=client)["reference"]
        hold_id = box.catalog.db.execute(
            "INSERT INTO holds (recording_id, purpose, case_ref, placed_by, placed_at, review_at, until) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [recording_id, code, case_ref, actor, to_iso(now), to_iso(review),
             to_iso(until) if until else None],
        ).lastrowid
        assert hold_id is not None  # an INSERT sets it
        audit.record(box.catalog, actor=actor, action="hold_add", recording_id=recording_id, purpose=code,
                     case_ref=case_ref, client=client, clock=box.clock,
                     details={"hold": hold_id, "review_at": to_iso(review), "until": to_iso(until) if until else None})
    return hold_id


def release_hold(box: Box, recording_id: str, reason: str, actor: str, hold_id: int | None = None,
                 case_ref: str | None = None, client: str | None = None) -> list[int]:
    """Release the active hold of a recording (or the one named by `hold_id` / `case_ref` when it has
    several); returns the ids released."""
    reason = (reason or "").strip()
    if not reason:
        raise KluisError("releasing a hold needs a reason")
    now = to_iso(box.clock())
    with box.catalog.transaction():
        box.catalog.get_recording(recording_id)
        holds = active_holds(box.catalog, recording_id)
        if hold_id is not None:
            holds = [h for h in holds if h["id"] == hold_id]
        if case_ref is not None:
            holds = [h for h in holds if cases.same_ref(h["case_ref"], case_ref)]
        if not holds:
            raise NotFound(f"recording {recording_id} has no active hold"
                           + (" matching that hold or case" if hold_id is not None or case_ref is not None else ""))
        if len(holds) > 1 and hold_id is None and case_ref is None:
            which = ", ".join(f"{h['id']} ({h['purpose']}, {h['case_ref']})" for h in holds)
            raise KluisError(f"recording {recording_id} has {len(holds)} active holds: {which}; "
                             "name one (--hold ID or --case REF)")
        for hold in holds:
            _release(box, hold, now, actor, reason, client)
    return [h["id"] for h in holds]


def _release(box: Box, hold: dict, at: str, actor: str, reason: str, client: str | None) -> None:
    box.catalog.db.execute(
        "UPDATE holds SET released_at = ?, released_by = ?, release_reason = ? WHERE id = ? AND released_at IS NULL",
        [at, actor, reason, hold["id"]],
    )
    audit.record(box.catalog, actor=actor, action="hold_release", recording_id=hold["recording_id"],
                 purpose=hold["purpose"], case_ref=hold["case_ref"], client=client, clock=box.clock,
                 details={"hold": hold["id"], "reason": reason})


def review_hold(box: Box, hold_id: int, actor: str, next_review: datetime | None = None,
                client: str | None = None) -> str:
    """Confirm a hold is still needed; it comes up for review again after `review_days`."""
    now = box.clock()
    review = next_review or now + timedelta(days=current_policy(box).review_days)
    with box.catalog.transaction():
        hold = _hold(box.catalog, hold_id)
        if hold["released_at"]:
            raise KluisError(f"hold {hold_id} was released")
        box.catalog.db.execute("UPDATE holds SET review_at = ? WHERE id = ?", [to_iso(review), hold_id])
        audit.record(box.catalog, actor=actor, action="hold_review", recording_id=hold["recording_id"],
                     purpose=hold["purpose"], case_ref=hold["case_ref"], client=client, clock=box.clock,
                     details={"hold": hold_id, "review_at": to_iso(review)})
    return to_iso(review)


def _hold(catalog, hold_id: int) -> dict:
    rows = list(catalog.db.query("SELECT * FROM holds WHERE id = ?", [hold_id]))
    if not rows:
        raise NotFound(f"no hold {hold_id}")
    return rows[0]


def active_holds(catalog, recording_id: str | None = None) -> list[dict]:
    """Holds not released (for one recording, or all), oldest first."""
    if recording_id is None:
        return list(catalog.db.query("SELECT * FROM holds WHERE released_at IS NULL ORDER BY placed_at, id"))
    return list(catalog.db.query(
        "SELECT * FROM holds WHERE recording_id = ? AND released_at IS NULL ORDER BY placed_at, id", [recording_id]))


def list_holds(catalog, recording_id: str | None = None, include_released: bool = False) -> list[dict]:
    where, params = [], []
    if recording_id is not None:
        where.append("recording_id = ?")
        params.append(recording_id)
    if not include_released:
        where.append("released_at IS NULL")
    sql = "SELECT * FROM holds" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY placed_at, id"
    return list(catalog.db.query(sql, params))


def end_lapsed_holds(box: Box, actor: str = "system") -> int:
    """Holds whose end date passed are released, as of that date (audited like any release)."""
    now = to_iso(box.clock())
    with box.catalog.transaction():
        lapsed = list(box.catalog.db.query(
            "SELECT * FROM holds WHERE released_at IS NULL AND until IS NOT NULL AND until <= ?", [now]))
        for hold in lapsed:
            _release(box, hold, hold["until"], actor, "end date reached", None)
    return len(lapsed)


def set_category(box: Box, recording_id: str, category: str | None, actor: str, client: str | None = None) -> None:
    """Put a recording in a retention category (its term comes from [retention.categories])."""
    policy = current_policy(box)
    if category is not None and category not in policy.categories:
        known = ", ".join(sorted(policy.categories)) or "none configured"
        raise KluisError(f"unknown retention category {category!r} ({known})")
    with box.catalog.transaction():
        old = stored_recording(box, recording_id).get("category")
        box.catalog.db.execute("UPDATE recordings SET category = ? WHERE id = ?", [category, recording_id])
        audit.record(box.catalog, actor=actor, action="category_change", recording_id=recording_id,
                     client=client, clock=box.clock, details={"old": old, "new": category})


# When does a recording go -----------------------------------------------------------------------------

def delete_after(box: Box, recording: dict | str, policy: Policy | None = None) -> datetime | None:
    """The moment from which the sweep deletes a recording; None while it is under hold."""
    if isinstance(recording, str):
        recording = box.catalog.get_recording(recording)
    policy = policy or current_policy(box)
    now = to_iso(box.clock())
    moment = from_iso(recording["end_time"]) + timedelta(days=policy.term_days(recording.get("category")))
    holds = list_holds(box.catalog, recording["id"], include_released=True)
    ends = []
    for hold in holds:
        end = hold["released_at"] or (hold["until"] if hold["until"] and hold["until"] <= now else None)
        if end is None:
            return None
        ends.append(end)
    if ends:
        moment = max(moment, from_iso(max(ends)) + timedelta(days=policy.grace_days))
    if recording.get("keep_until"):
        moment = max(moment, from_iso(recording["keep_until"]))
    return moment


def eligible_sql(policy: Policy, now: datetime) -> tuple[str, list]:
    """WHERE clause (on recordings r) for what may be deleted at `now`; mirrors delete_after()."""
    terms, params = [], []
    cats = sorted(policy.categories)
    if cats:
        terms.append(f"((r.category IS NULL OR r.category NOT IN ({', '.join('?' * len(cats))})) AND r.end_time <= ?)")
        params += cats
    else:
        terms.append("r.end_time <= ?")
    params.append(to_iso(now - timedelta(days=policy.default_days)))
    for cat in cats:
        terms.append("(r.category = ? AND r.end_time <= ?)")
        params += [cat, to_iso(now - timedelta(days=policy.categories[cat]))]
    now_iso = to_iso(now)
    sql = (
        f"r.state = 'stored' AND ({' OR '.join(terms)})"
        " AND (r.keep_until IS NULL OR r.keep_until <= ?)"
        " AND NOT EXISTS (SELECT 1 FROM holds h WHERE h.recording_id = r.id AND"
        "   COALESCE(h.released_at, CASE WHEN h.until <= ? THEN h.until END, ?) > ?)"
    )
    params += [now_iso, now_iso, FAR_FUTURE, to_iso(now - timedelta(days=policy.grace_days))]
    return sql, params


DUE_SELECT = (
    "SELECT r.id, r.sha256, r.start_time, r.end_time, r.ingested_at, r.size, r.blob_size, r.stored_path, "
    "r.category, r.keep_until, (SELECT MAX(COALESCE(h.released_at, h.until)) FROM holds h "
    "WHERE h.recording_id = r.id) AS hold_end FROM recordings r"
)


def due(box: Box, policy: Policy | None = None, limit: int | None = None) -> list[dict]:
    """Recordings the sweep would delete now, oldest first."""
    policy = policy or current_policy(box)
    where, params = eligible_sql(policy, box.clock())
    sql = f"{DUE_SELECT} WHERE {where} ORDER BY r.end_time, r.id"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return list(box.catalog.db.query(sql, params))


def count_due(box: Box, at: datetime, policy: Policy | None = None) -> int:
    """How many recordings the sweep would delete if it ran at `at` (the sweep's own rule, at a later
    moment: the answer the sweep will give, unless something is held meanwhile)."""
    where, params = eligible_sql(policy or current_policy(box), at)
    return box.catalog.db.execute(f"SELECT count(*) FROM recordings r WHERE {where}", params).fetchone()[0]


# Reports ----------------------------------------------------------------------------------------------

REPORT_COLUMNS = ("recording_id", "sha256", "start_time", "end_time", "ingested_at", "size", "category",
                  "term_days", "reason", "deleted_at", "blob_removed_at")


def deletion_report(catalog, start: str | None = None, end: str | None = None) -> list[dict]:
    """Deletion records (verwijderverslag) with deleted_at in [start, end), oldest first."""
    where = Where()
    where.when(start, "deleted_at >= ?")
    where.when(end, "deleted_at < ?")
    sql = f"SELECT {', '.join(REPORT_COLUMNS)} FROM deletions{where.sql()} ORDER BY deleted_at, recording_id"
    return list(catalog.db.query(sql, where.params))


def status(box: Box) -> dict:
    """What the retention page and `kluis retention status` show."""
    policy = current_policy(box)
    now = box.clock()
    db = box.catalog.db
    stored = db.execute("SELECT COUNT(*) FROM recordings WHERE state = 'stored'").fetchone()[0]
    held = db.execute("SELECT COUNT(DISTINCT recording_id) FROM holds WHERE released_at IS NULL").fetchone()[0]
    where, params = eligible_sql(policy, now)
    due_now = db.execute(f"SELECT COUNT(*) FROM recordings r WHERE {where}", params).fetchone()[0]
    # The next expiry among recordings that never had a hold (others follow their holds).
    nxt = None
    for category, term in [(None, policy.default_days)] + sorted(policy.categories.items()):
        cond = ("category = ?", [category]) if category else (
            "(category IS NULL OR category NOT IN ({}))".format(", ".join("?" * len(policy.categories))),
            sorted(policy.categories))
        row = db.execute(
            f"SELECT MIN(end_time) FROM recordings WHERE state = 'stored' AND keep_until IS NULL AND {cond[0]} "
            "AND end_time > ? AND id NOT IN (SELECT recording_id FROM holds)",
            cond[1] + [to_iso(now - timedelta(days=term))],
        ).fetchone()
        if row[0]:
            moment = from_iso(row[0]) + timedelta(days=term)
            nxt = moment if nxt is None or moment < nxt else nxt
    review_due = db.execute("SELECT COUNT(*) FROM holds WHERE released_at IS NULL AND review_at <= ?",
                            [to_iso(now)]).fetchone()[0]
    pending = db.execute("SELECT COUNT(*) FROM deletions WHERE blob_removed_at IS NULL").fetchone()[0]
    deleted = db.execute("SELECT COUNT(*) FROM deletions").fetchone()[0]
    last = box.catalog.get_meta(LAST_SWEEP_META)
    return {
        "now": to_iso(now),
        "policy": policy.as_dict(),
        "recordings": stored,
        "held": held,
        "due": due_now,
        "next_expiry": to_iso(nxt) if nxt else None,
        "holds_due_for_review": review_due,
        "deletions_pending": pending,
        "deleted_total": deleted,
        "last_sweep": json.loads(last) if last else None,
    }


def same_hold(catalog, recording_id: str, purpose: str, case_ref: str) -> dict | None:
    """An active hold on the recording for the same purpose and case reference (case and spaces aside), or
    None: placing it again would keep nothing longer, so the UI flags it instead."""
    wanted = " ".join(case_ref.split()).casefold()
    for hold in list_holds(catalog, recording_id):
        if hold["purpose"] == purpose and " ".join((hold["case_ref"] or "").split()).casefold() == wanted:
            return hold
    return None
