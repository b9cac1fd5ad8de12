"""What the keeper sees of the Axis systems: controllers, users, devices, recordings still arriving.
Read-only views over the axis_* tables, for `kluis axis list` and the web UI's Cameras page."""

from __future__ import annotations

import json

from ..box import Box
from . import accounts
from .destination import officer_name


def snapshot(box: Box) -> dict:
    db = box.catalog.db
    systems = accounts.list_accounts(box)
    for row in systems:
        row["encrypt"] = bool(row["encrypt"])
    users = list(db.query("SELECT account, uuid, name, user_id, active, updated_at FROM axis_users "
                          "ORDER BY account, name"))
    for row in users:
        row["officer"] = officer_name(row)
        row["active"] = bool(row["active"])
    devices = list(db.query("SELECT account, serial, name, model, active, updated_at, last_recording "
                            "FROM axis_devices ORDER BY account, serial"))
    for row in devices:
        row["active"] = bool(row["active"])
    transferring = list(db.query(
        "SELECT r.account, r.container, r.created_at, COUNT(o.name) AS clips FROM axis_recordings r "
        "LEFT JOIN axis_objects o ON o.account = r.account AND o.container = r.container AND o.kind = 'clip' "
        "WHERE r.status = 'transferring' GROUP BY r.account, r.container ORDER BY r.created_at"))
    return {"systems": systems, "users": users, "devices": devices, "transferring": transferring}


def recording_details(box: Box, recording_id: str) -> dict | None:
    """For a recording page: its Axis container (trigger reasons, location, GNSS track, bookmarks) and its
    parts, when the recording came from an Axis system; None otherwise."""
    db = box.catalog.db
    rows = list(db.query("SELECT account, container FROM axis_objects WHERE recording_id = ?", [recording_id]))
    if not rows:
        return None
    account, container = rows[0]["account"], rows[0]["container"]
    meta = json.loads(db.execute("SELECT meta FROM axis_recordings WHERE account = ? AND container = ?",
                                 [account, container]).fetchone()[0])
    parts = list(db.query("SELECT o.recording_id AS id, o.part, o.name, r.start_time, r.end_time "
                          "FROM axis_objects o JOIN recordings r ON r.id = o.recording_id "
                          "WHERE o.account = ? AND o.container = ? AND o.kind = 'clip' ORDER BY o.part",
                          [account, container]))
    bookmarks = []
    for row in db.query("SELECT meta, body FROM axis_objects WHERE account = ? AND container = ? "
                        "AND kind = 'bookmark' ORDER BY name", [account, container]):
        bm = json.loads(row["meta"])
        bookmarks.append({"category": bm.get("categoryname"), "tags": bm.get("tags"),
                          "start": bm.get("starttime"), "end": bm.get("endtime"),
                          "text": (row["body"] or b"").decode("utf-8", "replace")})
    track = db.execute("SELECT body FROM axis_objects WHERE account = ? AND container = ? AND kind = 'gnss' "
                       "AND meta NOT LIKE '%\"_encrypted\"%'", [account, container]).fetchone()
    from .spec import parse_location

    return {
        "container": container, "account": account,
        "trigger_on": meta.get("triggeron"), "trigger_off": meta.get("triggeroff"),
        "trigger_on_time": meta.get("triggerontimeiso"), "trigger_off_time": meta.get("triggerofftimeiso"),
        "location": parse_location(meta.get("triggeronlocation")),
        "location_off": parse_location(meta.get("triggerofflocation")),
        "model": meta.get("bwcmodel"), "firmware": meta.get("firmwareversion"),
        "controller": meta.get("scuserialnumber"), "time_zone": meta.get("timezone"),
        "parts": parts, "bookmarks": bookmarks,
        "track": json.loads(track[0]) if track and track[0] else [],
    }
