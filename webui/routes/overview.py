"""/ (overzicht): what needs attention today."""

from __future__ import annotations

import shutil
from datetime import timedelta

from aiohttp import web

from appliance import retention, roles
from appliance.clock import to_iso
from appliance.health import box_health

from ..app import BOX, SESSION, gettext_for, needs, render
from ..i18n import N_
from .cameras import offload_progress, usb_progress

routes = web.RouteTableDef()

DISK_ALERT = 0.90  # used fraction at which the overview warns
NOT_DOCKED_DAYS = 3  # a paired camera not seen this long is named on the overview


def storage(box) -> dict:
    disk = shutil.disk_usage(box.data_dir)
    stored, count = box.catalog.db.execute(
        "SELECT coalesce(sum(blob_size), 0), count(*) FROM recordings").fetchone()
    since = to_iso(box.clock() - timedelta(days=7))
    recent = box.catalog.db.execute(
        "SELECT coalesce(sum(blob_size), 0) FROM recordings WHERE ingested_at >= ?", [since]).fetchone()[0]
    per_day = recent / 7
    return {
        "stored": stored, "count": count, "free": disk.free, "total": disk.total,
        "used_fraction": (disk.total - disk.free) / disk.total if disk.total else 0,
        "per_day": per_day, "days_left": int(disk.free / per_day) if per_day else None,
    }


OFFLOAD_STATES = {
    "waiting": N_("waiting"), "checking": N_("checking"), "offloading": N_("offloading"), "done": N_("done"),
    "offline": N_("offline"), "error": N_("error"), "refused": N_("refused"), "storage_full": N_("storage full"),
    # the device's own status when nothing is being offloaded
    "discovered": N_("discovered"), "paired": N_("paired"), "unpaired": N_("unpaired"),
    "idle": N_("idle"), "found": N_("found, not registered"),  # a USB camera (issue 16) outside an ingest
}


@routes.get("/")
@needs(roles.OVERVIEW)
async def overview(request: web.Request) -> web.StreamResponse:
    _ = gettext_for(request)
    box = request.app[BOX]
    store = storage(box)
    alerts = []
    if store["used_fraction"] >= DISK_ALERT:
        alerts.append(("disk", None))
    cameras = list(box.catalog.db.query(
        "SELECT serial, model, proto, online, paired, last_seen, status FROM devices ORDER BY serial LIMIT 200"))
    stale = [c["serial"] for c in cameras if c["paired"] and c["last_seen"]
             and c["last_seen"] < to_iso(box.clock() - timedelta(days=NOT_DOCKED_DAYS))]
    if stale:
        alerts.append(("not_docked", ", ".join(stale)))
    device_alerts = []
    if roles.allowed(request[SESSION].role, roles.CAMERAS_MANAGE):
        device_alerts = list(box.catalog.db.query(
            "SELECT at, serial, address, kind, message FROM device_alerts ORDER BY at DESC LIMIT 10"))
    reviews = list(box.catalog.db.query(
        "SELECT recording_id, purpose, case_ref, review_at FROM holds WHERE released_at IS NULL "
        "AND review_at IS NOT NULL AND review_at <= ? ORDER BY review_at LIMIT 50",
        [to_iso(box.clock() + timedelta(days=7))]))
    return render(request, "overview.html", store=store, alerts=alerts, cameras=cameras,
                  device_alerts=device_alerts, reviews=reviews, progress=offload_progress(request),
                  usb_progress=usb_progress(box, _),  # USB cameras' ingest, from usb_sessions (issue 16)
                  state_labels={k: _(v) for k, v in OFFLOAD_STATES.items()}, deletions_due=deletions_due(box),
                  sync=sync_state(box), not_docked_days=NOT_DOCKED_DAYS,
                  health=await box_health(box, request[SESSION].role),  # clock, data at rest (issue 9)
                  requests_due=requests_due(request))  # requests near their deadline (issue 8)


def requests_due(request: web.Request) -> list[dict]:
    """Open requests of filmed people near or past their legal deadline, for whoever handles them."""
    from datetime import date

    from appliance import access_requests, purposes

    from ..app import LANG

    box = request.app[BOX]
    if not roles.allowed(request[SESSION].role, roles.REQUESTS_MANAGE):
        return []
    _ = gettext_for(request)
    rows = access_requests.due_soon(box)
    for row in rows:
        left = row["days_left"]
        row["kind_label"] = purposes.label(row["kind"], request[LANG])
        row["deadline_text"] = date.fromisoformat(row["deadline"]).strftime("%d-%m-%Y")
        row["left_text"] = (_("%(days)d days overdue") % {"days": -left} if left < 0 else
                            _("due today") if left == 0 else _("%(days)d days left") % {"days": left})
    return rows


def sync_state(box) -> dict | None:
    from sync import client  # the archive sync's own status (outbox, last pass)

    status = client.status(box)
    counts = status["counts"]
    return {"enrolled": status["enrolled"], "waiting": sum(n for k, n in counts.items() if k != "sent"),
            "sent": counts.get("sent", 0), "last_pass": status["last_pass"]}


def deletions_due(box, days: int = 7) -> int:
    """Recordings the retention sweep will delete within `days` (if nothing is held meanwhile)."""
    policy = retention.current_policy(box)
    # The sweep's own eligibility rule, evaluated at a later moment: the same answer the sweep will give.
    where, params = retention.eligible_sql(policy, box.clock() + timedelta(days=days))
    return box.catalog.db.execute(f"SELECT count(*) FROM recordings r WHERE {where}", params).fetchone()[0]
