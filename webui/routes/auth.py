"""/login, /logout and the language switch."""

from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import web

from appliance import roles, users
from appliance.errors import WrongSecret

from .. import i18n
from ..app import (BOX, LANG_COOKIE, LOGIN_CSRF, LOGIN_CSRF_COOKIE, SESSION, SESSION_COOKIE, SESSIONS,
                   before_second_factor, check_password, client_of, gettext_for, needs, new_login_csrf, public,
                   render, set_cookie)

routes = web.RouteTableDef()


def safe_next(target: str | None) -> str:
    """Only a path on this box: never an open redirect to elsewhere."""
    if not target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _login_page(request: web.Request, status: int = 200, error: str | None = None,
                username: str = "") -> web.Response:
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or new_login_csrf()
    request[LOGIN_CSRF] = token
    _ = gettext_for(request)
    notice = _("You were logged out after a period of inactivity.") if request.query.get("expired") else None
    if request.query.get("ok") == "password":  # after a change of one's own password every session ends
        notice = _("Your password has been changed. Log in with the new one.")
    response = render(request, "login.html", status=status, error=error, notice=notice, username=username,
                      next=safe_next(request.query.get("next")))
    set_cookie(response, LOGIN_CSRF_COOKIE, token)
    return response


@routes.get("/login")
@public
async def login_form(request: web.Request) -> web.StreamResponse:
    if request.get(SESSION) is not None:
        raise web.HTTPSeeOther("/")
    return _login_page(request)


@routes.post("/login")
@public
async def login(request: web.Request) -> web.StreamResponse:
    _ = gettext_for(request)
    form = await request.post()
    username = str(form.get("username", "")).strip()
    password = str(form.get("password", ""))
    if not username or not password:
        return _login_page(request, 400, _("Fill in your user name and password."), username)
    box = request.app[BOX]
    client = client_of(request)
    code = str(form.get("code", "")).strip()[:12] or None
    try:
        result = await check_password(box, username, password, code, client)
    except users.LockedOut:
        return _login_page(request, 403, _("Too many wrong passwords: this account is locked for a while. "
                                           "Try again later or ask the keeper."), username)
    except WrongSecret:
        return _login_page(request, 400, _("Wrong user name, password or code."), username)
    session = request.app[SESSIONS].new(result.user, result.identity)
    response = web.HTTPSeeOther(safe_next(str(form.get("next", "")) or None))
    set_cookie(response, SESSION_COOKIE, session.id)
    response.del_cookie(LOGIN_CSRF_COOKIE, path="/")
    raise response


@routes.post("/logout")
@needs(roles.OVERVIEW)
@before_second_factor
async def logout(request: web.Request) -> web.StreamResponse:
    session = request[SESSION]
    request.app[SESSIONS].drop(session.id)
    users.logout(request.app[BOX], session.name, client=client_of(request))
    response = web.HTTPSeeOther("/login")
    response.del_cookie(SESSION_COOKIE, path="/")
    raise response


@routes.get("/taal/{lang}")
@public
async def language(request: web.Request) -> web.StreamResponse:
    response = web.HTTPSeeOther(safe_next(request.query.get("next")))
    set_cookie(response, LANG_COOKIE, i18n.pick(request.match_info["lang"]), max_age=365 * 86400)
    raise response
