"""/onderhoud: the keeper's maintenance page: make a backup to a mounted USB disk or share and see the
last backups; upload a signed update bundle.

Backups are appliance.backup (the same run as `kluis backup`), on a worker thread with its own catalog
connection. An uploaded bundle is checked against the trusted release keys (appliance.update.verify) and,
when good, staged as DATA/update/staged.kluis-update; installing it needs root (it writes the service's
venv), so the appliance's updater runs `kluis update apply` on the staged file, not this web server.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from aiohttp import web

from appliance import audit, backup, roles, update
from appliance.box import Box
from appliance.errors import KluisError

from ..app import BOX, SESSION, client_of, gettext_for, needs, render

routes = web.RouteTableDef()

PERMISSION = roles.SETTINGS_MANAGE  # the keeper's storage work (roles.py: settings, storage)
STAGED = update.STAGED
HISTORY = 10


def _history(box: Box) -> dict:
    backups = audit.entries(box.catalog, action="backup", newest_first=True, limit=HISTORY)
    updates = [e for e in audit.entries(box.catalog, newest_first=True, limit=2000)
               if e["action"] in ("update", "update_refused", "update_rolled_back", "update_staged")][:HISTORY]
    return {"backups": backups, "updates": updates}


def _staged(box: Box) -> dict | None:
    path = box.data_dir / update.UPDATE_DIR / STAGED
    if not path.exists():
        return None
    try:
        found = update.verify(path, update.trusted_keys())
    except KluisError as exc:
        return {"error": str(exc)}
    return {"version": found.version, "schema": found.manifest["schema"], "notes": found.manifest.get("notes", "")}


async def _page(request: web.Request, status: int = 200, message: str | None = None, error: str | None = None,
                target: str | None = None) -> web.Response:
    box = request.app[BOX]
    history = _history(box)
    if target is None:
        target = history["backups"][0]["details"]["target"] if history["backups"] else ""
    return render(request, "onderhoud.html", status=status, message=message, error=error, target=target,
                  staged=_staged(box), **history)


@routes.get("/onderhoud")
@needs(PERMISSION)
async def page(request: web.Request) -> web.StreamResponse:
    _ = gettext_for(request)
    ok = request.query.get("ok", "")
    message = {"backup": _("Backup made."), "staged": _("The update was checked and is ready to be installed.")}.get(ok)
    return await _page(request, message=message)


def _check_target(data_dir: Path, text: str) -> Path:
    target = Path(text.strip())
    if not text.strip() or not target.is_absolute():
        raise ValueError("absolute")
    if not target.is_dir():
        raise ValueError("missing")
    resolved, data = target.resolve(), data_dir.resolve()
    if resolved == data or data in resolved.parents:
        raise ValueError("inside")
    return target


def _run_backup(data_dir: Path, clock, target: Path, actor: str) -> backup.RunResult:
    with Box(data_dir, clock) as box:
        return backup.run(box, target, actor=actor)


@routes.post("/onderhoud/backup")
@needs(PERMISSION)
async def make_backup(request: web.Request) -> web.StreamResponse:
    _ = gettext_for(request)
    box = request.app[BOX]
    form = await request.post()
    text = str(form.get("target", ""))
    try:
        target = _check_target(box.data_dir, text)
    except ValueError as exc:
        why = {"absolute": _("Give the full path of the directory, for example /media/usb."),
               "missing": _("That directory does not exist: is the USB disk plugged in and mounted?"),
               "inside": _("A backup cannot be written inside the box's own data directory.")}[str(exc)]
        return await _page(request, 400, error=why, target=text)
    loop = asyncio.get_running_loop()
    try:
        await loop.run_in_executor(None, _run_backup, box.data_dir, box.clock, target, request[SESSION].name)
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
    work = box.data_dir / update.UPDATE_DIR
    work.mkdir(mode=0o700, exist_ok=True)
    incoming = work / f"upload-{os.urandom(6).hex()}.part"
    try:
        try:
            name = await _receive(request, incoming)
        except KluisError:
            return await _page(request, 400, error=_("Choose an update file (.kluis-update) first."))
        try:
            trusted = update.trusted_keys()
            found = await asyncio.get_running_loop().run_in_executor(None, update.verify, incoming, trusted)
        except KluisError as exc:
            with box.catalog.transaction():
                audit.record(box.catalog, actor=request[SESSION].name, action="update_refused",
                             client=client_of(request), details={"bundle": name, "why": str(exc)})
            return await _page(request, 400, error=_("This update was refused: %(why)s") % {"why": str(exc)})
        os.replace(incoming, work / STAGED)
        with box.catalog.transaction():
            audit.record(box.catalog, actor=request[SESSION].name, action="update_staged", client=client_of(request),
                         details={"bundle": name, "version": found.version,
                                  "wheel_sha256": found.manifest["wheel_sha256"]})
    finally:
        incoming.unlink(missing_ok=True)
    raise web.HTTPSeeOther("/onderhoud?ok=staged")
