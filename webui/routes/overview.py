"""/ (overzicht): what needs attention today."""

from __future__ import annotations

from datetime import date

from aiohttp import web

from appliance import access_requests, outbox, purposes, roles
from appliance import overview as box_overview
from appliance.health import box_health

from .. import labels
from ..app import BOX, LANG, SESSION, gettext_for, needs, render
from .cameras import offload_progress, usb_progress
from .verzoeken import days_left_text

routes = web.RouteTableDef()

DISK_ALERT = 0.90  # used fraction at which the overview warns




@routes.get("/")
@needs(roles.OVERVIEW)
async def overview(request: web.Request) -> web.StreamResponse:
    _ = gettext_for(request)
    box = request.app[BOX]
    store = box_overview.storage(box)
    alerts: list[tuple[str, str | None]] = []
    if store["used_fraction"] >= DISK_ALERT:
        alerts.append(("disk", None))
    cameras = box_overview.cameras(box)
    stale = box_overview.not_docked(box, cameras)
    if stale:
        alerts.append(("not_docked", ", ".join(stale)))
    device_alerts = (box_overview.device_alerts(box)
                     if roles.allowed(request[SESSION].role, roles.CAMERAS_MANAGE) else [])
    return render(request, "overview.html", store=store, alerts=alerts, cameras=cameras,
                  device_alerts=device_alerts, reviews=box_overview.reviews_due(box), progress=offload_progress(request),
                  usb_progress=usb_progress(box, _),  # USB cameras' ingest, from usb_sessions
                  state_labels={k: _(v) for k, v in labels.CAMERA_STATES.items()}, deletions_due=box_overview.deletions_due(box),
                  sync=sync_state(box), not_docked_days=box_overview.NOT_DOCKED_DAYS,
                  health=await box_health(box, request[SESSION].role),  # clock and data at rest
                  requests_due=requests_due(request))  # requests near their legal deadline


def requests_due(request: web.Request) -> list[dict]:
    """Open requests of filmed people near or past their legal deadline, for whoever handles them."""
    box = request.app[BOX]
    if not roles.allowed(request[SESSION].role, roles.REQUESTS_MANAGE):
        return []
    _ = gettext_for(request)
    rows = access_requests.due_soon(box)
    for row in rows:
        row["kind_label"] = purposes.label(row["kind"], request[LANG])
        row["deadline_text"] = date.fromisoformat(row["deadline"]).strftime("%d-%m-%Y")
        row["left_text"] = days_left_text(request, row["days_left"])
    return rows


def sync_state(box) -> dict:
    status = outbox.status(box)
    counts = status["counts"]
    return {"enrolled": status["enrolled"], "waiting": sum(n for k, n in counts.items() if k != "sent"),
            "sent": counts.get("sent", 0), "last_pass": status["last_pass"]}

