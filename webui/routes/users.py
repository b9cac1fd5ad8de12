"""/gebruikers: users, roles, teams, password reset (re-wraps the key slot), lock-outs."""

from __future__ import annotations

from aiohttp import web

from appliance import roles, users
from appliance.errors import KluisError

from ..app import BOX, SESSION, SESSIONS, client_of, gettext_for, needs, render

routes = web.RouteTableDef()


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
    _ = gettext_for(request)
    done = {"added": _("User added."), "changed": _("Changes saved.")}.get(request.query.get("ok", ""))
    return _page(request, message=done)


async def _act(request: web.Request, action, ok: str = "changed") -> web.StreamResponse:
    """Run a users.* change; a mistake (bad role, short password) is shown on the page, the form kept."""
    try:
        action()
    except KluisError as exc:
        kept = {k: str(v) for k, v in (await request.post()).items() if k != "password"}
        return _page(request, 400, error=gettext_for(request)(str(exc)), form=kept)  # see i18n.DOMAIN_MESSAGES
    raise web.HTTPSeeOther(f"/gebruikers?ok={ok}")


@routes.post("/gebruikers")
@needs(roles.USERS_MANAGE)
async def add(request: web.Request) -> web.StreamResponse:
    box = request.app[BOX]
    session = request[SESSION]
    form = await request.post()
    return await _act(request, lambda: users.add_user(
        box, session.name, str(form.get("name", "")).strip(), str(form.get("role", "")),
        str(form.get("password", "")), team=str(form.get("team", "")), identity=session.identity,
        client=client_of(request)), ok="added")


@routes.post("/gebruikers/{name}/rol")
@needs(roles.USERS_MANAGE)
async def change_role(request: web.Request) -> web.StreamResponse:
    box = request.app[BOX]
    session = request[SESSION]
    name = request.match_info["name"]
    form = await request.post()

    def do():
        users.change_role(box, session.name, name, str(form.get("role", "")), team=str(form.get("team", "")),
                          client=client_of(request))
        request.app[SESSIONS].drop_user(name)  # the new role applies from the next login

    return await _act(request, do)


@routes.post("/gebruikers/{name}/wachtwoord")
@needs(roles.USERS_MANAGE)
async def reset_password(request: web.Request) -> web.StreamResponse:
    box = request.app[BOX]
    session = request[SESSION]
    name = request.match_info["name"]
    form = await request.post()

    def do():
        users.reset_password(box, session.name, name, str(form.get("password", "")),
                             role=str(form.get("role", "")) or None, identity=session.identity,
                             client=client_of(request))
        if name != session.name:
            request.app[SESSIONS].drop_user(name)

    return await _act(request, do)


@routes.post("/gebruikers/{name}/ontgrendelen")
@needs(roles.USERS_MANAGE)
async def unlock(request: web.Request) -> web.StreamResponse:
    box = request.app[BOX]
    session = request[SESSION]
    return await _act(request, lambda: users.unlock_account(box, session.name, request.match_info["name"],
                                                             client=client_of(request)))


@routes.post("/gebruikers/{name}/uitschakelen")
@needs(roles.USERS_MANAGE)
async def disable(request: web.Request) -> web.StreamResponse:
    box = request.app[BOX]
    session = request[SESSION]
    name = request.match_info["name"]
    form = await request.post()

    def do():
        users.set_disabled(box, session.name, name, form.get("disabled") == "1", client=client_of(request))
        request.app[SESSIONS].drop_user(name)

    return await _act(request, do)


@routes.post("/gebruikers/{name}/tweestaps-uit")
@needs(roles.USERS_MANAGE)
async def totp_off(request: web.Request) -> web.StreamResponse:
    box = request.app[BOX]
    session = request[SESSION]
    return await _act(request, lambda: users.disable_totp(box, session.name, request.match_info["name"],
                                                           client=client_of(request)))
