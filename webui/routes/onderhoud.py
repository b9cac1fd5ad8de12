"""/onderhoud: the keeper's maintenance page: make a backup to a mounted USB disk or share and see the
last backups; upload a signed update bundle. The work is appliance.maintenance, on worker threads.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from aiohttp import web

from appliance import maintenance, roles
from appliance.errors import KluisError

from ..app import BOX, SESSION, Refusal, client_of, domain_message, flash, gettext_for, needs, render
from ..posted import posted

routes = web.RouteTableDef()

PERMISSION = roles.SETTINGS_MANAGE  # the keeper's storage work (roles.py: settings, storage)


async def _page(request: web.Request, status: int = 200, error: str | None = None, target: str | None = None,
                field: str | None = None) -> web.Response:
    """`field`: the form field `error` is about (target, bundle): the message sits there, the top sums up."""
    box = request.app[BOX]
    history = maintenance.history(box)
    if target is None:
        target = history["backups"][0]["details"]["target"] if history["backups"] else ""
    field_errors = {field: error} if field and error else {}
    if field_errors:
        _ = gettext_for(request)
        error = Refusal(_("Nothing was done: see the marked field."))
    return render(request, "onderhoud.html", status=status, error=error, target=target, field_errors=field_errors,
                  staged=maintenance.staged(box), **history)


@routes.get("/onderhoud")
@needs(PERMISSION)
async def page(request: web.Request) -> web.StreamResponse:
    return await _page(request)


@routes.post("/onderhoud/backup")
@needs(PERMISSION)
async def make_backup(request: web.Request) -> web.StreamResponse:
    p = await posted(request)
    _, box, text = p.gettext, p.box, p.raw("target")
    try:
        target = maintenance.check_target(box.data_dir, text)
    except maintenance.BadTarget as exc:
        why = {"absolute": _("Give the full path of the directory, for example /media/usb."),
               "missing": _("That directory does not exist: is the USB disk plugged in and mounted?"),
               "inside": _("A backup cannot be written inside the box's own data directory.")}[exc.reason]
        return await _page(request, 400, error=why, target=text, field="target")
    loop = asyncio.get_running_loop()
    try:
        await loop.run_in_executor(None, maintenance.run_backup, box.data_dir, box.clock, target, p.session.name)
    except (KluisError, OSError) as exc:
        return await _page(request, 400, error=_refusal(request, _("The backup failed."), exc), target=text)
    flash(request, _("Backup made in %(target)s.") % {"target": text})
    raise web.HTTPSeeOther("/onderhoud")


def _refusal(request: web.Request, said: str, exc: Exception) -> Refusal:
    """`said` in the user's words, and the reason: in those words when a catalog knows it, else the domain's
    (or the system's) English message folded under "technical details"."""
    reason = domain_message(request, exc if isinstance(exc, KluisError) else KluisError(str(exc)))
    refusal = Refusal(said if reason.technical else f"{said} {reason}")
    refusal.technical = reason.technical
    return refusal


async def _receive(request: web.Request, dest: Path) -> str:
    """Save the uploaded bundle to `dest`; returns its file name. The form is parsed once (the CSRF check
    reads it), within the server's request size limit: a larger bundle goes by USB and `kluis update apply`."""
    field = (await request.post()).get("bundle")
    if not isinstance(field, web.FileField) or not field.filename:
        raise KluisError("no file")
    with open(dest, "wb") as f:
        while chunk := field.file.read(256 * 1024):
            f.write(chunk)
    return field.filename


@routes.post("/onderhoud/update")
@needs(PERMISSION)
async def upload_update(request: web.Request) -> web.StreamResponse:
    _ = gettext_for(request)
    box = request.app[BOX]
    incoming = maintenance.update_dir(box) / f"upload-{os.urandom(6).hex()}.part"
    try:
        try:
            name = await _receive(request, incoming)
        except KluisError:
            return await _page(request, 400, error=_("Choose an update file (.kluis-update) first."), field="bundle")
        try:
            await asyncio.get_running_loop().run_in_executor(
                None, maintenance.stage_update, box.data_dir, box.clock, incoming, name, request[SESSION].name,
                client_of(request))
        except KluisError as exc:
            return await _page(request, 400, error=_refusal(request, _("This update was refused; nothing was "
                                                                    "changed."), exc))
    finally:
        incoming.unlink(missing_ok=True)
    flash(request, _("The update was checked and is ready to be installed."))
    raise web.HTTPSeeOther("/onderhoud")
