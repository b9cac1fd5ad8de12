"""Retention: the policy (bewaartermijn), holds (blokkering) and the sweep that deletes expired footage.

A recording lives `term` days counted from its end (28 by default; a category may have its own term).
A hold stops deletion for a purpose from appliance.purposes; releasing it needs a reason. When the last
hold ends, the normal term applies again, but never less than `grace_days` from that moment. A policy
change never shortens the life of a recording under hold: such a recording keeps, at least, the deletion
date it had under the old policy (`recordings.keep_until`).

The sweep deletes crypto-shredding first: in one transaction it removes the wrapped file keys (with
`secure_delete` on, the only copies) and the catalog row, and writes the deletion record and the audit
entry. Only then the blob goes, and the deletion record notes it. A sweep killed at any point leaves
either nothing done or deletion records whose blob removal is pending; the next sweep finishes them.
Deleting needs no private key, so it runs while the box is locked.
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

from . import audit
from . import config as config_mod
from .config_models import RetentionSettings
from .box import Box
from .clock import from_iso, to_iso
from .errors import KluisError, NotFound
from .purposes import parse_purpose
from .vault import fsync_dir

log = logging.getLogger("kluis.retention")

BATCH = 1000  # recordings per delete transaction: bounded memory, few commits
UNLINK_THREADS = 8
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

def _recording(box: Box, recording_id: str) -> dict:
    recording = box.catalog.get_recording(recording_id)
    if recording["state"] != "stored":
        raise KluisError(f"recording {recording_id} is being deleted")
    return recording


def add_hold(box: Box, recording_id: str, purpose: str, case_ref: str, actor: str, until: datetime | None = None,
             review_at: datetime | None = None, client: str | None = None) -> int:
    """Place a hold; returns its id. `until`: the hold ends by itself then (an end date); otherwise it
    stays until released and comes up for review every `review_days`."""
    code = parse_purpose(purpose)
    case_ref = (case_ref or "").strip()
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
        _recording(box, recording_id)
        hold_id = box.catalog.db.execute(
            "INSERT INTO holds (recording_id, purpose, case_ref, placed_by, placed_at, review_at, until) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [recording_id, code, case_ref, actor, to_iso(now), to_iso(review),
             to_iso(until) if until else None],
        ).lastrowid
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
            holds = [h for h in holds if h["case_ref"] == case_ref]
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
        old = _recording(box, recording_id).get("category")
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


def _eligible_sql(policy: Policy, now: datetime) -> tuple[str, list]:
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


_SELECT = (
    "SELECT r.id, r.sha256, r.start_time, r.end_time, r.ingested_at, r.size, r.blob_size, r.stored_path, "
    "r.category, r.keep_until, (SELECT MAX(COALESCE(h.released_at, h.until)) FROM holds h "
    "WHERE h.recording_id = r.id) AS hold_end FROM recordings r"
)


def due(box: Box, policy: Policy | None = None, limit: int | None = None) -> list[dict]:
    """Recordings the sweep would delete now, oldest first."""
    policy = policy or current_policy(box)
    where, params = _eligible_sql(policy, box.clock())
    sql = f"{_SELECT} WHERE {where} ORDER BY r.end_time, r.id"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return list(box.catalog.db.query(sql, params))


# The sweep --------------------------------------------------------------------------------------------

@dataclass
class SweepResult:
    at: str
    dry_run: bool = False
    deleted: list[str] = field(default_factory=list)    # ids (in a dry run: ids that would go)
    finished: int = 0                                   # deletions of an interrupted sweep completed
    holds_ended: int = 0
    wal_truncated: bool | None = None

    def as_dict(self) -> dict:
        return {"at": self.at, "dry_run": self.dry_run, "deleted": len(self.deleted), "finished": self.finished,
                "holds_ended": self.holds_ended, "wal_truncated": self.wal_truncated}


def sweep(box: Box, *, dry_run: bool = False, batch: int = BATCH,
          progress: Callable[[int], None] | None = None) -> SweepResult:
    """Delete every expired, unheld recording. Safe to run in several processes at once and to kill."""
    now = box.clock()
    result = SweepResult(at=to_iso(now), dry_run=dry_run)
    if dry_run:
        result.deleted = [row["id"] for row in due(box)]
        return result
    policy = sync_policy(box)
    result.finished = finish_pending(box)
    result.holds_ended = end_lapsed_holds(box)
    where, params = _eligible_sql(policy, now)
    select = f"{_SELECT} WHERE {where} ORDER BY r.end_time, r.id LIMIT {int(batch)}"
    policy_text = json.dumps(policy.as_dict(), sort_keys=True)
    dirs: set[Path] = set()
    while True:
        # Selecting inside the write transaction: a hold placed meanwhile by another process is seen.
        with box.catalog.transaction():
            rows = list(box.catalog.db.query(select, params))
            _shred(box, rows, policy, policy_text, result.at)
        if not rows:
            break
        dirs |= _remove_blobs(box, [{"recording_id": r["id"], "sha256": r["sha256"]} for r in rows])
        result.deleted += [row["id"] for row in rows]
        if progress:
            progress(len(result.deleted))
    _fsync_dirs(dirs)
    result.wal_truncated = _truncate_wal(box)
    box.catalog.set_meta(LAST_SWEEP_META, json.dumps(result.as_dict()))
    if result.deleted or result.finished:
        log.info("retention sweep: %d recording(s) deleted, %d interrupted deletion(s) finished",
                 len(result.deleted), result.finished)
    return result


def _shred(box: Box, rows: list[dict], policy: Policy, policy_text: str, at: str, *, actor: str = "system",
           reason: str | None = None, audit_fields: dict | None = None) -> None:
    """Step 1, the one that counts, in one transaction: destroy the wrapped file keys (the only copies;
    secure_delete overwrites them), drop the catalog row with its personal data, write the deletion
    record (which also says the blob is still to be removed) and the audit entry. `actor`, `reason` and
    `audit_fields` are for a deletion ahead of its term (delete_early); the sweep leaves them alone."""
    db = box.catalog.db.conn
    ids = [(row["id"],) for row in rows]
    db.executemany("DELETE FROM file_keys WHERE recording_id = ?", ids)
    db.executemany("DELETE FROM recordings WHERE id = ?", ids)
    records = []
    extra = audit_fields or {}
    for row in rows:
        term = policy.term_days(row["category"])
        why = reason or ("term expired after hold released" if row["hold_end"] else "term expired")
        records.append([row["id"], row["sha256"], row["start_time"], row["end_time"], row["ingested_at"],
                        row["size"], row["category"], term, policy_text, why, at])
        audit.record(box.catalog, actor=actor, action="delete", recording_id=row["id"], clock=box.clock,
                     purpose=extra.get("purpose"), case_ref=extra.get("case_ref"), client=extra.get("client"),
                     details={"sha256": row["sha256"], "reason": why, "term_days": term,
                              "category": row["category"], **extra.get("details", {})})
    db.executemany(
        "INSERT INTO deletions (recording_id, sha256, start_time, end_time, ingested_at, size, category, "
        "term_days, policy, reason, deleted_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", records)


def _remove_blobs(box: Box, rows: list[dict]) -> set[Path]:
    """Step 2: the ciphertext, now without a key, then the note that it is gone. Returns the directories
    to fsync: that happens once per sweep, not per blob, since a removal lost to a power cut leaves only
    keyless ciphertext that no catalog row names (`Vault.cleanup`, run by kluis verify, removes it)."""
    db = box.catalog.db
    paths = [box.vault.root / box.vault.relpath(row["sha256"]) for row in rows
             # the same container stored again meanwhile: the blob is that recording's now
             if not db.execute("SELECT 1 FROM recordings WHERE sha256 = ?", [row["sha256"]]).fetchone()]
    # Unlinks in parallel: on a busy disk each waits on the file system journal, and waiting together
    # is several times faster than one after the other (bench/bench_retention.py).
    with ThreadPoolExecutor(max_workers=UNLINK_THREADS) as pool:
        list(pool.map(_unlink, paths))
    now = to_iso(box.clock())
    with box.catalog.transaction():
        box.catalog.db.conn.executemany("UPDATE deletions SET blob_removed_at = ? WHERE recording_id = ?",
                                        [(now, row["recording_id"]) for row in rows])
    return {path.parent for path in paths}


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def _fsync_dirs(dirs: set[Path]) -> None:
    with ThreadPoolExecutor(max_workers=UNLINK_THREADS) as pool:
        list(pool.map(_fsync_dir, dirs))


def _fsync_dir(directory: Path) -> None:
    try:
        fsync_dir(directory)
    except FileNotFoundError:
        pass


class Held(KluisError):
    """An early deletion refused: active holds forbid it. `holds` names them (purpose, case reference)."""

    def __init__(self, recording_id: str, holds: list[dict]):
        self.recording_id = recording_id
        self.holds = holds
        which = ", ".join(f"{h['purpose']} {h['case_ref']} (hold {h['id']})" for h in holds)
        super().__init__(f"recording {recording_id} is held and was not deleted: {which}")


def blocking_holds(box: Box, recording_id: str, ignore_case_ref: str | None = None) -> list[dict]:
    """The holds that forbid deleting a recording now: active ones whose end date has not passed,
    except those with case reference `ignore_case_ref` (the caller's own, about to be released)."""
    now = to_iso(box.clock())
    return [h for h in active_holds(box.catalog, recording_id)
            if not (h["until"] and h["until"] <= now) and h["case_ref"] != ignore_case_ref]


def delete_early(box: Box, recording_id: str, *, actor: str, reason: str, decision_ref: str,
                 purpose: str | None = None, client: str | None = None,
                 first: Callable[[], None] | None = None) -> None:
    """Delete one recording ahead of its term (an objection upheld), through the sweep's own shredding:
    keys and row gone with the deletion record and the audit entry (actor, decision reference) in one
    transaction, then the blob. Refused with Held, naming the holds, while any hold forbids it; the
    policy's keep_until does not (it only keeps a held recording from a shorter term). `first` runs inside
    the same transaction before the check (a caller releasing its own hold: both commit, or neither).
    Not inside another transaction: the blob goes only after the keys' destruction has committed."""
    reason = (reason or "").strip()
    decision_ref = (decision_ref or "").strip()
    if not reason or not decision_ref:
        raise KluisError("deleting a recording ahead of its term needs a reason and a decision reference")
    if box.catalog.db.conn.in_transaction:
        raise RuntimeError("delete_early must commit its own transaction before the blob is removed")
    policy = current_policy(box)
    at = to_iso(box.clock())
    with box.catalog.transaction():
        _recording(box, recording_id)
        if first is not None:
            first()
        holds = blocking_holds(box, recording_id)
        if holds:
            raise Held(recording_id, holds)
        rows = list(box.catalog.db.query(f"{_SELECT} WHERE r.id = ?", [recording_id]))
        _shred(box, rows, policy, json.dumps(policy.as_dict(), sort_keys=True), at, actor=actor,
               reason=f"deleted ahead of term: {reason}",
               audit_fields={"purpose": purpose, "case_ref": decision_ref, "client": client,
                             "details": {"early": True, "decision_ref": decision_ref}})
    _fsync_dirs(_remove_blobs(box, [{"recording_id": recording_id, "sha256": rows[0]["sha256"]}]))
    _truncate_wal(box)


def finish_pending(box: Box) -> int:
    """Finish deletions an interrupted sweep left: key and row are gone, the blob may still be there."""
    rows = [{"recording_id": r[0], "sha256": r[1]} for r in box.catalog.db.execute(
        "SELECT recording_id, sha256 FROM deletions WHERE blob_removed_at IS NULL ORDER BY recording_id")]
    dirs: set[Path] = set()
    for start in range(0, len(rows), BATCH):
        dirs |= _remove_blobs(box, rows[start:start + BATCH])
    _fsync_dirs(dirs)
    return len(rows)


def _truncate_wal(box: Box) -> bool:
    """Copy the WAL into the database and truncate it, so that page images holding shredded keys do not
    linger in catalog.db-wal. False when a reader elsewhere kept it from completing (retried next sweep)."""
    busy, _, _ = box.catalog.db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    if busy:
        log.warning("retention sweep: WAL checkpoint blocked by another connection; retried next sweep")
    return not busy


# Reports ----------------------------------------------------------------------------------------------

REPORT_COLUMNS = ("recording_id", "sha256", "start_time", "end_time", "ingested_at", "size", "category",
                  "term_days", "reason", "deleted_at", "blob_removed_at")


def deletion_report(catalog, start: str | None = None, end: str | None = None) -> list[dict]:
    """Deletion records (verwijderverslag) with deleted_at in [start, end), oldest first."""
    where, params = [], []
    if start:
        where.append("deleted_at >= ?")
        params.append(start)
    if end:
        where.append("deleted_at < ?")
        params.append(end)
    sql = f"SELECT {', '.join(REPORT_COLUMNS)} FROM deletions"
    if where:
        sql += " WHERE " + " AND ".join(where)
    return list(catalog.db.query(sql + " ORDER BY deleted_at, recording_id", params))


def status(box: Box) -> dict:
    """What the retention page and `kluis retention status` show."""
    policy = current_policy(box)
    now = box.clock()
    db = box.catalog.db
    stored = db.execute("SELECT COUNT(*) FROM recordings WHERE state = 'stored'").fetchone()[0]
    held = db.execute("SELECT COUNT(DISTINCT recording_id) FROM holds WHERE released_at IS NULL").fetchone()[0]
    where, params = _eligible_sql(policy, now)
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


# The scheduler ----------------------------------------------------------------------------------------

def run_sweep(data_dir: Path, clock=None) -> SweepResult | None:
    """One scheduled sweep on its own connection (the job runs in a worker thread)."""
    try:
        with (Box(data_dir, clock) if clock else Box(data_dir)) as box:
            return sweep(box)
    except Exception:  # a failed sweep must not stop the scheduler; the next one retries
        log.exception("retention sweep failed")
        return None


def run_checkpoint(data_dir: Path, clock=None, force: bool = False) -> dict | None:
    """Sign an audit checkpoint on its own connection."""
    try:
        with (Box(data_dir, clock) if clock else Box(data_dir)) as box:
            return audit.checkpoint(box.catalog, box.signing_key(), clock=box.clock, force=force)
    except Exception:
        log.exception("audit checkpoint failed")
        return None


def schedule_jobs(scheduler, box: Box) -> list:
    """Add the retention sweep (every `sweep_minutes`, and at start) and the audit checkpoint (every
    `checkpoint_minutes`, at start, and when the scheduler shuts down) to an APScheduler scheduler."""
    from apscheduler.events import EVENT_SCHEDULER_SHUTDOWN

    settings = config_mod.load(box.data_dir)
    sweep_minutes = settings.retention.sweep_minutes
    checkpoint_minutes = settings.audit.checkpoint_minutes
    data_dir, clock = box.data_dir, box.clock
    start = datetime.now(timezone.utc)  # the scheduler runs on real time, whatever the box's clock says
    jobs = [
        scheduler.add_job(run_sweep, "interval", minutes=sweep_minutes, args=[data_dir, clock],
                          id="retention_sweep", next_run_time=start, max_instances=1, coalesce=True,
                          replace_existing=True),
        scheduler.add_job(run_checkpoint, "interval", minutes=checkpoint_minutes, args=[data_dir, clock],
                          id="audit_checkpoint", next_run_time=start, max_instances=1, coalesce=True,
                          replace_existing=True),
    ]

    def on_shutdown(event) -> None:
        run_checkpoint(data_dir, clock)

    scheduler.add_listener(on_shutdown, EVENT_SCHEDULER_SHUTDOWN)
    return jobs

