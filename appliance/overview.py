"""What the overview page shows of the box: storage and its trend, the cameras and how long since each
docked, device alerts and the recordings the retention sweep deletes soon.
Read-only views over the catalog, for the web UI."""

from __future__ import annotations

import shutil
from datetime import timedelta

from . import retention
from .box import Box
from .clock import to_iso

NOT_DOCKED_DAYS = 3  # a paired camera not seen this long is named on the overview
CAMERAS_SHOWN = 200
ALERTS_SHOWN = 10
TREND_DAYS = 7  # the storage forecast averages what came in over this many days


def storage(box: Box) -> dict:
    """The disk, what the recordings take, how much came in per day lately and how many days are left."""
    disk = shutil.disk_usage(box.data_dir)
    db = box.catalog.db
    stored, count = db.execute("SELECT coalesce(sum(blob_size), 0), count(*) FROM recordings").fetchone()
    since = to_iso(box.clock() - timedelta(days=TREND_DAYS))
    recent = db.execute("SELECT coalesce(sum(blob_size), 0) FROM recordings WHERE ingested_at >= ?",
                        [since]).fetchone()[0]
    per_day = recent / TREND_DAYS
    return {
        "stored": stored, "count": count, "free": disk.free, "total": disk.total,
        "used_fraction": (disk.total - disk.free) / disk.total if disk.total else 0,
        "per_day": per_day, "days_left": int(disk.free / per_day) if per_day else None,
    }


def cameras(box: Box) -> list[dict]:
    """This box's cameras: the paired ones (a device found on the network but not paired is the keeper's to
    decide on, in the "Gevonden" list of /cameras: nobody else needs to see a stranger's camera)."""
    return list(box.catalog.db.query(
        "SELECT serial, model, proto, online, paired, last_seen, status FROM devices WHERE paired = 1 "
        "ORDER BY serial LIMIT ?",
        [CAMERAS_SHOWN]))


def not_docked(box: Box, rows: list[dict]) -> list[str]:
    """The paired cameras among `rows` (from cameras()) not seen for NOT_DOCKED_DAYS."""
    before = to_iso(box.clock() - timedelta(days=NOT_DOCKED_DAYS))
    return [c["serial"] for c in rows if c["paired"] and c["last_seen"] and c["last_seen"] < before]


def device_alerts(box: Box) -> list[dict]:
    return list(box.catalog.db.query(
        "SELECT at, serial, address, kind, message FROM device_alerts ORDER BY at DESC LIMIT ?", [ALERTS_SHOWN]))


def deletions_due(box: Box, days: int = 7) -> int:
    """Recordings the retention sweep will delete within `days` (if nothing is held meanwhile)."""
    return retention.count_due(box, box.clock() + timedelta(days=days))
