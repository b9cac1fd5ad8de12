"""/cameras: discovered and paired cameras, pairing with the code on the camera, assignment to officers,
pre- and post-record settings (pushed to the camera at its next dock), alerts; and the live offload
progress that the overview shows (server-sent events)."""

from __future__ import annotations

import asyncio
import json

from aiohttp import web

from appliance import roles
from appliance.clock import parse_time
from appliance.dock import devices
from appliance.errors import KluisError, NotFound

from ..app import BOX, SESSION, gettext_for, needs, render

routes = web.RouteTableDef()
PROGRESS_INTERVAL_S = 1.0
PAIR_WAIT_S = 8.0


def offload_progress() -> dict[str, dict]:
    """The running service's offload progress per camera ({} when the UI runs without `kluis serve`)."""
    from appliance import service  # imported here: the service imports the web UI, not the other way round

    return service.offload_progress()


def _page(request: web.Request, status: int = 200, error: str | None = None, message: str | None = None,
          form: dict | None = None) -> web.Response:
    box = request.app[BOX]
    rows = devices.list_devices(box.catalog)
    for row in rows:
        row["assignments"] = devices.assignments(box.catalog, row["serial"])[-5:]
        row["last_docked"] = box.catalog.db.execute("SELECT max(docked_at) FROM docks WHERE serial = ?",
                                                    [row["serial"]]).fetchone()[0]
    return render(request, "cameras.html", status=status, cameras=rows, progress=offload_progress(),
                  alerts=devices.alerts(box.catalog, limit=20), error=error, message=message, form=form or {})


@routes.get("/cameras")
@needs(roles.CAMERAS_MANAGE)
async def camera_list(request: web.Request) -> web.StreamResponse:
    _ = gettext_for(request)
    message = {"paired": _("Camera paired."), "saved": _("Changes saved. The camera receives them at its next dock.")
               }.get(request.query.get("ok", ""))
    return _page(request, message=message)


@routes.post("/cameras/koppelen")
@needs(roles.CAMERAS_MANAGE)
async def pair(request: web.Request) -> web.StreamResponse:
    """Pair a camera with the code on its screen (the exchange is authenticated both ways with it)."""
    from appliance.dock.pairing import pair_camera

    _ = gettext_for(request)
    box = request.app[BOX]
    form = await request.post()
    serial = str(form.get("serial", "")).strip()[:64]
    code = str(form.get("code", "")).strip()[:32]
    officer = str(form.get("officer", "")).strip()[:64] or None
    kept = {"serial": serial, "officer": officer or ""}
    if not serial or not code:
        return _page(request, 400, error=_("Give the camera's serial number and the code on its screen."), form=kept)
    try:
        await pair_camera(box, serial, code, actor=request[SESSION].name, officer=officer, wait_s=PAIR_WAIT_S)
    except KluisError as exc:
        return _page(request, 400, error=_("Pairing failed: %(reason)s") % {"reason": exc}, form=kept)
    raise web.HTTPSeeOther("/cameras?ok=paired")


@routes.post("/cameras/{serial}/toewijzen")
@needs(roles.CAMERAS_MANAGE)
async def assign(request: web.Request) -> web.StreamResponse:
    """Personal camera of one officer, or pooled (per shift); pre- and post-record seconds."""
    _ = gettext_for(request)
    box = request.app[BOX]
    actor = request[SESSION].name
    serial = request.match_info["serial"]
    form = await request.post()
    mode = str(form.get("mode", ""))
    try:
        devices.get_device(box.catalog, serial)
        if mode == "personal":
            devices.set_personal(box, serial, str(form.get("officer", "")).strip(), actor=actor)
        elif mode == "pooled":
            devices.set_pooled(box, serial, actor=actor)
        if form.get("pre_record_s") is not None or form.get("post_record_s") is not None:
            try:
                pre, post = int(str(form.get("pre_record_s", ""))), int(str(form.get("post_record_s", "")))
            except ValueError:
                raise KluisError(_("Pre-record and post-record are whole seconds (0 to 600).")) from None
            devices.set_record_times(box, serial, pre, post, actor=actor)
    except NotFound:
        raise
    except KluisError as exc:
        return _page(request, 400, error=str(exc))
    raise web.HTTPSeeOther("/cameras?ok=saved")


@routes.post("/cameras/{serial}/dienst")
@needs(roles.CAMERAS_MANAGE)
async def shift(request: web.Request) -> web.StreamResponse:
    """A pooled camera goes to an officer for a shift."""
    _ = gettext_for(request)
    box = request.app[BOX]
    serial = request.match_info["serial"]
    form = await request.post()
    tz = box.config["box"]["timezone"]
    officer = str(form.get("officer", "")).strip()[:64]
    devices.get_device(box.catalog, serial)
    try:
        if not officer:
            raise KluisError(_("Give the officer's name."))
        starts = parse_time(str(form.get("starts", ""))[:40], tz)
        ends_text = str(form.get("ends", "")).strip()[:40]
        devices.assign_shift(box, serial, officer, starts, parse_time(ends_text, tz) if ends_text else None,
                             actor=request[SESSION].name)
    except KluisError as exc:
        return _page(request, 400, error=str(exc))
    raise web.HTTPSeeOther("/cameras?ok=saved")


@routes.get("/overzicht/voortgang")
@needs(roles.OVERVIEW)
async def progress_events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: the offload progress of every camera, once a second, while the page is open."""
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"})
    await response.prepare(request)
    last = None
    try:
        while True:
            snapshot = {serial: {k: p[k] for k in ("state", "recordings_total", "recordings_done", "bytes_total",
                                                   "bytes_done", "message")}
                        for serial, p in offload_progress().items()}
            if snapshot != last:
                await response.write(f"data: {json.dumps(snapshot, sort_keys=True)}\n\n".encode())
                last = snapshot
            else:
                await response.write(b": keep-alive\n\n")
            if request.query.get("once"):
                break
            await asyncio.sleep(PROGRESS_INTERVAL_S)
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    return response
