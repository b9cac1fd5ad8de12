"""A term for the audit log itself: entries older than `[audit] term_days` (730 by default) are pruned,
once a day from the service's schedule, under a signed pruning checkpoint (appliance/audit_prunes.py)
that says what went, so that `kluis audit verify`, the web UI's check, a backup's copy and the archive's
witness still hold afterwards.

Pruning removes a prefix of the log, entries 1..N (the chain goes on from entry N's hash), and never:
- an entry about a recording the box still holds (a row in `recordings`: within its term, held, or being
  deleted), nor any entry after it: a recording kept for years as evidence keeps its whole trail, every
  view, hold and handover, and with it the log from its first entry on (a prefix keeps the chain whole);
- an entry no signed checkpoint covers yet (a checkpoint is made first);
- past the last checkpoint the archive witnessed, while the box is enrolled at one: the box must still
  show the archive that entry (sync/client.py), or the archive would take the pruned log for a rewrite;
- while a log collector is set ([syslog] server), an entry it has not confirmed yet: its copy stays whole;
- a log that does not verify: pruning would destroy the evidence of what was changed.

The prune is on record before it happens: an `audit_prune` entry (range, count per action, the last
pruned entry's hash) in the same transaction as the checkpoint and the deletion. The deletion report
reads the `deletions` table, not the log, so its records and counts are the same after pruning; the
counts of the pruned entries per action stay in the pruning checkpoints (`kluis audit verify` sums them).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from nacl.signing import SigningKey

from . import audit, audit_prunes, log_collector, witness
from . import config as config_mod
from .box import Box
from .clock import to_iso
from .keys import SigningKeyUnavailable

log = logging.getLogger("kluis.audit")

PRUNE_HOURS = 24  # how often the service looks for entries past the term


@dataclass
class Plan:
    """What pruning would remove now: entries `first`..`last` (none when last < first), and what keeps
    the entries after `last` ({reason: the seq it stops before})."""
    term_days: int
    cutoff: str
    first: int
    last: int
    kept_by: dict[str, int] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return max(0, self.last - self.first + 1)

    def as_dict(self) -> dict:
        return {"term_days": self.term_days, "cutoff": self.cutoff, "first": self.first, "last": self.last,
                "count": self.count, "kept_by": self.kept_by}


def plan(box: Box) -> Plan:
    """The entries past the term that may go now (module docstring: what never goes)."""
    settings = config_mod.load(box.data_dir)  # as the file says now, like the retention policy
    term = settings.audit.term_days
    cutoff = to_iso(box.clock() - timedelta(days=term))
    db = box.catalog.db
    first, head = db.execute("SELECT MIN(seq), MAX(seq) FROM audit_log").fetchone()
    if first is None:
        return Plan(term, cutoff, 1, 0)
    limits: dict[str, int] = {}
    # By age: up to the first entry written at or after the cutoff (a later entry with an earlier time,
    # after a clock correction, waits for the ones before it).
    young = db.execute("SELECT MIN(seq) FROM audit_log WHERE time >= ?", [cutoff]).fetchone()[0]
    limits["term"] = young - 1 if young is not None else head
    # per recording its first entry (index audit_log_recording), so the cost follows the recordings, not the log
    held = db.execute("SELECT MIN((SELECT MIN(a.seq) FROM audit_log a WHERE a.recording_id = r.id)) "
                      "FROM recordings r").fetchone()[0]
    if held is not None:
        limits["recording_still_stored"] = held - 1
    checkpoint = audit.latest_checkpoint(box.catalog)
    limits["checkpoint"] = checkpoint["count"] if checkpoint else 0
    if witness.enrolled_archive(box.catalog) is not None:
        seen = witness.latest(box.catalog)
        limits["archive_witness"] = seen["count"] if seen else 0
    if settings.syslog.server:
        limits["log_collector"] = int(box.catalog.get_meta(log_collector.CURSOR_AUDIT, "0"))
    last = min(limits.values())
    kept_by = {why: seq + 1 for why, seq in limits.items() if seq == last and why != "term"}
    return Plan(term, cutoff, first, last, kept_by)


@dataclass
class Result:
    at: str
    plan: Plan
    pruned: int = 0
    checkpoint: dict | None = None   # the signed pruning checkpoint
    refused: str | None = None       # why nothing was pruned although entries were past the term

    def as_dict(self) -> dict:
        return {"at": self.at, **self.plan.as_dict(), "pruned": self.pruned, "refused": self.refused,
                "checkpoint": self.checkpoint}


def prune(box: Box, signing_key: SigningKey, *, dry_run: bool = False) -> Result:
    """Prune the entries past the term under a signed pruning checkpoint (module docstring)."""
    catalog = box.catalog
    if not dry_run:
        audit.checkpoint(catalog, signing_key, clock=box.clock)  # signs the backlog; covers what may go
    result = Result(to_iso(box.clock()), plan(box))
    if dry_run or not result.plan.count:
        return result
    report = witness.verify(catalog, signing_key.verify_key)
    if not report.ok:
        result.refused = f"the audit log does not verify: {report.problems[0]}"
        log.warning("audit log not pruned: %s", result.refused)
        return result
    with catalog.transaction():
        now = plan(box)  # again, inside the write lock: a recording stored or witnessed meanwhile
        first, last = now.first, min(now.last, result.plan.last)
        if last < first:
            return result
        db = catalog.db
        prev_hash = db.execute("SELECT prev_hash, time FROM audit_log WHERE seq = ?", [first]).fetchone()
        end = db.execute("SELECT hash, time FROM audit_log WHERE seq = ?", [last]).fetchone()
        actions = dict(db.execute("SELECT action, COUNT(*) FROM audit_log WHERE seq BETWEEN ? AND ? GROUP BY action",
                                  [first, last]).fetchall())
        body = audit_prunes.body(signer=bytes(signing_key.verify_key).hex(), first=first, last=last, actions=actions,
                                 prev_hash=prev_hash[0], last_hash=end[0], first_time=prev_hash[1], last_time=end[1],
                                 cutoff=now.cutoff, term_days=now.term_days, time=result.at)
        signed = audit_prunes.sign(signing_key, body)
        audit.record(catalog, actor="system", action="audit_prune", clock=box.clock,
                     details={"first": first, "last": last, "count": body["count"], "actions": body["actions"],
                              "last_hash": body["last_hash"], "term_days": now.term_days, "cutoff": now.cutoff})
        audit_prunes.store(catalog, signed)
        db.execute("DELETE FROM audit_log WHERE seq BETWEEN ? AND ?", [first, last])
    catalog.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the pruned rows' old pages out of catalog.db-wal
    result.pruned, result.checkpoint = body["count"], signed
    log.info("audit log: entries %d..%d pruned (older than %d days)", first, last, now.term_days)
    return result


def run_prune(data_dir: Path, clock=None) -> Result | None:
    """One scheduled prune on its own connection (the job runs in a worker thread)."""
    try:
        with (Box(data_dir, clock) if clock else Box(data_dir)) as box:
            try:
                key = box.signing_key()
            except SigningKeyUnavailable:  # said once at the start and alerted (appliance.keys): wait for it
                return None
            return prune(box, key)
    except Exception:  # a failed prune must not stop the scheduler; the next one retries
        log.exception("audit log pruning failed")
        return None
