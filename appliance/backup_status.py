"""What a backup would restore and when the box last made one: the numbers `kluis backup`, `kluis backup
list`, the maintenance page and the "backup overdue" alert show (docs/backup.md, "Days of footage")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from . import audit
from .box import Box
from .clock import from_iso


def footage_days(carried: list[dict], deleted: set[str], now: str) -> dict:
    """What a backup would bring back if restored at `now`: its recordings less those deleted since (the
    journal) and those whose term has ended (a restore deletes them again). `days`: calendar days from the
    oldest such recording's end to the newest's, both counted; from/to: those dates."""
    ends = sorted(r["end"][:10] for r in carried if r.get("end") and r["id"] not in deleted
                  and not (r.get("until") and r["until"] <= now))
    if not ends:
        return {"recordings": 0, "days": 0, "from": None, "to": None}
    first, last = datetime.fromisoformat(ends[0]), datetime.fromisoformat(ends[-1])
    return {"recordings": len(ends), "days": (last - first).days + 1, "from": ends[0], "to": ends[-1]}


@dataclass
class LastBackup:
    """The newest backup the box made (for the "backup overdue" alert and the status)."""
    at: datetime
    target: str
    name: str
    recordings: int
    footage_days: int | None  # None: a backup of a Kluis that carried held recordings only


def last_backup(box: Box, target: str | None = None) -> LastBackup | None:
    """The box's newest successful backup (to `target`, if given), from its audit log; None if never."""
    for entry in audit.entries(box.catalog, action="backup", newest_first=True, limit=None if target else 1):
        details = entry["details"]
        if target is not None and details.get("target") != str(target):
            continue
        return LastBackup(from_iso(entry["time"]), details.get("target", ""), details.get("name", ""),
                          details.get("recordings", 0), details.get("footage_days"))
    return None
