"""/gebruikers: users, their full name and function, roles, teams, password reset (re-wraps the key slot),
lock-outs."""

from __future__ import annotations

from typing import Callable

from aiohttp import web

from appliance import roles, users
from appliance.errors import KluisError

from ..app import BOX, SESSIONS, Refusal, domain_message, flash, gettext_for, needs, render
from ..i18n import N_
from ..posted import Posted, TooLong, posted

routes = web.RouteTableDef()

# Messages of appliance.users this page shows translated: their ids, for the catalog's extractor.
DOMAIN_MESSAGES = (N_("a full name is at most 120 printable characters"),
                   N_("a function is at most 120 printable characters"))


# Which field a refusal of appliance.users is about, by how its English message starts (shown at that field).
FIELD_OF = (("a password", "password"), ("a user name", "name"), ("a team leader", "team"),
            ("a full name", "full_name"), ("a function", "function"), ("unknown role", "role"),
            ("role ", "role"), ("you cannot change your own role", "role"))


def _field_of(exc: KluisError) -> str | None:
    if isinstance(exc, TooLong):
        return exc.field
    return next((field for start, field in FIELD_OF if str(exc).startswith(start)), None)


def _page(request: web.Request, status: int = 200, error: str | None = None, form: dict | None = None,
          target: str | None = None, field: str | None = None) -> web.Response:
    """`target`: the user whose form was refused ('' the form that adds one), its `field` marked there."""
    box = request.app[BOX]
    recovery = box.catalog.get_meta("recovery_slot") is not None
    summary = error
    if field and error:  # the message sits at its field; the top says in one line that nothing changed
        _ = gettext_for(request)
        summary = Refusal(_("Nothing was saved: see the marked field."))
        summary.technical = getattr(error, "technical", None)
    return render(request, "gebruikers.html", status=status, users=users.list_users(box), error=summary,
                  form=form or {}, role_names=roles.ROLES, recovery=recovery, min_password=users.MIN_PASSWORD,
                  target=target, field_errors={field: error} if field and error else {})


@routes.get("/gebruikers")
@needs(roles.USERS_MANAGE)
async def user_list(request: web.Request) -> web.StreamResponse:
    return _page(request)


async def _act(request: web.Request, change: Callable[[Posted, str], object], done: Callable[[Posted, str], str],
               logs_out: Callable[[Posted, str], bool] = lambda p, name: False) -> web.StreamResponse:
    """Run a users.* change on the account named in the path ('' when adding one); a mistake (bad role,
    short password) is shown at its field, the form kept; `done` says what changed (shown on the next page).
    When `logs_out` says so, the account's sessions end (what changed applies from its next login)."""
    p = await posted(request)
    name = request.match_info.get("name", "")
    try:
        change(p, name)
    except KluisError as exc:
        kept = {k: str(v) for k, v in p.form.items() if k != "password"}
        return _page(request, 400, error=domain_message(request, exc), form=kept, target=name,
                     field=_field_of(exc))  # see i18n.DOMAIN_MESSAGES
    if logs_out(p, name):
        request.app[SESSIONS].drop_user(name)
    flash(request, done(p, name))
    raise web.HTTPSeeOther("/gebruikers")


@routes.post("/gebruikers")
@needs(roles.USERS_MANAGE)
async def add(request: web.Request) -> web.StreamResponse:
    return await _act(request, lambda p, name: users.add_user(
        p.box, p.session.name, p.text("name"), p.raw("role"), p.raw("password"), team=p.raw("team"),
        identity=p.session.identity, client=p.client, full_name=p.raw("full_name"), function=p.raw("function")),
        lambda p, name: p.gettext("User %(name)s added.") % {"name": p.text("name")})


@routes.post("/gebruikers/{name}/persoon")
@needs(roles.USERS_MANAGE)
async def set_person(request: web.Request) -> web.StreamResponse:
    return await _act(request, lambda p, name: users.set_person(
        p.box, p.session.name, name, p.raw("full_name"), p.raw("function"), client=p.client),
        lambda p, name: p.gettext("Name and function of %(name)s saved.") % {"name": name})


@routes.post("/gebruikers/{name}/rol")
@needs(roles.USERS_MANAGE)
async def change_role(request: web.Request) -> web.StreamResponse:
    return await _act(request, lambda p, name: users.change_role(
        p.box, p.session.name, name, p.raw("role"), team=p.raw("team"), client=p.client),
        lambda p, name: p.gettext("Role and team of %(name)s saved; they apply from the next login.") % {"name": name},
        logs_out=lambda p, name: True)


@routes.post("/gebruikers/{name}/wachtwoord")
@needs(roles.USERS_MANAGE)
async def reset_password(request: web.Request) -> web.StreamResponse:
    return await _act(request, lambda p, name: users.reset_password(
        p.box, p.session.name, name, p.raw("password"), role=p.raw("role") or None,
        identity=p.session.identity, client=p.client),
        lambda p, name: p.gettext("Password of %(name)s reset.") % {"name": name},
        logs_out=lambda p, name: name != p.session.name)


@routes.post("/gebruikers/{name}/ontgrendelen")
@needs(roles.USERS_MANAGE)
async def unlock(request: web.Request) -> web.StreamResponse:
    return await _act(request, lambda p, name: users.unlock_account(p.box, p.session.name, name, client=p.client),
                      lambda p, name: p.gettext("Account %(name)s unlocked.") % {"name": name})


@routes.post("/gebruikers/{name}/uitschakelen")
@needs(roles.USERS_MANAGE)
async def disable(request: web.Request) -> web.StreamResponse:
    return await _act(request, lambda p, name: users.set_disabled(
        p.box, p.session.name, name, p.raw("disabled") == "1", client=p.client),
        lambda p, name: (p.gettext("Account %(name)s disabled; its sessions have ended.") if p.raw("disabled") == "1"
                         else p.gettext("Account %(name)s enabled.")) % {"name": name},
        logs_out=lambda p, name: True)


@routes.post("/gebruikers/{name}/tweestaps-uit")
@needs(roles.USERS_MANAGE)
async def totp_off(request: web.Request) -> web.StreamResponse:
    return await _act(request, lambda p, name: users.disable_totp(p.box, p.session.name, name, client=p.client),
                      lambda p, name: p.gettext("Second factor of %(name)s turned off.") % {"name": name})
