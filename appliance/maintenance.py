"""The keeper's maintenance from the web UI: a backup to a mounted disk or share, staging an uploaded
update bundle for the appliance's updater, and the recent history of both (from the audit log).

A backup is appliance.backup (the same run as `kluis backup`) on a box of its own, so it can run on a
worker thread with its own catalog connection. An uploaded bundle is checked against the trusted release
keys (appliance.update.verify) and, when good, staged as DATA/update/staged.kluis-update; installing it
needs root (it writes the service's venv), so the updater runs `kluis update apply` on the staged file.
"""

from __future__ import annotations

import os
from pathlib import Path

from . import audit, backup, update
from .box import Box
from .errors import KluisError

HISTORY = 10
UPDATE_ACTIONS = ("update", "update_refused", "update_rolled_back", "update_staged")


class BadTarget(KluisError):
    """A backup directory that cannot be used; `reason` is 'absolute' (not a full path), 'missing' (no such
    directory: not mounted?) or 'inside' (within the box's own data directory)."""

    def __init__(self, reason: str):
        super().__init__(f"unusable backup directory ({reason})")
        self.reason = reason


def history(box: Box) -> dict:
    """The last backups and update steps, newest first; `backup_failed`: the newest failed backup run when
    no backup succeeded after it (the page says so: a backup that fails every night must not go unseen)."""
    backups = audit.entries(box.catalog, action="backup", newest_first=True, limit=HISTORY)
    failed = audit.entries(box.catalog, action="backup_failed", newest_first=True, limit=1)
    if failed and backups and backups[0]["seq"] > failed[0]["seq"]:
        failed = []
    updates = [e for e in audit.entries(box.catalog, newest_first=True, limit=2000)
               if e["action"] in UPDATE_ACTIONS][:HISTORY]
    return {"backups": backups, "updates": updates, "backup_failed": failed[0] if failed else None}


def check_target(data_dir: Path, text: str) -> Path:
    """The directory a backup is written to, as the keeper typed it."""
    target = Path(text.strip())
    if not text.strip() or not target.is_absolute():
        raise BadTarget("absolute")
    if not target.is_dir():
        raise BadTarget("missing")
    resolved, data = target.resolve(), Path(data_dir).resolve()
    if resolved == data or data in resolved.parents:
        raise BadTarget("inside")
    return target


def run_backup(data_dir: Path, clock, target: Path, actor: str) -> backup.RunResult:
    """A backup on a box (and catalog connection) of its own: safe on a worker thread."""
    with Box(data_dir, clock) as box:
        return backup.run(box, target, actor=actor)


def update_dir(box: Box) -> Path:
    """Where uploads are received and the checked bundle is staged (made private on first use)."""
    work = box.data_dir / update.UPDATE_DIR
    work.mkdir(mode=0o700, exist_ok=True)
    return work


def staged(box: Box) -> dict | None:
    """The bundle waiting for the updater, as its signature check reads it now; None when there is none."""
    path = box.data_dir / update.UPDATE_DIR / update.STAGED
    if not path.exists():
        return None
    try:
        found = update.verify(path, update.trusted_keys())
    except KluisError as exc:
        return {"error": str(exc)}
    return {"version": found.version, "schema": found.manifest["schema"], "notes": found.manifest.get("notes", "")}


def stage_update(data_dir: Path, clock, incoming: Path, name: str, actor: str, client: str | None) -> update.Bundle:
    """Check an uploaded bundle and stage it for the updater; both outcomes are on record. KluisError (after
    recording the refusal) when the bundle is not signed by a trusted release key or is damaged. On a box
    (and catalog connection) of its own, as it hashes the wheel: run it on a worker thread."""
    with Box(data_dir, clock) as box:
        try:
            found = update.verify(incoming, update.trusted_keys())
        except KluisError as exc:
            with box.catalog.transaction():
                audit.record(box.catalog, actor=actor, action="update_refused", client=client,
                             details={"bundle": name, "why": str(exc)})
            raise
        os.replace(incoming, update_dir(box) / update.STAGED)
        with box.catalog.transaction():
            audit.record(box.catalog, actor=actor, action="update_staged", client=client,
                         details={"bundle": name, "version": found.version,
                                  "wheel_sha256": found.manifest["wheel_sha256"]})
        return found
