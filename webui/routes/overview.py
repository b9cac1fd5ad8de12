"""/ (overzicht): what needs attention today."""

from __future__ import annotations

from datetime import date

from aiohttp import web

from appliance import outbox, purposes, roles, todo
from appliance import overview as box_overview
from appliance.health import box_health

from .. import labels
from ..app import BOX, LANG, SESSION, gettext_for, needs, render
from .cameras import offload_progress, usb_progress
from .verzoeken import days_left_text

routes = web.RouteTableDef()

DISK_ALERT = 0.90  # used fraction at which the overview warns
# who is shown how old the audit log's last witnessed checkpoint is: those who answer for the log
WITNESS_ROLES = frozenset({roles.KEEPER, roles.PRIVACY_OFFICER, roles.AUDITOR})
WITNESS_STALE_HOURS = 48  # an enrolled box's log not witnessed for this long is shown as a problem



@routes.get("/")
@needs(roles.OVERVIEW)
async def overview(request: web.Request) -> web.StreamResponse:
    _ = gettext_for(request)
    box = request.app[BOX]
    store = box_overview.storage(box)
    alerts: list[tuple[str, str | None]] = []
    if store["used_fraction"] >= DISK_ALERT:
        alerts.append(("disk", None))
    cameras = box_overview.cameras(box)  # this box's (paired) cameras; found ones are the keeper's, on /cameras
    stale = box_overview.not_docked(box, cameras)
    if stale:
        alerts.append(("not_docked", ", ".join(stale)))
    device_alerts = (box_overview.device_alerts(box)
                     if roles.allowed(request[SESSION].role, roles.CAMERAS_MANAGE) else [])
    return render(request, "overview.html", store=store, alerts=alerts, cameras=cameras,
                  device_alerts=device_alerts, progress=offload_progress(request),
                  usb_progress=usb_progress(box, _),  # USB cameras' ingest, from usb_sessions
                  state_labels={k: _(v) for k, v in labels.CAMERA_STATES.items()}, deletions_due=box_overview.deletions_due(box),
                  sync=sync_state(box), show_witness=request[SESSION].role in WITNESS_ROLES,
                  not_docked_days=box_overview.NOT_DOCKED_DAYS,
                  health=await box_health(box, request[SESSION].role),  # clock and data at rest
                  tasks=tasks(request))


def tasks(request: web.Request) -> list[dict]:
    """The user's "Te doen" (appliance.todo), each task with its label and its entries' text translated."""
    _ = gettext_for(request)
    found = []
    for task in todo.for_user(request.app[BOX], request[SESSION].user):
        for entry in task.entries:
            if task.kind in (todo.REQUEST_OVERDUE, todo.REQUEST_DUE):
                entry["kind_label"] = purposes.label(entry["kind"], request[LANG])
                entry["deadline_text"] = date.fromisoformat(entry["deadline"]).strftime("%d-%m-%Y")
                entry["left_text"] = days_left_text(request, entry["days_left"])
            elif task.kind == todo.REVIEW_DUE:
                entry["purpose_label"] = purposes.label(entry["purpose"], request[LANG])
            elif task.kind == todo.CAMERAS_FOUND:
                entry["state_label"] = labels.camera_status(_, entry["status"])
        found.append({"kind": task.kind, "label": _(labels.TASK_LABELS[task.kind]), "count": task.count,
                      "href": task.href, "entries": task.entries})
    return found


def sync_state(box) -> dict:
    status = outbox.status(box)
    counts = status["counts"]
    return {"enrolled": status["enrolled"], "waiting": sum(n for k, n in counts.items() if k != "sent"),
            "sent": counts.get("sent", 0), "last_pass": status["last_pass"], "witness": status["witness"],
            "witness_stale": (status["witness"]["age_hours"] or 0) > WITNESS_STALE_HOURS}

