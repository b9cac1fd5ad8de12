"""The first-boot wizard's pages (appliance/provisioning.py holds its state and rules; webui/setup_server.py
serves these pages while the data directory is not initialised). Thin: read the form, call the domain,
answer with a page or a redirect."""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from typing import Awaitable, Callable, NoReturn

from aiohttp import web

from appliance import tls, users
from appliance.errors import KluisError
from appliance.provisioning import FirstBoot, check_municipality, check_office, groups_match

from .. import i18n
from ..app import LANG, LANG_COOKIE, TEMPLATES, Refusal, client_of, gettext_for, new_login_csrf, set_cookie
from ..i18n import N_

log = logging.getLogger("kluis.setup")

OWNER_COOKIE = "kluis_setup"
CSRF_COOKIE = "kluis_setup_csrf"
FINISH_S = 2.0  # the last page is served this long before the box takes over the address

routes = web.RouteTableDef()
WIZARD = web.AppKey("wizard", FirstBoot)
DONE = web.AppKey("setup_done", asyncio.Event)  # set when the box is made and its last page served
# The archive's enrolment (sync.client.enroll), given by whoever serves the wizard: (box, url, token, actor).
ENROLL = web.AppKey[Callable[..., Awaitable[dict]]]("enroll")

# Messages of appliance.provisioning the wizard shows translated: their ids, for the catalog's extractor.
DOMAIN_MESSAGES = (N_("the office name is 1 to 64 printable characters, without quotes or backslashes"),
                   N_("name the municipality (at most 200 printable characters), e.g. Gemeente Utrecht"))


def _render(request: web.Request, status: int = 200, error: str | None = None, **context) -> web.Response:
    wizard = request.app[WIZARD]
    token = request.cookies.get(CSRF_COOKIE) or new_login_csrf()
    context.setdefault("values", {})
    context.setdefault("field_errors", {})
    html = request.app[TEMPLATES].get_template("setup.html").render(
        _=gettext_for(request), lang=request.get(LANG, i18n.DEFAULT), session=None, csrf=token, nav=[],
        path=request.path, request_path=request.path_qs, box_name=wizard.office or "Kluis",
        step=context.pop("step", wizard.step), wizard=wizard, error=error, min_password=users.MIN_PASSWORD,
        fingerprint=tls.fingerprint(wizard.data_dir), **context)
    response = web.Response(text=html, status=status, content_type="text/html", charset="utf-8")
    response.headers["Cache-Control"] = "no-store"  # the recovery key must not stay in a cache
    set_cookie(response, CSRF_COOKIE, token)
    return response


def _busy(request: web.Request) -> web.Response:
    return _render(request, 409, step="busy")


def _see(path: str = "/setup") -> web.HTTPSeeOther:
    return web.HTTPSeeOther(path)


async def _form(request: web.Request) -> dict:
    """The posted form, after its CSRF token matched the cookie (double submit: no session yet)."""
    form = await request.post()
    expected = request.cookies.get(CSRF_COOKIE, "")
    sent = form.get("csrf")
    if not expected or not isinstance(sent, str) or not hmac.compare_digest(sent.encode(), expected.encode()):
        _ = gettext_for(request)
        raise web.HTTPForbidden(text=_("This form has expired or did not come from this box. "
                                       "Go back, reload the page and try again."))
    return {k: str(v) for k, v in form.items() if isinstance(v, str)}


def _owned(request: web.Request, *steps: str) -> FirstBoot:
    """The wizard, if this browser owns it and it is at one of `steps`; otherwise a redirect or refusal."""
    wizard = request.app[WIZARD]
    wizard.expire()
    if wizard.owner is not None and not wizard.is_owner(request.cookies.get(OWNER_COOKIE, "")):
        raise web.HTTPConflict(text="busy")  # turned into the page by guard
    if wizard.step not in steps:
        raise _see()
    wizard.active = time.monotonic()
    return wizard


@web.middleware
async def guard(request: web.Request, handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPConflict:
        return _busy(request)
    except web.HTTPForbidden as exc:
        return _render(request, 403, step="refused", error=exc.text)


@routes.get("/setup")
async def page(request: web.Request) -> web.StreamResponse:
    wizard = request.app[WIZARD]
    wizard.expire()
    if wizard.owner is not None and not wizard.is_owner(request.cookies.get(OWNER_COOKIE, "")) and wizard.step != "done":
        return _busy(request)
    return _render(request)


@routes.post("/setup/begin")
async def begin(request: web.Request) -> web.StreamResponse:
    _ = gettext_for(request)
    form = await _form(request)
    wizard = _owned(request, "start")
    office, keeper = form.get("office", ""), form.get("keeper", "").strip()
    municipality = form.get("municipality", "")
    password, again = form.get("password", ""), form.get("password_again", "")
    values = {"office": office, "municipality": municipality, "keeper": keeper}
    field_errors = {}  # each field's mistake, said at that field
    for field, check in (("office", lambda: check_office(office)),
                         ("municipality", lambda: check_municipality(municipality)),
                         ("keeper", lambda: users.check_name(keeper)),  # the rule every user name follows
                         ("password", lambda: users.check_password(password))):
        try:
            check()
        except KluisError as exc:
            field_errors[field] = _(str(exc))
    if password != again and "password" not in field_errors:
        field_errors["password_again"] = _("The two passwords differ.")
    if field_errors:
        return _render(request, 400, error=_("Nothing was saved: see the marked fields."), values=values,
                       field_errors=field_errors)
    office, municipality = check_office(office), check_municipality(municipality)
    # Claimed before the first await: a second browser posting at the same moment finds it taken.
    owner = wizard.claim(office, keeper)
    try:
        await asyncio.get_running_loop().run_in_executor(None, wizard.make, office, keeper, password,
                                                           municipality)
    except KluisError as exc:  # e.g. the disk is full or read-only
        wizard.discard()
        return _render(request, 500, step="start", error=str(exc), values=values)
    except BaseException:
        wizard.discard()
        raise
    wizard.step = "recovery"
    log.info("setup: box made for %r with keeper %r; showing the recovery key", office, keeper)
    response = _see()
    set_cookie(response, OWNER_COOKIE, owner)
    raise response


async def _move(request: web.Request, at: str, to: str) -> NoReturn:
    """A button that only moves the wizard from step `at` to step `to`."""
    await _form(request)
    _owned(request, at).step = to
    raise _see()


@routes.post("/setup/opgeschreven")
async def written_down(request: web.Request) -> web.StreamResponse:
    await _move(request, "recovery", "confirm")


@routes.post("/setup/opnieuw-tonen")
async def show_again(request: web.Request) -> web.StreamResponse:
    await _move(request, "confirm", "recovery")


@routes.post("/setup/bevestigen")
async def confirm(request: web.Request) -> web.StreamResponse:
    _ = gettext_for(request)
    form = await _form(request)
    wizard = _owned(request, "confirm")
    typed = [form.get(f"group{n}", "") for n in wizard.groups]
    if not groups_match(wizard.recovery_key or "", wizard.groups, typed):
        return _render(request, 400, error=_("That does not match the recovery key. Check what you wrote "
                                             "down; if in doubt, show the key again."))
    wizard.step = "committing"
    try:
        await asyncio.get_running_loop().run_in_executor(None, wizard.commit)
    except BaseException:
        wizard.step = "confirm"
        raise
    wizard.confirmed(client_of(request))
    log.info("setup: recovery key confirmed; %s is a Kluis box", wizard.data_dir)
    raise _see()


@routes.post("/setup/archief")
async def archive(request: web.Request) -> web.StreamResponse:
    _ = gettext_for(request)
    form = await _form(request)
    wizard = _owned(request, "archive")
    if "enroll" in form:
        url, token = form.get("url", "").strip(), form.get("token", "").strip()
        try:
            enrolled = await request.app[ENROLL](wizard.box, url, token, actor=wizard.keeper)
        except (KluisError, ValueError, OSError) as exc:  # a mistyped URL or token
            refusal = Refusal(_("Enrolling with the archive failed: check the address and the code; the technical "
                                "details say what the archive answered."))
            refusal.technical = str(exc)
            return _render(request, 400, error=refusal, values={"url": url})
        log.info("setup: enrolled at %s as box %s", enrolled["url"], enrolled["box_id"])
        wizard.enrolled = enrolled
    wizard.step = "done"
    # The browser follows the redirect to the last page first (FINISH_S is ample for that); then
    # run_setup stops this server and starts the box on the same address.
    asyncio.get_running_loop().call_later(FINISH_S, request.app[DONE].set)
    raise _see()


@routes.get("/taal/{lang}")
async def language(request: web.Request) -> web.StreamResponse:
    response = _see()
    set_cookie(response, LANG_COOKIE, i18n.pick(request.match_info["lang"]), max_age=365 * 86400)
    raise response


async def everything_else(request: web.Request) -> web.StreamResponse:
    raise _see()
