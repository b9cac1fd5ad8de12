"""/account: every user's own settings: change the password (re-wrapping their key slot) and the
optional second factor (TOTP)."""

from __future__ import annotations

from aiohttp import web

from appliance import roles, users
from appliance.errors import KluisError

from ..app import BOX, SESSION, SESSION_COOKIE, SESSIONS, before_second_factor, flash, needs, render, set_cookie
from ..posted import posted

routes = web.RouteTableDef()


# Which field of the password form a refusal of appliance.users is about (shown at that field).
PASSWORD_FIELDS = {"the current password is wrong": "password",
                   "a password needs at least 10 characters": "new_password"}


def _page(request: web.Request, status: int = 200, error: str | None = None, message: str | None = None,
          pending: str | None = None, field: str | None = None) -> web.Response:
    box = request.app[BOX]
    session = request[SESSION]
    return render(request, "account.html", status=status, error=error, message=message,
                  field_errors={field: error} if field and error else {},
                  me=users.get(box, session.name), pending=pending,
                  pending_uri=users.totp_uri(box, session.name, pending) if pending else None,
                  min_password=users.MIN_PASSWORD,
                  # [security] totp_required: until it is set up, this page is all the user may use
                  required_missing=users.second_factor_missing(box, session.user))


@routes.get("/account")
@needs(roles.OVERVIEW)
@before_second_factor
async def account(request: web.Request) -> web.StreamResponse:
    return _page(request)


@routes.post("/account/wachtwoord")
@needs(roles.OVERVIEW)
async def change_password(request: web.Request) -> web.StreamResponse:
    p = await posted(request)
    _, session = p.gettext, p.session
    new, again = p.raw("new_password"), p.raw("new_password_again")
    if new != again:
        return _page(request, 400, error=_("The two new passwords differ."), field="new_password_again")
    try:
        users.change_own_password(p.box, session.name, p.raw("password"), new, session.identity, client=p.client)
    except KluisError as exc:
        return _page(request, 400, error=_(str(exc)), field=PASSWORD_FIELDS.get(str(exc)))  # i18n.DOMAIN_MESSAGES
    request.app[SESSIONS].drop_user(session.name)  # other sessions of this user end; this one too: log in anew
    # no session is left to carry a flash: the login page says it from ?ok=password (it shows no data)
    raise web.HTTPSeeOther("/login?ok=password")


@routes.post("/account/tweestaps")
@needs(roles.OVERVIEW)
@before_second_factor
async def totp_start(request: web.Request) -> web.StreamResponse:
    """A new secret, kept in this session until the user confirms it with a code from their app."""
    session = request[SESSION]
    session.pending_totp = users.new_totp_secret()
    return _page(request, pending=session.pending_totp)


@routes.post("/account/tweestaps/bevestigen")
@needs(roles.OVERVIEW)
@before_second_factor
async def totp_confirm(request: web.Request) -> web.StreamResponse:
    p = await posted(request)
    _, session = p.gettext, p.session
    secret = session.pending_totp
    if not secret:
        return _page(request, 400, error=_("Start setting up the second factor first."))
    try:
        users.enable_totp(p.box, session.name, secret, p.raw("code"), client=p.client)
    except KluisError as exc:
        return _page(request, 400, error=_(str(exc)), pending=secret, field="code")  # i18n.DOMAIN_MESSAGES
    session.pending_totp = None
    # A new session id at this step up (the old one was issued before the second factor): as at login,
    # an id someone learnt before cannot ride along; the old session ends, the key it holds moves over.
    sessions = request.app[SESSIONS]
    fresh = sessions.new(users.get(p.box, session.name), session.identity)
    sessions.drop(session.id)
    request[SESSION] = fresh
    flash(request, _("The second factor is on."))
    response = web.HTTPSeeOther("/account")
    set_cookie(response, SESSION_COOKIE, fresh.id)
    raise response
