"""What every page of the web UI uses: middlewares for errors, sessions, roles and CSRF; the app's keys;
Jinja2 rendering. The route modules import this module; webui/site.py assembles the app from both.

Every route declares what it needs with `@needs(permission)` (a permission of appliance.roles) or
`@public`. The auth middleware refuses any route that declares nothing, so a new route cannot be added
open by accident; tests/webui/test_roles.py holds every route against the role table.
"""

from __future__ import annotations

import asyncio

import hmac
import logging
import secrets
from pathlib import Path
from typing import Awaitable, Callable, Iterable
from urllib.parse import urlencode

import jinja2
from aiohttp import web

from appliance import roles, spreadsheet, users
from appliance.box import Box
from appliance.config_change import AxisSwitch
from appliance.errors import KluisError, NotFound, WrongSecret
from appliance.handover_downloads import Downloads

from . import i18n, labels
from .audit_text import ACTION_LABELS
from .formats import Formats
from .i18n import N_
from .sessions import Session, Sessions

log = logging.getLogger("kluis.web")

HERE = Path(__file__).parent
SESSION_COOKIE = "kluis_session"
LOGIN_CSRF_COOKIE = "kluis_login_csrf"
LANG_COOKIE = "kluis_lang"
PUBLIC = "public"

BOX = web.AppKey("box", Box)
SESSIONS = web.AppKey("sessions", Sessions)
TEMPLATES = web.AppKey("templates", jinja2.Environment)
# Per camera, the state of its offload (appliance.dock.offload.CameraProgress): given by the process that
# runs the offload (`kluis serve`), so the web UI reads it without knowing who runs it; {} without one.
OFFLOAD_PROGRESS = web.AppKey[Callable[[], dict]]("offload_progress")
# Switches the Axis content destination of the running service (appliance.config_change.AxisSwitch); given
# by `kluis serve`, None without it (a change of [axis] listen then waits for the service's restart).
AXIS_SWITCH = web.AppKey[AxisSwitch | None]("axis_switch")
DOWNLOADS = web.AppKey("downloads", Downloads)  # approved handover packages waiting for their download
# Who is logged in: set only when someone is (so a page behind @needs always finds it; a public page asks
# with request.get(SESSION)).
SESSION = web.RequestKey("session", Session)
LANG = web.RequestKey("lang", str)
GETTEXT = web.RequestKey[Callable[[str], str]]("gettext")
LOGIN_CSRF = web.RequestKey("login_csrf", str)

# The navigation: (path, label, permission). Shown only to roles that may open the page.
NAV = [
    ("/", N_("Overview"), roles.OVERVIEW),
    ("/opnames", N_("Recordings"), roles.RECORDINGS_LIST),
    ("/mijn-opnames", N_("My recordings"), roles.OWN_RECORDINGS),
    ("/cameras", N_("Cameras"), roles.CAMERAS_MANAGE),
    ("/gebruikers", N_("Users"), roles.USERS_MANAGE),
    ("/verzoeken", N_("Requests"), roles.REQUESTS_MANAGE),
    ("/zaken", N_("Cases"), roles.CASES_READ),
    ("/overdrachten", N_("Handovers"), roles.HANDOVER_READ),
    ("/logboek", N_("Audit log"), roles.AUDIT_READ),
    ("/statistieken", N_("Statistics"), roles.STATS_READ),
    ("/verwerkingsregister", N_("Processing register"), roles.REGISTER_READ),
    ("/instellingen", N_("Settings"), roles.SETTINGS_MANAGE),
    ("/onderhoud", N_("Maintenance"), roles.SETTINGS_MANAGE),
]

ROLE_LABELS = {
    roles.KEEPER: N_("keeper"),
    roles.TEAM_LEADER: N_("team leader"),
    roles.PRIVACY_OFFICER: N_("privacy officer"),
    roles.OFFICER: N_("officer"),
    roles.AUDITOR: N_("auditor"),
}


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def needs(permission: str) -> Callable[[Handler], Handler]:
    """Declare the permission a route needs (checked by the auth middleware before the handler runs)."""
    if permission not in {p for perms in roles.PERMISSIONS.values() for p in perms}:
        raise ValueError(f"unknown permission {permission!r}")

    def mark(handler: Handler) -> Handler:
        vars(handler)["kluis_permission"] = permission  # an attribute a Callable's type cannot declare
        return handler

    return mark


def public(handler: Handler) -> Handler:
    vars(handler)["kluis_permission"] = PUBLIC
    return handler


def before_second_factor(handler: Handler) -> Handler:
    """A route a user whose role requires a second factor may use before setting it up (the account
    page's set-up forms, logging out); every other route sends them there ([security] totp_required)."""
    vars(handler)["kluis_before_second_factor"] = True
    return handler


def permission_of(request: web.Request) -> str | None:
    if request.match_info.http_exception is not None:
        return PUBLIC  # no route matched: the 404/405 page
    route = request.match_info.route
    if isinstance(route.resource, web.StaticResource):
        return PUBLIC  # the stylesheet: no data
    return getattr(request.match_info.handler, "kluis_permission", None)


class UserError(KluisError):
    """A mistake the user can fix; shown on the page with status 400."""


# Rendering -------------------------------------------------------------------------------------------

def gettext_for(request: web.Request) -> Callable[[str], str]:
    return request.get(GETTEXT, i18n.translations(i18n.DEFAULT).gettext)


def ngettext_for(request: web.Request) -> Callable[[str, str, int], str]:
    """The plural-aware gettext of the user's language: ngettext("%(n)d handover", "%(n)d handovers", n)."""
    return i18n.translations(request.get(LANG, i18n.DEFAULT)).ngettext


def flash(request: web.Request, message: str) -> None:
    """Say on the next page the user sees what their action did (shown once, in base.html, with
    role=status): for a form that redirects after it changed something. `message` is already translated."""
    session: Session | None = request.get(SESSION)
    if session is not None:
        session.flashes.append(message)


def formats_for(request: web.Request) -> Formats:
    """The page's formatters (dates, numbers, sizes) in the user's language and the box's time zone."""
    return Formats(request.get(LANG, i18n.DEFAULT), request.app[BOX].settings.box.timezone)


def render(request: web.Request, template: str, status: int = 200, **context) -> web.Response:
    env = request.app[TEMPLATES]
    session: Session | None = request.get(SESSION)
    box = request.app[BOX]
    lang = request.get(LANG, i18n.DEFAULT)
    fmt = formats_for(request)
    _ = gettext_for(request)

    def allowed(permission: str) -> bool:
        return session is not None and roles.allowed(session.role, permission)

    def role_label(role: str) -> str:
        return _(ROLE_LABELS.get(role, role))

    nav = [(path, _(label)) for path, label, perm in NAV if allowed(perm)]
    html = env.get_template(template).render(
        _=_,
        ngettext=ngettext_for(request),
        fmt=fmt,
        flashes=session.take_flashes() if session else [],
        lang=lang,
        session=session,
        csrf=session.csrf if session else request.get(LOGIN_CSRF, ""),
        nav=nav,
        path=request.path,
        request_path=request.path_qs,
        allowed=allowed,
        fmt_time=fmt.time,
        fmt_size=fmt.size,
        role_label=role_label,
        action_label=lambda action: _(ACTION_LABELS[action]) if action in ACTION_LABELS else action,
        state_label=lambda state: labels.label(_, labels.RECORDING_STATES, state),
        recording_state=lambda recording, held=None: labels.recording_state(_, recording, held),
        camera_status=lambda status: labels.camera_status(_, status),
        alert_text=lambda alert: labels.alert_text(_, alert),
        sync_label=lambda state: labels.label(_, labels.SYNC_COUNTS, state),
        sync_skipped=lambda why: labels.sync_skipped(_, why),
        job_state=lambda state: labels.label(_, labels.JOB_STATES, state),
        handover_state=lambda state: labels.label(_, labels.HANDOVER_STATES, state),
        box_name=box.settings.box.name,
        roles=roles,
        **context,
    )
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8")


def csv_response(body: bytes, filename: str) -> web.Response:
    """A CSV download (made by appliance.spreadsheet, so Dutch Excel opens it as it is)."""
    return web.Response(body=body, content_type=spreadsheet.MEDIA_TYPE, charset="utf-8", headers={
        "Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"})


async def csv_stream(request: web.Request, chunks: Iterable[bytes], filename: str) -> web.StreamResponse:
    """A large CSV download (appliance.spreadsheet.chunks), sent while it is read rather than built whole."""
    response = web.StreamResponse(headers={"Content-Disposition": f'attachment; filename="{filename}"',
                                           "Cache-Control": "no-store"})
    response.content_type = spreadsheet.MEDIA_TYPE
    response.charset = "utf-8"
    await response.prepare(request)
    for chunk in chunks:
        await response.write(chunk)
    await response.write_eof()
    return response


def error_page(request: web.Request, status: int, message: str, technical: str | None = None) -> web.Response:
    """`technical`: the domain's own (English) message, shown folded under `message` for a report."""
    _ = gettext_for(request)
    titles = {400: _("That did not work"), 401: _("Log in first"), 403: _("No access"), 404: _("Not found"),
              405: _("Not allowed"), 413: _("Too large"), 500: _("Something went wrong")}
    return render(request, "error.html", status=status, title=titles.get(status, _("Error")), message=message,
                  technical=technical)


class Refusal(str):
    """A refusal shown on a page in the user's words, with the domain's English message beside it
    (`technical`, shown folded and marked lang="en" by the notices macro and the error page)."""

    technical: str | None = None


def domain_message(request: web.Request, exc: Exception | str) -> Refusal:
    """A refusal of the domain layer for a page: its text in the user's language when a catalog knows it
    (i18n.DOMAIN_MESSAGES and the like) or it is in that language already (a handler's own message, a
    UserError); else a sentence in the user's language with the English message as technical detail."""
    text = str(exc)
    lang = request.get(LANG, i18n.DEFAULT)
    if isinstance(exc, UserError) or lang == "en" or i18n.is_translation(lang, text):
        return Refusal(text)
    _ = gettext_for(request)
    translated = _(text)
    if translated != text:
        return Refusal(translated)
    refusal = Refusal(_("The box refused this; the technical details say why."))
    refusal.technical = text
    return refusal


# Middlewares -----------------------------------------------------------------------------------------

@web.middleware
async def language_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    lang = i18n.pick(request.cookies.get(LANG_COOKIE))
    request[LANG] = lang
    request[GETTEXT] = i18n.translations(lang).gettext
    return await handler(request)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    _ = gettext_for(request)
    try:
        return await handler(request)
    except web.HTTPNotFound:
        return error_page(request, 404, _("There is no page at this address."))
    except web.HTTPMethodNotAllowed:
        return error_page(request, 405, _("This page does not accept that kind of request."))
    except web.HTTPRequestEntityTooLarge:
        return error_page(request, 413, _("What was sent is too large."))
    except web.HTTPException:
        raise  # redirects and responses handlers made on purpose
    except roles.Forbidden:
        return error_page(request, 403, _("Your role does not allow this."))
    except NotFound:
        return error_page(request, 404, _("That does not exist (any more)."))
    except KluisError as exc:
        refusal = domain_message(request, exc)
        return error_page(request, 400, refusal, refusal.technical)
    except Exception:
        log.exception("unexpected error on %s %s", request.method, request.path)
        return error_page(request, 500, _("An unexpected error occurred. It has been logged."))


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    _ = gettext_for(request)
    app = request.app
    session, expired = app[SESSIONS].get(request.cookies.get(SESSION_COOKIE))
    if expired is not None:
        users.logout(app[BOX], expired.name, client=client_of(request), reason="idle")
    if session is not None:
        request[SESSION] = session
    permission = permission_of(request)
    if permission == PUBLIC:
        return await handler(request)
    if permission is None:
        # Fail closed: a route that declared nothing is open to nobody.
        log.error("route %s declares no permission; refused", request.match_info.route)
        return error_page(request, 403, _("Your role does not allow this."))
    if session is None:
        if request.method == "GET" and "text/html" in request.headers.get("Accept", "text/html"):
            target = "/login"
            if request.path != "/":
                target += "?" + _query({"next": request.path_qs, "expired": "1" if expired else ""})
            elif expired:
                target += "?expired=1"
            raise web.HTTPSeeOther(target)
        return error_page(request, 401, _("Log in first."))
    if users.second_factor_missing(app[BOX], session.user) and not getattr(
            request.match_info.handler, "kluis_before_second_factor", False):
        if request.method == "GET" and "text/html" in request.headers.get("Accept", "text/html"):
            raise web.HTTPSeeOther("/account")
        return error_page(request, 403, _("Your role requires a second factor: set it up on your account page "
                                          "first."))
    if not roles.allowed(session.role, permission):
        return error_page(request, 403, _("Your role does not allow this."))
    return await handler(request)


def _query(params: dict) -> str:
    return urlencode({k: v for k, v in params.items() if v})


@web.middleware
async def csrf_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every state-changing request carries the session's token (the login form: a cookie's token)."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return await handler(request)
    session: Session | None = request.get(SESSION)
    expected = session.csrf if session else request.cookies.get(LOGIN_CSRF_COOKIE, "")
    sent: object = request.headers.get("X-CSRF-Token")
    if sent is None and request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        sent = (await request.post()).get("csrf")
    if not expected or not isinstance(sent, str) or not hmac.compare_digest(sent, expected):
        _ = gettext_for(request)
        return error_page(request, 403, _("This form has expired or did not come from this box. "
                                          "Go back, reload the page and try again."))
    return await handler(request)


@web.middleware
async def headers_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    # No third-party anything: the page may load only what this box serves.
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; media-src 'self'; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    if request.get(SESSION) is not None and "Cache-Control" not in response.headers:
        response.headers["Cache-Control"] = "no-store"
    return response


def client_of(request: web.Request) -> str:
    return f"web {request.remote or '?'}"


async def check_password(box: Box, name: str, password: str, code: str | None, client: str) -> users.Login:
    """A user's password (and code) through appliance.users, as at the login page: failures count toward
    the lock-out and are audited. Raises users.LockedOut or WrongSecret. The Argon2id work runs off the
    event loop (it touches no catalog), so other users are not held up."""
    row = users.login_start(box, name, client)
    try:
        secret: object = await asyncio.get_running_loop().run_in_executor(
            None, users.open_user_slot, box, row, password)
    except WrongSecret:
        secret = users.WRONG
    return users.login_finish(box, name, row, secret, code, client)


def set_cookie(response: web.StreamResponse, name: str, value: str, max_age: int | None = None) -> None:
    response.set_cookie(name, value, secure=True, httponly=True, samesite="Strict", path="/", max_age=max_age)


def new_login_csrf() -> str:
    return secrets.token_urlsafe(32)
