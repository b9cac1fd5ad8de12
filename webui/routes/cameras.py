"""/cameras: discovered and paired cameras, pairing with the code on the camera, assignment to officers,
pre- and post-record settings (pushed to the camera at its next dock), alerts; and the live offload
progress that the overview shows (server-sent events).

Axis body-worn systems have a section of their own: the W800 system controllers, their users
and devices, recordings still arriving, and the connection file the keeper uploads into the Axis Body
Worn Manager. That file holds the W800's key, so making it asks the keeper's password again (as approving
a handover does: a wrong one counts towards the lock-out and is audited as at the login page).

USB mass-storage bodycams (appliance/usb/) are rows of `devices` with proto 'usb'. A camera that
was plugged in but not registered is listed for the keeper with a form that registers it (personal or
pooled; appliance.usb.ingest.register audits it as 'pair'); registered ones are listed with the dock
cameras, marked USB (their pre/post-record seconds cannot be pushed to them). The files Kluis left on a
camera and the USB volumes that matched no camera profile (sticks, phones) are listed, never registrable.
The overview shows each USB camera's ingest from its usb_sessions row, as it shows a dock camera's offload.
"""

from __future__ import annotations

import asyncio
import functools
import json
from datetime import timedelta

from aiohttp import web

from appliance import roles, todo, users
from appliance.axis import accounts as axis_accounts
from appliance.axis import overview as axis_overview
from appliance.axis import transport as axis_transport
from appliance.axis.spec import AxisError
from appliance.dock import devices
from appliance.errors import KluisError, NotFound, WrongSecret
from appliance.usb import ingest as usb_ingest
from appliance.usb import overview as usb_overview

from .. import labels
from ..formats import parse_moment
from ..app import (BOX, OFFLOAD_PROGRESS, SESSION, UserError, check_password, domain_message, flash, gettext_for,
                   needs, render)
from ..i18n import N_
from ..posted import posted

routes = web.RouteTableDef()
PROGRESS_INTERVAL_S = 1.0
PAIR_WAIT_S = 8.0


def offload_progress(request: web.Request) -> dict[str, dict]:
    """The running offload's progress per camera, as the process that serves the UI gave it to the app
    ({} when the UI runs without `kluis serve`)."""
    return request.app[OFFLOAD_PROGRESS]()


# USB cameras -----------------------------------------------------------------------------------------------

USB_RECENT = timedelta(hours=1)  # a usb_sessions row updated this recently is shown on the overview
# Why ingest left a file on the camera (appliance/usb/ingest.py speaks English): shown translated when known.
USB_REASONS = {N_("not a video Kluis can read")}


def usb_progress(box, _) -> dict[str, dict]:
    """Per USB camera: its last plug-in's ingest (usb_sessions), when updated within the last hour; with
    `text`, what the overview says about it in the user's language."""
    found = {}
    for row in usb_overview.sessions(box, box.clock() - USB_RECENT):
        state = row["state"]
        label = labels.label(_, labels.USB_STATES, state)
        if state == "done":
            text = label
        elif state == "reading":
            text = f"{label} ({row['files_done']}/{row['files_total']})"
        else:  # gone, error, storage_full: what went wrong, as the ingest said it
            text = f"{label}: {row['message']}" if row["message"] else label
        found[row["serial"]] = {**row, "message": row["message"] or "", "text": text}
    return found


def _usb_view(request: web.Request) -> dict:
    """The USB section of /cameras: found cameras to register, files left on cameras, unknown volumes."""
    box = request.app[BOX]
    _ = gettext_for(request)
    found = usb_overview.found_cameras(box)
    left = usb_overview.files_left(box)[:500]
    for row in left:
        reason = row["reason"] or ""
        # an unknown reason is the ingest's English: said in words, the English folded beside it
        row["reason_text"] = _(reason) if reason in USB_REASONS else _("refused by the box")
        row["reason_detail"] = None if reason in USB_REASONS else reason
    unknown = usb_overview.unknown_volumes(box)
    return {"found": found, "left": left, "unknown": unknown}


def _axis_view(request: web.Request) -> dict:
    """The Axis section: what overview.snapshot gives, each row with its site; and the address a new
    connection file names by default (None when [axis] listen is off and no [axis] urls are set)."""
    box = request.app[BOX]
    view = axis_overview.snapshot(box)
    sites = {row["account"]: row["site"] for row in view["systems"]}
    for key in ("users", "devices", "transferring"):
        for row in view[key]:
            row["site"] = sites.get(row["account"], row["account"])
    try:
        view["default_urls"] = axis_accounts.default_urls(box)
    except AxisError:
        view["default_urls"] = None
    return view


def _page(request: web.Request, status: int = 200, error: str | None = None, message: str | None = None,
          form: dict | None = None, axis_error: str | None = None, axis_form: dict | None = None,
          usb_error: str | None = None, usb_form: dict | None = None,
          field_errors: dict | None = None, target: str | None = None) -> web.Response:
    """`field_errors`: field id -> message, shown at the field; for a camera's own forms (`target`, its serial)
    and a found USB camera's form the id without the row's number (officer, pre, shift-from, usb-officer)."""
    box = request.app[BOX]
    session = request[SESSION]
    # this box's cameras are the paired ones; a device only found (on the network, or a USB camera plugged in
    # but not registered) is in the "Gevonden" list, with the way to pair or register it
    rows = devices.paired_devices(box.catalog)
    for row in rows:
        row["assignments"] = devices.assignments(box.catalog, row["serial"])[-5:]
        row["last_docked"] = devices.last_docked(box.catalog, row["serial"])
    alerts = devices.alerts(box.catalog, limit=20)
    unread = todo.unread_alert_ids(box, session.name)
    for alert in alerts:
        alert["unread"] = alert["id"] in unread
    return render(request, "cameras.html", status=status, cameras=rows, progress=offload_progress(request),
                  found=todo.found_devices(box), alerts=alerts, unread=len(unread),
                  alerts_up_to=max((a["id"] for a in alerts), default=0), error=error, message=message, form=form or {},
                  axis=_axis_view(request), axis_error=axis_error, axis_form=axis_form or {},
                  totp=bool(session.user.get("totp")), usb=_usb_view(request), usb_error=usb_error,
                  usb_form=usb_form or {}, field_errors=field_errors or {}, target=target)


@routes.get("/cameras")
@needs(roles.CAMERAS_MANAGE)
async def camera_list(request: web.Request) -> web.StreamResponse:
    # "Pair it" in the Gevonden list fills in the serial number (the code must still come from the camera)
    return _page(request, form={"serial": request.query.get("serial", "")[:64]})


@routes.post("/cameras/meldingen/gelezen")
@needs(roles.CAMERAS_MANAGE)
async def alerts_read(request: web.Request) -> web.StreamResponse:
    """The keeper has read the alerts shown (up to the newest on the page: a later one stays unread)."""
    p = await posted(request)
    try:
        up_to = int(p.text("up_to", 20))
    except ValueError:
        raise web.HTTPBadRequest(text="up_to") from None
    todo.mark_alerts_read(p.box, p.session.name, up_to)
    flash(request, p.gettext("Alerts marked as read."))
    raise web.HTTPSeeOther("/cameras#meldingen")


def _pair_field(message: str) -> str | None:
    """Which field of the pairing form a refusal of appliance.dock.pairing is about (its English words)."""
    if "code" in message:
        return "pair-code"
    if message.startswith("not a camera serial") or "not found on the network" in message or "paired" in message:
        return "pair-serial"
    return None


@routes.post("/cameras/koppelen")
@needs(roles.CAMERAS_MANAGE)
async def pair(request: web.Request) -> web.StreamResponse:
    """Pair a camera with the code on its screen (the exchange is authenticated both ways with it)."""
    from appliance.dock.pairing import pair_camera

    p = await posted(request)
    _, box = p.gettext, p.box
    serial, code, officer = p.text("serial", 64), p.text("code", 32), p.text("officer", 64) or None
    kept = {"serial": serial, "officer": officer or ""}
    missing = {**({} if serial else {"pair-serial": _("Give the camera's serial number.")}),
               **({} if code else {"pair-code": _("Give the code on the camera's screen.")})}
    if missing:
        return _page(request, 400, error=_("The camera was not paired: see the marked fields."), form=kept,
                     field_errors=missing)
    try:
        await pair_camera(box, serial, code, actor=p.session.name, officer=officer, wait_s=PAIR_WAIT_S)
    except KluisError as exc:
        refusal = domain_message(request, exc)  # the reason, in Dutch when it is known, else folded in English
        said = type(refusal)(_("Pairing failed.") if refusal.technical else
                             _("Pairing failed: %(reason)s") % {"reason": refusal})
        said.technical = refusal.technical
        field = _pair_field(str(exc))
        if field is None:
            return _page(request, 400, error=said, form=kept)
        summary = type(refusal)(_("The camera was not paired: see the marked fields."))
        summary.technical = refusal.technical
        return _page(request, 400, error=summary, form=kept, field_errors={field: str(said)})
    flash(request, _("Camera %(serial)s paired.") % {"serial": serial})
    raise web.HTTPSeeOther("/cameras")


@routes.post("/cameras/{serial}/toewijzen")
@needs(roles.CAMERAS_MANAGE)
async def assign(request: web.Request) -> web.StreamResponse:
    """Personal camera of one officer, or pooled (per shift); pre- and post-record seconds."""
    serial = request.match_info["serial"]
    p = await posted(request)
    box, actor, form, mode = p.box, p.session.name, p.form, p.raw("mode")
    fields: tuple[str, ...] = ()  # the fields of the step under way: where its refusal is said
    try:
        devices.get_device(box.catalog, serial)
        if mode == "personal":
            fields = ("officer",)
            devices.set_personal(box, serial, p.text("officer"), actor=actor)
        elif mode == "pooled":
            devices.set_pooled(box, serial, actor=actor)
        if form.get("pre_record_s") is not None or form.get("post_record_s") is not None:
            fields = ("pre", "post")
            try:
                pre, post = int(p.raw("pre_record_s")), int(p.raw("post_record_s"))
            except ValueError:
                raise UserError(p.gettext("Pre-record and post-record are whole seconds (0 to 600).")) from None
            devices.set_record_times(box, serial, pre, post, actor=actor)
    except NotFound:
        raise
    except KluisError as exc:
        refusal = domain_message(request, exc)
        return _page(request, 400, error=refusal, target=serial, field_errors={f: str(refusal) for f in fields})
    usb = devices.get_device(box.catalog, serial)["proto"] == "usb"
    flash(request, p.gettext("Changes to camera %(serial)s saved. A USB camera's own settings are not changed by the "
                             "box.") % {"serial": serial} if usb else
          p.gettext("Changes to camera %(serial)s saved. The camera receives them at its next dock.")
          % {"serial": serial})
    raise web.HTTPSeeOther("/cameras")


@routes.post("/cameras/usb/{serial}/registreren")
@needs(roles.CAMERAS_MANAGE)
async def usb_register(request: web.Request) -> web.StreamResponse:
    """The keeper registers a USB camera that was found when plugged in: personal (an officer) or pooled
    (per shift). Only then does the box read it (appliance.usb.ingest.register audits it as 'pair')."""
    serial = request.match_info["serial"][:64]
    p = await posted(request)
    _, box, mode, officer = p.gettext, p.box, p.raw("mode"), p.text("officer")
    kept = {"serial": serial, "mode": mode, "officer": officer[:64]}

    def refuse(message: str, field: str | None = None) -> web.Response:
        return _page(request, 400, usb_error=message, usb_form=kept,
                     field_errors={field: str(message)} if field else None)

    device = devices.find_device(box.catalog, serial)
    if device is None or device["proto"] != "usb":
        return refuse(_("No USB camera %(serial)s has been found: plug it in first.") % {"serial": serial})
    if device["paired"]:
        return refuse(_("USB camera %(serial)s is registered already.") % {"serial": serial})
    if mode == "personal":
        if not officer or len(officer) > 64:
            return refuse(_("Give the officer's name (at most 64 characters) for a personal camera."), "usb-officer")
    elif mode != "pooled":
        return refuse(_("Choose: the personal camera of one officer, or pooled (per shift)."))
    try:
        usb_ingest.register(box, serial, officer=officer if mode == "personal" else None, pooled=mode == "pooled",
                            actor=p.session.name)
    except KluisError as exc:
        refusal = domain_message(request, exc)  # the reason in Dutch when known, else folded in English
        said = type(refusal)(_("Registering failed: %(reason)s") % {"reason": refusal} if not refusal.technical
                             else _("Registering failed."))
        said.technical = refusal.technical
        return refuse(said)
    flash(request, _("USB camera %(serial)s registered. Its recordings are read the next time it is plugged in.")
          % {"serial": device["serial"]})
    raise web.HTTPSeeOther("/cameras#usb")


@routes.post("/cameras/{serial}/dienst")
@needs(roles.CAMERAS_MANAGE)
async def shift(request: web.Request) -> web.StreamResponse:
    """A pooled camera goes to an officer for a shift."""
    serial = request.match_info["serial"]
    p = await posted(request)
    _, box, officer = p.gettext, p.box, p.text("officer", 64)
    tz = box.settings.box.timezone
    devices.get_device(box.catalog, serial)
    field = None  # which of the shift's fields a refusal is about
    try:
        if not officer:
            field = "shift-officer"
            raise UserError(_("Give the officer's name."))
        moments = []
        for key, at in (("starts", "shift-from"), ("ends", "shift-to")):
            text = p.text(key, 40)
            try:
                moments.append(parse_moment(text, tz) if text else None)
            except KluisError:
                field = at
                raise UserError(_("Not a date and time: %(value)s (for example 20-11-2026 14:30)")
                                 % {"value": text}) from None
        if moments[0] is None:
            field = "shift-from"
            raise UserError(_("Give the start of the shift."))
        devices.assign_shift(box, serial, officer, moments[0], moments[1], actor=p.session.name)
    except KluisError as exc:
        refusal = domain_message(request, exc)
        if field is None and str(exc) == "a shift ends after it starts":
            field = "shift-to"
        return _page(request, 400, error=refusal, target=serial, field_errors={field: str(refusal)} if field else None)
    flash(request, _("Camera %(serial)s assigned to %(officer)s for the shift.")
          % {"serial": serial, "officer": officer})
    raise web.HTTPSeeOther("/cameras")


SITE_MAX_BYTES = 64  # SiteName in the connection file
URL_MAX = 512


@routes.post("/cameras/axis/verbindingsbestand")
@needs(roles.CAMERAS_MANAGE)
async def axis_connection_file(request: web.Request) -> web.StreamResponse:
    """Make (or renew) a W800's account and hand its connection file over as a download. The keeper's
    password again first: the file holds the key with which a W800 delivers footage to this box."""
    p = await posted(request)
    _, box, session, client = p.gettext, p.box, p.session, p.client
    site, url, encrypt = p.text("site", 1000), p.text("url", 1000), p.raw("encrypt") == "yes"
    password, code = p.raw("password"), p.text("code", 12) or None
    kept = {"site": site[:200], "encrypt": encrypt, "url": url[:URL_MAX]}

    def refuse(status: int, message: str, field: str | None = None) -> web.Response:
        return _page(request, status, axis_error=message, axis_form=kept,
                     field_errors={field: message} if field else None)

    if not site or len(site.encode()) > SITE_MAX_BYTES:
        return refuse(400, _("Give the site name: 1 to 64 bytes (about 64 letters)."), "axis-site")
    if url:
        if not url.startswith(("https://", "http://")) or len(url) > URL_MAX or any(c.isspace() for c in url):
            return refuse(400, _("The address is of the form https://HOST:PORT/auth/v1.0."), "axis-url")
        urls = [url]
    else:
        try:
            urls = axis_accounts.default_urls(box)
        except AxisError:
            return refuse(400, _("The Axis connection is off on this box ([axis] listen in kluis.toml): "
                                 "give the address at which the W800 reaches the box."), "axis-url")
    existing = axis_accounts.get(box, axis_accounts.account_name(site))
    if existing and existing["encrypt"] and not encrypt:
        return refuse(400, _("This W800 was connected with encryption; a new connection file must keep it on."))
    if not password:
        return refuse(400, _("Give your password: the file holds a secret."), "axis-password")
    # The password again: users.login counts failures and locks the account, as at the login page.
    loop = asyncio.get_running_loop()
    try:
        await check_password(box, session.name, password, code, client)
    except users.LockedOut:
        return refuse(403, _("Too many wrong passwords: this account is locked for a while. "
                             "Try again later or ask the keeper."))
    except WrongSecret:
        return refuse(400, _("Wrong password or code."), "axis-password")
    if encrypt:  # the box's RSA transport key, made off the event loop the first time (it touches no catalog)
        await loop.run_in_executor(None, functools.partial(axis_transport.transport_key, box.data_dir, create=True))
    try:
        connection = axis_accounts.connection_file(box, site, urls, encrypt=encrypt, actor=session.name,
                                                   client=client)
    except AxisError as exc:
        return refuse(400, _("The connection file could not be made: %(reason)s") % {"reason": str(exc)})
    return web.Response(text=connection.text(), content_type="application/json", charset="utf-8", headers={
        "Content-Disposition": f'attachment; filename="kluis-{connection.account}.json"',
        "Cache-Control": "no-store",
    })


@routes.get("/overzicht/voortgang")
@needs(roles.OVERVIEW)
async def progress_events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: the offload progress of every camera, once a second, while the page is open; a USB
    camera's ingest in the same shape (its files as recordings) with `text`, what the overview shows for it."""
    _ = gettext_for(request)
    box = request.app[BOX]
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"})
    await response.prepare(request)
    last = None
    try:
        while True:
            snapshot = {serial: {k: p[k] for k in ("state", "recordings_total", "recordings_done", "bytes_total",
                                                   "bytes_done", "message")}
                        for serial, p in offload_progress(request).items()}
            for serial, u in usb_progress(box, _).items():
                snapshot.setdefault(serial, {
                    "state": u["state"], "recordings_total": u["files_total"], "recordings_done": u["files_done"],
                    "bytes_total": u["bytes_total"], "bytes_done": u["bytes_done"], "message": u["message"],
                    "text": u["text"]})
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
