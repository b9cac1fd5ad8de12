"""What the keeper and the overview see of the USB cameras: plug-ins in progress, cameras found but not
registered, unknown volumes, files left on the cameras. Read-only views over the usb_* tables and the
devices table, for the CLI and the web UI."""

from __future__ import annotations

from datetime import datetime

from ..box import Box
from ..clock import to_iso

LIMIT = 200


def sessions(box: Box, since: datetime) -> list[dict]:
    """Each USB camera's last plug-in (usb_sessions), when it was updated at or after `since`."""
    return list(box.catalog.db.query(
        "SELECT serial, state, message, files_total, files_done, bytes_total, bytes_done, updated_at "
        "FROM usb_sessions WHERE updated_at >= ? ORDER BY serial LIMIT ?", [to_iso(since), LIMIT]))


def found_cameras(box: Box) -> list[dict]:
    """USB cameras that were plugged in and wait for the keeper to register them."""
    return list(box.catalog.db.query(
        "SELECT serial, model, first_seen, last_seen FROM devices WHERE proto = 'usb' AND paired = 0 "
        "ORDER BY first_seen, serial LIMIT ?", [LIMIT]))


def unknown_volumes(box: Box) -> list[dict]:
    """USB volumes no camera profile matched (sticks, phones): listed, never read."""
    return list(box.catalog.db.query(
        "SELECT identity, label, usb_vendor, usb_product, usb_serial, first_seen, last_seen FROM usb_volumes "
        "WHERE profile IS NULL ORDER BY last_seen DESC LIMIT ?", [LIMIT]))


def files_left(box: Box, serial: str | None = None) -> list[dict]:
    """Files Kluis did not take (refused: not video, unreadable); they stay on the camera."""
    sql = "SELECT serial, path, size, mtime, reason, seen_at FROM usb_files WHERE state = 'refused'"
    params: list = []
    if serial:
        sql += " AND serial = ?"
        params.append(serial)
    return list(box.catalog.db.query(sql + " ORDER BY serial, path", params))
