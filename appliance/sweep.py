"""The retention sweep: it deletes every expired, unheld recording, and a recording ahead of its term
when a decision says so; and the schedule that runs it and the audit checkpoint.

Deleting is crypto-shredding first: in one transaction the wrapped file keys go (with `secure_delete`
on, the only copies) with the catalog row, and the deletion record and the audit entry are written.
Only then the blob goes, and the deletion record notes it. A sweep killed at any point leaves either
nothing done or deletion records whose blob removal is pending; the next sweep finishes them. Deleting
needs no private key, so it runs while the box is locked. What is due is retention.py's to say.
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from . import audit, audit_term, backup_targets, cases, keys, statistics
from . import config as config_mod
from .box import Box
from .clock import to_iso
from .errors import KluisError
from .retention import (DUE_SELECT, LAST_SWEEP_META, Policy, active_holds, current_policy, due, eligible_sql,
                        end_lapsed_holds, stored_recording, sync_policy)
from .durable import fsync_dir

log = logging.getLogger("kluis.retention")

BATCH = 1000  # recordings per delete transaction: bounded memory, few commits
UNLINK_THREADS = 8


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
    where, params = eligible_sql(policy, now)
    select = f"{DUE_SELECT} WHERE {where} ORDER BY r.end_time, r.id LIMIT {int(batch)}"
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
    db.executemany("DELETE FROM sync_outbox WHERE recording_id = ?", ids)  # its header: a file key re-wrapped
    db.executemany("DELETE FROM recording_categories WHERE recording_id = ?", ids)  # names who set them
    db.executemany("DELETE FROM recordings WHERE id = ?", ids)
    records = []
    extra = audit_fields or {}
    for row in rows:
        categories = sorted(row["categories"].split(",")) if row["categories"] else []
        category = ",".join(categories) or None  # the deletion record's one column: all of them
        term = policy.term_days(categories)
        why = reason or ("term expired after hold released" if row["hold_end"] else "term expired")
        records.append([row["id"], row["sha256"], row["start_time"], row["end_time"], row["ingested_at"],
                        row["size"], category, term, policy_text, why, at])
        audit.record(box.catalog, actor=actor, action="delete", recording_id=row["id"], clock=box.clock,
                     purpose=extra.get("purpose"), case_ref=extra.get("case_ref"), client=extra.get("client"),
                     details={"sha256": row["sha256"], "reason": why, "term_days": term,
                              "category": category, **extra.get("details", {})})
    db.executemany(
        "INSERT INTO deletions (recording_id, sha256, start_time, end_time, ingested_at, size, category, "
        "term_days, policy, reason, deleted_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", records)
    statistics.fold(box.catalog, [row["id"] for row in rows],
                    statistics.DELETED_EARLY if reason else statistics.DELETED_TERM)


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
            if not (h["until"] and h["until"] <= now)
            and (ignore_case_ref is None or not cases.same_ref(h["case_ref"], ignore_case_ref))]


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
        stored_recording(box, recording_id)
        if first is not None:
            first()
        holds = blocking_holds(box, recording_id)
        if holds:
            raise Held(recording_id, holds)
        rows = list(box.catalog.db.query(f"{DUE_SELECT} WHERE r.id = ?", [recording_id]))
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


# The schedule -----------------------------------------------------------------------------------------

def run_sweep(data_dir: Path, clock=None) -> SweepResult | None:
    """One scheduled sweep on its own connection (the job runs in a worker thread)."""
    try:
        with (Box(data_dir, clock) if clock else Box(data_dir)) as box:
            result = sweep(box)
    except Exception:  # a failed sweep must not stop the scheduler; the next one retries
        log.exception("retention sweep failed")
        return None
    # The deletions to every backup target it can reach, so that none keeps a copy past its term until
    # the next backup (appliance/backup_targets.py): cheap when every target has them all.
    backup_targets.push_after_sweep(data_dir, clock)
    return result


def run_checkpoint(data_dir: Path, clock=None, force: bool = False) -> dict | None:
    """Sign an audit checkpoint on its own connection."""
    try:
        with (Box(data_dir, clock) if clock else Box(data_dir)) as box:
            return audit.checkpoint(box.catalog, box.signing_key(), clock=box.clock, force=force)
    except keys.SigningKeyUnavailable:
        # Said once where the service starts, on the overview and by an alert: the entries wait unsigned.
        log.debug("audit checkpoint skipped: the signing key did not unseal")
        return None
    except Exception:
        log.exception("audit checkpoint failed")
        return None


def schedule_jobs(scheduler, box: Box) -> list:
    """Add the retention sweep (every `sweep_minutes`, and at start), the audit checkpoint (every
    `checkpoint_minutes`, at start, and when the scheduler shuts down) and the audit log's own term (pruning,
    once a day and at start: appliance/audit_term.py) to an APScheduler scheduler."""
    from apscheduler.events import EVENT_SCHEDULER_SHUTDOWN

    settings = config_mod.load(box.data_dir)  # as the file says now, not as the box was opened
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
        scheduler.add_job(audit_term.run_prune, "interval", hours=audit_term.PRUNE_HOURS, args=[data_dir, clock],
                          id="audit_prune", next_run_time=start, max_instances=1, coalesce=True,
                          replace_existing=True),
    ]

    def on_shutdown(event) -> None:
        run_checkpoint(data_dir, clock)

    scheduler.add_listener(on_shutdown, EVENT_SCHEDULER_SHUTDOWN)
    return jobs
