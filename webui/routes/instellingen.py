"""/instellingen: retention policy, archive address, sync window and bandwidth limit, idle logout, the Axis
content destination (on/off and its address, switched in the running service), who gets alerts by e-mail and
the log collector (with a test), the backup targets (the disk's folder, the network target with its pinned
host key, the box's login key and a connection test); the sync state, the open alerts, and re-wrapping
queued recordings for the archive with the keeper's unlocked key."""

from __future__ import annotations

import asyncio

from aiohttp import web

from appliance import alerts, backup_sftp, backup_targets, config, config_change, outbox, retention, roles
from appliance.axis.server import CannotListen
from appliance.health import box_health

from .. import settings
from ..app import AXIS_SWITCH, BOX, SESSION, Refusal, client_of, flash, gettext_for, needs, ngettext_for, render

routes = web.RouteTableDef()


async def _page(request: web.Request, status: int = 200, errors: dict | None = None, error: str | None = None,
                values: dict | None = None) -> web.Response:
    box = request.app[BOX]
    shown = {**settings.current(box), **(values or {})}
    return render(request, "instellingen.html", status=status, values=shown, errors=errors or {},
                  limits=settings.limits(), totp_roles=settings.ROLES, axis_live=request.app[AXIS_SWITCH] is not None,
                  error=error, policy=retention.current_policy(box), sync=outbox.status(box),
                  health=await box_health(box, request[SESSION].role),  # clock and data at rest
                  open_alerts=alerts.open_episodes(box), alert_titles={k: v.title for k, v in alerts.KINDS.items()},
                  backup_key=backup_sftp.public_login_key(box))


@routes.get("/instellingen")
@needs(roles.SETTINGS_MANAGE)
async def settings_page(request: web.Request) -> web.StreamResponse:
    return await _page(request)


@routes.post("/instellingen")
@needs(roles.SETTINGS_MANAGE)
async def save(request: web.Request) -> web.StreamResponse:
    box = request.app[BOX]
    form = {k: str(v) for k, v in (await request.post()).items()}
    values, errors = settings.parse(box, form)
    if errors:
        shown: dict[str, object] = {k: form[k] for k in errors}
        shown.update({k: v for k, v in values.items() if k == settings.TOTP_REQUIRED})
        if "axis.listen" in errors:
            shown["axis.on"] = True  # the address is checked only with the switch on
        return await _page(request, 400, errors=errors, values=shown)
    try:
        changed, live = await config_change.change_settings_live(box, request[SESSION].name, values,
                                                                 client=client_of(request),
                                                                 axis_switch=request.app[AXIS_SWITCH])
    except CannotListen as exc:  # the running destination stays as it was, nothing was written
        return await _page(request, 400, errors={"axis.listen": settings.cannot_listen(exc.reason)},
                           values={"axis.listen": form.get("axis.listen", ""), "axis.on": True})
    except config.ConfigError as exc:  # kluis.toml itself was edited into a state that does not load
        _ = gettext_for(request)
        refusal = Refusal(_("The settings file of the box does not load; nothing was saved."))
        refusal.technical = str(exc)
        return await _page(request, 400, error=refusal)
    _ = gettext_for(request)
    flash(request, _("Settings saved.") if changed else _("Nothing changed."))
    if "axis.listen" in changed:
        listen = changed["axis.listen"][1]
        if not live:
            flash(request, _("The Axis content destination changes when the service restarts "
                             "(systemctl restart kluis)."))
        elif listen:
            flash(request, _("The Axis content destination now listens on %(address)s. Give the W800s a new "
                             "connection file if its address changed.") % {"address": listen})
        else:
            flash(request, _("The Axis content destination is off: W800s can no longer deliver recordings "
                             "to this box."))
    raise web.HTTPSeeOther("/instellingen")


@routes.post("/instellingen/herverpakken")
@needs(roles.SETTINGS_MANAGE)
async def rewrap(request: web.Request) -> web.StreamResponse:
    """Recordings sealed before the box enrolled with the archive get a key for the archive too; that needs
    the box's private key, which only a logged-in user's session holds."""
    _ = gettext_for(request)
    session = request[SESSION]
    if session.identity is None:
        return await _page(request, 400, error=_("Your account holds no key to open recordings."))
    n, ngettext = outbox.rewrap_pending(request.app[BOX], session.identity, session.name), ngettext_for(request)
    flash(request, ngettext("%(n)d queued recording re-wrapped for the archive.",
                            "%(n)d queued recordings re-wrapped for the archive.", n) % {"n": n} if n else
          _("No queued recording needed re-wrapping."))
    raise web.HTTPSeeOther("/instellingen")


@routes.post("/instellingen/testmelding")
@needs(roles.SETTINGS_MANAGE)
async def test_alert(request: web.Request) -> web.StreamResponse:
    """A test mail to every address and a test line to the log collector, as saved (audited as alerts_test)."""
    _ = gettext_for(request)
    box = request.app[BOX]
    outcome = await asyncio.get_running_loop().run_in_executor(
        None, alerts.send_test, box, request[SESSION].name, client_of(request))
    said = []
    for what, label in (("mail", _("Test mail")), ("syslog", _("Test message to the log collector"))):
        result = outcome[what]
        said.append(label + ": " + (_("sent.") if result is None else _("not configured.") if result == "off"
                                    else _("failed: %(why)s") % {"why": result}))
    flash(request, " ".join(said))
    raise web.HTTPSeeOther("/instellingen#meldingen")


@routes.post("/instellingen/backup-test")
@needs(roles.SETTINGS_MANAGE)
async def test_backup(request: web.Request) -> web.StreamResponse:
    """Connect to the network backup target as saved: log in, write and remove a file (audited as backup_test)."""
    _ = gettext_for(request)
    why = await asyncio.get_running_loop().run_in_executor(
        None, backup_targets.test_network, request.app[BOX], request[SESSION].name, client_of(request))
    flash(request, _("Connection to the network backup target: ") + (
        _("works.") if why is None else _("not configured.") if why == "off" else _("failed: %(why)s") % {"why": why}))
    raise web.HTTPSeeOther("/instellingen#backup")


@routes.post("/instellingen/backup-sleutel")
@needs(roles.SETTINGS_MANAGE)
async def make_backup_key(request: web.Request) -> web.StreamResponse:
    """Make the box's login key for the network target (once); the page then shows its public half."""
    backup_sftp.login_key(request.app[BOX])
    raise web.HTTPSeeOther("/instellingen#backup")
