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

from ..app import BOX, SESSION, client_of, done_message, gettext_for, needs, render
from ..i18n import N_
from ..posted import posted

routes = web.RouteTableDef()

PERMISSION = roles.SETTINGS_MANAGE  # the keeper's storage work (roles.py: settings, storage)


async def _page(request: web.Request, status: int = 200, message: str | None = None, error: str | None = None,
                target: str | None = None) -> web.Response:
    box = request.app[BOX]
    history = maintenance.history(box)
    if target is None:
        target = history["backups"][0]["details"]["target"] if history["backups"] else ""
    return render(request, "onderhoud.html", status=status, message=message, error=error, target=target,
                  staged=maintenance.staged(box), **history)


@routes.get("/onderhoud")
@needs(PERMISSION)
async def page(request: web.Request) -> web.StreamResponse:
    return await _page(request, message=done_message(request, {
        "backup": N_("Backup made."), "staged": N_("The update was checked and is ready to be installed.")}))


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
        return await _page(request, 400, error=why, target=text)
    loop = asyncio.get_running_loop()
    try:
        await loop.run_in_executor(None, maintenance.run_backup, box.data_dir, box.clock, target, p.session.name)
    except (KluisError, OSError) as exc:
        return await _page(request, 400, error=_("The backup failed: %(why)s") % {"why": str(exc)}, target=text)
    raise web.HTTPSeeOther("/onderhoud?ok=backup")


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
            return await _page(request, 400, error=_("Choose an update file (.kluis-update) first."))
        try:
            await asyncio.get_running_loop().run_in_executor(
                None, maintenance.stage_update, box.data_dir, box.clock, incoming, name, request[SESSION].name,
                client_of(request))
        except KluisError as exc:
            return await _page(request, 400, error=_("This update was refused: %(why)s") % {"why": str(exc)})
    finally:
        incoming.unlink(missing_ok=True)
    raise web.HTTPSeeOther("/onderhoud?ok=staged")
