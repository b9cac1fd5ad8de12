"""/gebruikers: users, their full name and function, roles, teams, password reset (re-wraps the key slot),
lock-outs."""

from __future__ import annotations

from typing import Callable

from aiohttp import web

from appliance import roles, users
from appliance.errors import KluisError

from ..app import BOX, SESSIONS, done_message, needs, render
from ..i18n import N_
from ..posted import Posted, posted

routes = web.RouteTableDef()

# Messages of appliance.users this page shows translated: their ids, for the catalog's extractor.
DOMAIN_MESSAGES = (N_("a full name is at most 120 printable characters"),
                   N_("a function is at most 120 printable characters"))


def _page(request: web.Request, status: int = 200, error: str | None = None, message: str | None = None,
          form: dict | None = None) -> web.Response:
    box = request.app[BOX]
    recovery = box.catalog.get_meta("recovery_slot") is not None
    return render(request, "gebruikers.html", status=status, users=users.list_users(box), error=error,
                  message=message, form=form or {}, role_names=roles.ROLES, recovery=recovery,
                  min_password=users.MIN_PASSWORD)


@routes.get("/gebruikers")
@needs(roles.USERS_MANAGE)
async def user_list(request: web.Request) -> web.StreamResponse:
    return _page(request, message=done_message(request, {"added": N_("User added."),
                                                           "changed": N_("Changes saved.")}))


async def _act(request: web.Request, change: Callable[[Posted, str], object], ok: str = "changed",
               logs_out: Callable[[Posted, str], bool] = lambda p, name: False) -> web.StreamResponse:
    """Run a users.* change on the account named in the path ('' when adding one); a mistake (bad role,
    short password) is shown on the page, the form kept. When `logs_out` says so, the account's sessions
    end (what changed applies from its next login)."""
    p = await posted(request)
    name = request.match_info.get("name", "")
    try:
        change(p, name)
    except KluisError as exc:
        kept = {k: str(v) for k, v in p.form.items() if k != "password"}
        return _page(request, 400, error=p.gettext(str(exc)), form=kept)  # see i18n.DOMAIN_MESSAGES
    if logs_out(p, name):
        request.app[SESSIONS].drop_user(name)
    raise web.HTTPSeeOther(f"/gebruikers?ok={ok}")


@routes.post("/gebruikers")
@needs(roles.USERS_MANAGE)
async def add(request: web.Request) -> web.StreamResponse:
    return await _act(request, lambda p, name: users.add_user(
        p.box, p.session.name, p.text("name"), p.raw("role"), p.raw("password"), team=p.raw("team"),
        identity=p.session.identity, client=p.client, full_name=p.raw("full_name"), function=p.raw("function")),
        ok="added")


@routes.post("/gebruikers/{name}/persoon")
@needs(roles.USERS_MANAGE)
async def set_person(request: web.Request) -> web.StreamResponse:
    return await _act(request, lambda p, name: users.set_person(
        p.box, p.session.name, name, p.raw("full_name"), p.raw("function"), client=p.client))


@routes.post("/gebruikers/{name}/rol")
@needs(roles.USERS_MANAGE)
async def change_role(request: web.Request) -> web.StreamResponse:
    return await _act(request, lambda p, name: users.change_role(
        p.box, p.session.name, name, p.raw("role"), team=p.raw("team"), client=p.client),
        logs_out=lambda p, name: True)


@routes.post("/gebruikers/{name}/wachtwoord")
@needs(roles.USERS_MANAGE)
async def reset_password(request: web.Request) -> web.StreamResponse:
    return await _act(request, lambda p, name: users.reset_password(
        p.box, p.session.name, name, p.raw("password"), role=p.raw("role") or None,
        identity=p.session.identity, client=p.client),
        logs_out=lambda p, name: name != p.session.name)


@routes.post("/gebruikers/{name}/ontgrendelen")
@needs(roles.USERS_MANAGE)
async def unlock(request: web.Request) -> web.StreamResponse:
    return await _act(request, lambda p, name: users.unlock_account(p.box, p.session.name, name, client=p.client))


@routes.post("/gebruikers/{name}/uitschakelen")
@needs(roles.USERS_MANAGE)
async def disable(request: web.Request) -> web.StreamResponse:
    return await _act(request, lambda p, name: users.set_disabled(
        p.box, p.session.name, name, p.raw("disabled") == "1", client=p.client), logs_out=lambda p, name: True)


@routes.post("/gebruikers/{name}/tweestaps-uit")
@needs(roles.USERS_MANAGE)
async def totp_off(request: web.Request) -> web.StreamResponse:
    return await _act(request, lambda p, name: users.disable_totp(p.box, p.session.name, name, client=p.client))
