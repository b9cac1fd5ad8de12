"""The backup targets the keeper configured ([backup] in kluis.toml; docs/backup.md, "Configured targets"):
the KLUIS-BACKUP disk (a folder, backed up to when it is there) and a network target over SFTP.

`kluis backup` without --to backs up to each of them in turn, each reported on its own: a disk that is
not plugged in is skipped, a network target that fails is audited (`backup_failed`, appliance/backup.py)
and alerted (appliance/alerts.py, one alert per episode) and does not keep the disk's backup from being
made.

Deletions reach every target promptly (`push`): after a sweep that deleted something, each target the
process can reach gets a journal entry with the deletions it lacks, and the copies of those recordings
in its footage store are removed (header overwritten first), without waiting for the next backup. The
backups there still list them: verify and restore read the journal and take a recording deleted since
as gone, not as damage (appliance/backup.py). A target not reachable then (disk unplugged, server away,
or `kluis serve`'s sandbox, which cannot mount a share) is marked pending and gets them at the next
push or backup that reaches it.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import datetime, time as dtime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from . import audit, backup, backup_sftp
from .backup_journal import NOT_RESTORED, append_journal, read_journal
from .backup_status import last_backup
from .backup_store import Store
from .box import Box
from .clock import from_iso
from .errors import KluisError

log = logging.getLogger("kluis.backup")

DISK, NETWORK = "disk", "network"
RETRY_AFTER = timedelta(hours=1)  # a failed network backup that is due is tried again after this
PUSHED_META = "backup_pushed:"  # + target: how many deletion records of the box that target's journal holds


@dataclass(frozen=True)
class Target:
    kind: str   # DISK or NETWORK
    where: str  # the folder, or the sftp:// URL

    def __str__(self) -> str:
        return self.where


def configured(box: Box, only: str | None = None) -> list[Target]:
    """The configured targets (the disk first), or those of one kind."""
    cfg = box.settings.backup
    found = [Target(DISK, str(Path(cfg.disk)))] if cfg.disk else []  # as backup.run labels it
    found += [Target(NETWORK, cfg.network)] if cfg.network else []
    return [t for t in found if only in (None, t.kind)]


def absent(target: Target) -> str | None:
    """Why a target cannot be reached from this process without trying (None: try it)."""
    if target.kind == DISK:
        return None if Path(target.where).is_dir() else "the backup disk is not plugged in"
    return None if backup_sftp.can_mount() else "this process cannot mount a network share (no sshfs or /dev/fuse)"


@dataclass
class Outcome:
    target: Target
    result: backup.RunResult | None = None
    error: str | None = None    # the run failed (audited as backup_failed)
    skipped: str | None = None  # not tried: why

    @property
    def ok(self) -> bool:
        return self.result is not None


def _deletion_count(box: Box) -> int:
    return box.catalog.db.execute("SELECT count(*) FROM deletions WHERE reason NOT IN (?, ?)",
                                  list(NOT_RESTORED)).fetchone()[0]


def _mark_pushed(box: Box, target: Target, count: int) -> None:
    box.catalog.set_meta(PUSHED_META + target.where, str(count))


def pending(box: Box, target: Target) -> bool:
    """Whether the box has deletions this target may not have heard of yet."""
    return _deletion_count(box) > int(box.catalog.get_meta(PUSHED_META + target.where, "0"))


def run_all(box: Box, only: str | None = None, actor: str = "system", keep: int | None = None) -> list[Outcome]:
    """One backup to each configured target that is there; a failing one does not stop the next."""
    outcomes = []
    keep = keep or box.settings.backup.keep
    for target in configured(box, only):
        outcome = Outcome(target)
        if target.kind == DISK and (why := absent(target)):
            outcome.skipped = why
            log.info("backup to %s skipped: %s", target, why)
        else:
            count = _deletion_count(box)
            try:
                outcome.result = backup_sftp.run_to(box, target.where, keep=keep, actor=actor)
                _mark_pushed(box, target, count)  # the run's journal entry holds them
            except KluisError as exc:  # audited and logged by run_to
                outcome.error = str(exc)
        outcomes.append(outcome)
    return outcomes


def network_due(box: Box) -> bool:
    """Whether today's network backup is due: [backup] network_time (local) has passed today and the
    last successful backup to the network target is from before it."""
    cfg = box.settings.backup
    if not cfg.network:
        return False
    zone = ZoneInfo(box.settings.box.timezone)
    local = box.clock().astimezone(zone)
    moment = datetime.combine(local.date(), dtime.fromisoformat(cfg.network_time), zone)
    if moment > local:
        moment -= timedelta(days=1)
    last = last_backup(box, target=cfg.network)
    if last is not None and last.at >= moment:
        return False
    # A failed attempt is tried again after RETRY_AFTER, not at every tick of the timer: a server away
    # for a day is 24 backup_failed entries (and one alert), not 96.
    failed = next((e for e in audit.entries(box.catalog, action="backup_failed", newest_first=True, limit=50)
                   if e["details"].get("target") == cfg.network), None)
    return failed is None or from_iso(failed["time"]) <= box.clock() - RETRY_AFTER


# Deletions to every target ----------------------------------------------------------------------------

@dataclass
class Pushed:
    target: Target
    journal_seq: int | None = None  # the entry appended; None: the journal had every deletion already
    deletions: int = 0
    removed: int = 0                # stored copies of deleted recordings removed
    error: str | None = None
    skipped: str | None = None


def push_to(box: Box, directory: Path) -> tuple[int | None, int, int]:
    """Under the target's lock: a journal entry with the deletions it lacks (none if it has them all), and
    the stored copies of every recording its journal says was deleted removed. (seq or None, deletions
    appended, copies removed)."""
    directory = Path(directory)
    with backup.locked(directory):
        journal = read_journal(directory)
        known = journal.recorded_ids()
        rows = box.catalog.db.execute("SELECT recording_id FROM deletions WHERE reason NOT IN (?, ?)",
                                      list(NOT_RESTORED)).fetchall()
        entry = None
        if any(r[0] not in known for r in rows):
            entry = append_journal(box, directory)
        # The new entry's recordings; with none (the journal had them: a push cut short before it removed
        # the copies, or `kluis backup push`), every deleted one the store may still hold.
        gone = {d["sha256"] for e in ([entry] if entry else journal.entries) for d in e["deletions"]}
        removed = Store(directory).remove(gone)
    return (entry["seq"] if entry else None), (len(entry["deletions"]) if entry else 0), removed


def push(box: Box, only: str | None = None, force: bool = False) -> list[Pushed]:
    """The box's deletions to each configured target it can reach now and that has not heard of all of
    them (`force`: each reachable one). Audited (`backup_push`) when a target got something; a failure is
    one log line and leaves the target pending for the next push or backup."""
    done = []
    for target in configured(box, only):
        result = Pushed(target)
        done.append(result)
        if not force and not pending(box, target):
            continue
        if why := absent(target):
            result.skipped = why
            continue
        count = _deletion_count(box)
        try:
            if target.kind == NETWORK:
                with backup_sftp.mounted(target.where, box) as mountpoint:
                    seq, n, removed = push_to(box, mountpoint)
            else:
                seq, n, removed = push_to(box, Path(target.where))
        except (KluisError, OSError) as exc:
            result.error = str(exc) if isinstance(exc, KluisError) else f"{exc.strerror or exc}"
            log.warning("deletions not yet on backup target %s: %s (tried again after the next sweep)",
                        target, result.error)
            continue
        result.journal_seq, result.deletions, result.removed = seq, n, removed
        _mark_pushed(box, target, count)
        if seq is not None or removed:
            with box.catalog.transaction():
                audit.record(box.catalog, actor="system", action="backup_push", clock=box.clock,
                                    details={"target": target.where, "journal_seq": seq, "deletions": n,
                                             "footage_removed": removed})
            log.info("deletions pushed to backup target %s: journal entry %s, %d deletion(s), %d stored "
                     "copy(ies) removed", target, seq, n, removed)
    return done


def push_after_sweep(data_dir: Path, clock=None) -> list[Pushed]:
    """The scheduled sweep's follow-up, on its own connection: never raises (the sweep's job goes on)."""
    try:
        with (Box(data_dir, clock) if clock else Box(data_dir)) as box:
            return push(box)
    except Exception:  # a failed push must not stop the scheduler; the next sweep retries
        log.exception("pushing deletions to the backup targets failed")
        return []


# The keeper's test --------------------------------------------------------------------------------------

def test_network(box: Box, actor: str, client: str | None = None) -> str | None:
    """Mount the configured network target, check it can be written and holds no other box's backups, and
    unmount; audited as backup_test. None when it works, else why not."""
    url = box.settings.backup.network
    if not url:
        return "off"
    why = None
    try:
        with backup_sftp.mounted(url, box) as mountpoint:
            probe = mountpoint / f".kluis-test-{os.getpid()}"
            probe.write_bytes(b"kluis\n")
            probe.unlink()
            journal = read_journal(mountpoint)
            mine = box.catalog.get_meta("signing_public_key")
            if journal.signer is not None and journal.signer != mine:
                why = "the folder holds the backups of another box; use another folder"
    except KluisError as exc:
        why = str(exc)
    except OSError as exc:
        why = f"the folder cannot be written: {exc.strerror or exc}"
    with box.catalog.transaction():
        audit.record(box.catalog, actor=actor, action="backup_test", client=client, clock=box.clock,
                            details={"target": url, "result": why or "ok"})
    return why
