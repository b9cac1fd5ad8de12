"""Retention: the policy (bewaartermijn), holds (blokkering), when a recording goes, and the reports.

A recording lives `term` days counted from its end: 28 by default; a recording may be in several
categories (an Axis bookmark's, its USB camera profile's, the officer's or team leader's choice), each
with its term in [retention.categories], and the longest of them is its term (`Policy.term_days`, and its
SQL mirrors `Policy.expired_sql` for the sweep and the backup, `Policy.term_sql` for the status: the one
rule, wherever a term is computed).
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
from typing import Any, Collection, Iterable

from . import audit, cases, statistics
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

    def term_days(self, categories: Collection[str] = ()) -> int:
        """The term of a recording in these categories: the longest of their terms (one no longer
        configured counts as the default term); without categories the default."""
        if isinstance(categories, str):
            raise TypeError("term_days takes a recording's categories, not one name")
        return max((self.categories.get(c, self.default_days) for c in categories), default=self.default_days)

    def terms(self) -> list[int]:
        """Every term a recording can have under this policy, shortest first."""
        return sorted({self.default_days, *self.categories.values()})

    def term_sql(self, alias: str = "r") -> tuple[str, list]:
        """term_days in SQL, over the recording_categories of recordings `alias` (its mirror: the sweep
        decides in SQL what term_days says in Python)."""
        if not self.categories:
            return "?", [self.default_days]
        cases = " ".join("WHEN ? THEN ?" for _ in self.categories)
        params: list = [v for item in sorted(self.categories.items()) for v in item]
        return (f"COALESCE((SELECT MAX(CASE c.category {cases} ELSE ? END) FROM recording_categories c "
                f"WHERE c.recording_id = {alias}.id), ?)", [*params, self.default_days, self.default_days])

    def expired_sql(self, now: datetime, alias: str = "r") -> tuple[str, list]:
        """`end_time + term_days(its categories) <= now` in SQL, for recordings `alias`: the sweep's mirror
        of term_days. Said as "no category of it keeps it longer, and without a category the default term
        has passed". recordings.category (set_category's list of the same categories, written in the same
        transaction) tells a recording without any, which then costs no look-up in recording_categories;
        the shortest term's bound comes first, a range on the expiry index."""
        def bound(days: int) -> str:
            return to_iso(now - timedelta(days=days))
        if not self.categories:
            return f"{alias}.end_time <= ?", [bound(self.default_days)]
        cases = " ".join("WHEN ? THEN ?" for _ in self.categories)
        by_category = [v for name, days in sorted(self.categories.items()) for v in (name, bound(days))]
        sql = (f"{alias}.end_time <= ? AND CASE WHEN {alias}.category IS NULL THEN {alias}.end_time <= ? "
               f"ELSE NOT EXISTS (SELECT 1 FROM recording_categories c WHERE c.recording_id = {alias}.id "
               f"AND {alias}.end_time > CASE c.category {cases} ELSE ? END) END")
        return sql, [bound(self.terms()[0]), bound(self.default_days), *by_category, bound(self.default_days)]

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
        "SELECT id, end_time, keep_until FROM recordings WHERE state = 'stored' AND id IN "
        "(SELECT recording_id FROM holds WHERE released_at IS NULL)"
    ).fetchall()
    pinned = 0
    for recording_id, end_time, keep_until in rows:
        categories = category_names(box.catalog, recording_id)
        if new.term_days(categories) >= old.term_days(categories):
            continue
        floor = to_iso(from_iso(end_time) + timedelta(days=old.term_days(categories)))
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
        statistics.refresh(box.catalog, recording_id)
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


# Categories -------------------------------------------------------------------------------------------

CATEGORY_SOURCES = ("axis", "usb", "web", "cli")  # where a category came from (and 'migrated': the old column)


def categories_of(catalog, recording_id: str) -> list[dict]:
    """A recording's categories with where each came from, who set it and when, by name."""
    return list(catalog.db.query("SELECT category, source, set_by, set_at FROM recording_categories "
                                 "WHERE recording_id = ? ORDER BY category", [recording_id]))


def category_names(catalog, recording_id: str) -> list[str]:
    return [row["category"] for row in categories_of(catalog, recording_id)]


class NotYours(KluisError):
    """An officer may take off only a category they put on themselves (a bookmark's, a profile's or the
    team leader's stays unless the team leader or the privacy officer takes it off)."""


def set_category(box: Box, recording_id: str, actor: str, *, add: Iterable[str] = (), remove: Iterable[str] = (),
                 source: str = "web", only_own: bool = False, client: str | None = None) -> list[str]:
    """Put a recording in retention categories ([retention.categories]) or take it out of them: the one
    place a recording's categories change. Its term is then the longest of its categories' terms (holds
    still beat it). Each change is one 'category_change' entry with the categories before and after, the
    term and the deletion date they give, in the same transaction. `only_own`: removing a category set by
    someone else than `actor` is refused (NotYours; an officer's limit). Returns the categories after."""
    if source not in CATEGORY_SOURCES:
        raise ValueError(f"unknown category source {source!r}")
    policy = current_policy(box)
    add, remove = list(dict.fromkeys(add)), list(dict.fromkeys(remove))
    unknown = [c for c in add if c not in policy.categories]
    if unknown:
        known = ", ".join(sorted(policy.categories)) or "none configured"
        raise KluisError(f"unknown retention category {', '.join(map(repr, unknown))} ({known})")
    with box.catalog.transaction():
        stored_recording(box, recording_id)
        rows = {row["category"]: row for row in categories_of(box.catalog, recording_id)}
        before = sorted(rows)
        added = [c for c in add if c not in rows]
        removed = [c for c in remove if c in rows and c not in added]
        if only_own:
            theirs = [c for c in removed if rows[c]["set_by"] != actor]
            if theirs:
                raise NotYours(f"{', '.join(theirs)}: set by {', '.join(sorted({rows[c]['set_by'] for c in theirs}))}; "
                               "only the team leader or the privacy officer takes it off")
        if not added and not removed:
            return before
        db = box.catalog.db
        now = box.now_iso()
        for category in added:
            db.execute("INSERT INTO recording_categories (recording_id, category, source, set_by, set_at) "
                       "VALUES (?, ?, ?, ?, ?)", [recording_id, category, source, actor, now])
        for category in removed:
            db.execute("DELETE FROM recording_categories WHERE recording_id = ? AND category = ?",
                       [recording_id, category])
        after = sorted(set(before) - set(removed) | set(added))
        db.execute("UPDATE recordings SET category = ? WHERE id = ?", [",".join(after) or None, recording_id])
        moment = delete_after(box, recording_id, policy)
        audit.record(box.catalog, actor=actor, action="category_change", recording_id=recording_id,
                     client=client, clock=box.clock,
                     details={"old": before, "new": after, "added": added, "removed": removed, "source": source,
                              "term_days": policy.term_days(after),
                              "delete_after": to_iso(moment) if moment else None})
        statistics.refresh(box.catalog, recording_id)  # last: it reads the row as this function left it
    return after


# When does a recording go -----------------------------------------------------------------------------

def delete_after(box: Box, recording: dict | str, policy: Policy | None = None) -> datetime | None:
    """The moment from which the sweep deletes a recording; None while it is under hold."""
    if isinstance(recording, str):
        recording = box.catalog.get_recording(recording)
    policy = policy or current_policy(box)
    now = to_iso(box.clock())
    moment = from_iso(recording["end_time"]) + timedelta(days=policy.term_days(category_names(box.catalog,
                                                                                             recording["id"])))
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
    """WHERE clause (on recordings r) for what may be deleted at `now`; mirrors delete_after(), with the
    term's end from Policy.expired_sql (term_days in SQL)."""
    expired, expired_params = policy.expired_sql(now, "r")
    now_iso = to_iso(now)
    sql = (
        f"r.state = 'stored' AND {expired}"
        " AND (r.keep_until IS NULL OR r.keep_until <= ?)"
        " AND NOT EXISTS (SELECT 1 FROM holds h WHERE h.recording_id = r.id AND"
        "   COALESCE(h.released_at, CASE WHEN h.until <= ? THEN h.until END, ?) > ?)"
    )
    params = [*expired_params, now_iso, now_iso, FAR_FUTURE, to_iso(now - timedelta(days=policy.grace_days))]
    return sql, params


DUE_SELECT = (
    "SELECT r.id, r.sha256, r.start_time, r.end_time, r.ingested_at, r.size, r.blob_size, r.stored_path, "
    "r.keep_until, (SELECT MAX(COALESCE(h.released_at, h.until)) FROM holds h "
    "WHERE h.recording_id = r.id) AS hold_end, (SELECT group_concat(c.category, ',') FROM recording_categories c "
    "WHERE c.recording_id = r.id) AS categories FROM recordings r"
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
    term, term_params = policy.term_sql("r")
    for days in policy.terms():
        row = db.execute(
            f"SELECT MIN(r.end_time) FROM recordings r WHERE r.state = 'stored' AND r.keep_until IS NULL "
            f"AND r.end_time > ? AND {term} = ? AND r.id NOT IN (SELECT recording_id FROM holds)",
            [to_iso(now - timedelta(days=days)), *term_params, days],
        ).fetchone()
        if row[0]:
            moment = from_iso(row[0]) + timedelta(days=days)
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
