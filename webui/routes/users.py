"""/gebruikers: users, roles, teams, password reset (re-wraps the key slot), lock-outs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from aiohttp import web
from multidict import MultiDictProxy

from appliance import roles, users
from appliance.box import Box
from appliance.errors import KluisError

from ..app import BOX, SESSION, SESSIONS, client_of, gettext_for, needs, render
from ..sessions import Session

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


@dataclass
class Change:
    """What a change on this page needs: the box, who makes it (and from where), whose account (from the
    path; None when adding one) and the posted form."""

    box: Box
    session: Session
    name: str | None
    form: MultiDictProxy
    client: str

    def field(self, key: str) -> str:
        return str(self.form.get(key, ""))


async def _act(request: web.Request, change: Callable[[Change], object], ok: str = "changed",
               logs_out: Callable[[Change], bool] = lambda c: False) -> web.StreamResponse:
    """Run a users.* change; a mistake (bad role, short password) is shown on the page, the form kept.
    When `logs_out` says so, the account's sessions end (what changed applies from its next login)."""
    c = Change(request.app[BOX], request[SESSION], request.match_info.get("name"), await request.post(),
               client_of(request))
    try:
        change(c)
    except KluisError as exc:
        kept = {k: str(v) for k, v in c.form.items() if k != "password"}
        return _page(request, 400, error=gettext_for(request)(str(exc)), form=kept)  # see i18n.DOMAIN_MESSAGES
    if logs_out(c):
        request.app[SESSIONS].drop_user(c.name)
    raise web.HTTPSeeOther(f"/gebruikers?ok={ok}")


@routes.post("/gebruikers")
@needs(roles.USERS_MANAGE)
async def add(request: web.Request) -> web.StreamResponse:
    return await _act(request, lambda c: users.add_user(
        c.box, c.session.name, c.field("name").strip(), c.field("role"), c.field("password"), team=c.field("team"),
        identity=c.session.identity, client=c.client), ok="added")


@routes.post("/gebruikers/{name}/rol")
@needs(roles.USERS_MANAGE)
async def change_role(request: web.Request) -> web.StreamResponse:
    return await _act(request, lambda c: users.change_role(
        c.box, c.session.name, c.name, c.field("role"), team=c.field("team"), client=c.client),
        logs_out=lambda c: True)


@routes.post("/gebruikers/{name}/wachtwoord")
@needs(roles.USERS_MANAGE)
async def reset_password(request: web.Request) -> web.StreamResponse:
    return await _act(request, lambda c: users.reset_password(
        c.box, c.session.name, c.name, c.field("password"), role=c.field("role") or None,
        identity=c.session.identity, client=c.client),
        logs_out=lambda c: c.name != c.session.name)


@routes.post("/gebruikers/{name}/ontgrendelen")
@needs(roles.USERS_MANAGE)
async def unlock(request: web.Request) -> web.StreamResponse:
    return await _act(request, lambda c: users.unlock_account(c.box, c.session.name, c.name, client=c.client))


@routes.post("/gebruikers/{name}/uitschakelen")
@needs(roles.USERS_MANAGE)
async def disable(request: web.Request) -> web.StreamResponse:
    return await _act(request, lambda c: users.set_disabled(
        c.box, c.session.name, c.name, c.field("disabled") == "1", client=c.client), logs_out=lambda c: True)


@routes.post("/gebruikers/{name}/tweestaps-uit")
@needs(roles.USERS_MANAGE)
async def totp_off(request: web.Request) -> web.StreamResponse:
    return await _act(request, lambda c: users.disable_totp(c.box, c.session.name, c.name, client=c.client))
