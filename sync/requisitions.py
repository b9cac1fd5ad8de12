"""Requisitions (vorderingen) the archive passes on: which of the box's recordings one names, and the
"requisition" hold placed on each (audited by appliance.retention), which puts them in the outbox."""

from __future__ import annotations

import json

from appliance.box import Box
from appliance.outbox import queue


def match_requisition(box: Box, req: dict) -> list[str]:
    """The box's recordings a requisition names: by recording id, or by camera/officer and time overlap."""
    if req.get("recording_id"):
        filters = [("id = ?", req["recording_id"])]
    else:
        filters = [("camera_serial = ?", req.get("camera_serial")), ("officer = ?", req.get("officer"))]
        if not any(value for _, value in filters):
            return []  # a requisition naming nothing matches nothing, never everything
        filters += [("end_time > ?", req.get("start_time")), ("start_time < ?", req.get("end_time"))]
    where = " AND ".join(["state = 'stored'"] + [cond for cond, value in filters if value])
    params = [value for _, value in filters if value]
    sql = f"SELECT id FROM recordings WHERE {where}"
    matched = [r[0] for r in box.catalog.db.execute(sql + " ORDER BY start_time, id", params)]
    box.catalog.db.execute(
        "INSERT OR REPLACE INTO sync_requisitions (id, fetched_at, details, matched) VALUES (?, ?, ?, ?)",
        [int(req["id"]), box.now_iso(), json.dumps(req), json.dumps(matched)])
    return matched


def place_requisition_holds(box: Box, req: dict, matched: list[str]) -> None:
    """A "requisition" hold (vordering OM, audited by retention) on each match, and into the outbox."""
    from appliance import retention

    for recording_id in matched:
        held = [h for h in retention.active_holds(box.catalog, recording_id)
                if h["purpose"] == "requisition" and h["case_ref"] == req["case_ref"]]
        if not held:
            retention.add_hold(box, recording_id, "requisition", req["case_ref"], actor="system")
        queue(box, recording_id, f"requisition:{int(req['id'])}")
