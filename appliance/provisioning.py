"""First boot: the setup wizard `kluis serve` runs while its data directory is not initialised (issue 9).

The office buys a small PC, plugs it in and opens https://kluis.local: there is no console. Until the box
is initialised this web server serves ONLY the wizard (every other path redirects to /setup), over HTTPS
with the box's self-signed certificate, made now and kept afterwards so the browser's exception stays good:

  1. name the office, choose the keeper's user name and password (twice, the usual password rules);
  2. the recovery key, shown once, to write down or print;
  3. the key is hidden and two of its groups (chosen at random) must be typed back;
  4. optionally: enroll with the central archive (URL and token, sync.client.enroll);
  5. done: the wizard stops and the same `kluis serve` process starts the box as usual (discovery,
     retention, web UI, sync) on the same address. /setup is then 404.

The box is made in a staging directory (DIR/.kluis-setup/box, by appliance.box.init_box) and moved into
DIR only after the recovery key was confirmed, the catalog last: a box exists complete with a recovery key
someone wrote down, or not at all (a power cut before that: the wizard starts again, with a new key).

Who may run it: anyone who reaches the box on the office LAN, until it is initialised. The first browser
that submits step 1 claims the wizard (a cookie); any other browser is refused with a clear message
until that claim is idle for CLAIM_IDLE_S before the commit. A second `kluis serve` on the same directory
is refused by a file lock. See README, "First boot".
"""

from __future__ import annotations

import asyncio
import fcntl
import hmac
import logging
import os
import secrets
import shutil
import signal
import time
from pathlib import Path

import aiohttp
import jinja2
from aiohttp import web

from appliance import config as config_mod
from appliance import audit, tls, users
from appliance.box import CATALOG, Box, init_box
from appliance.errors import KluisError
from appliance.vault import fsync_dir

from .. import i18n
from ..app import (HERE, LANG, LANG_COOKIE, TEMPLATES, client_of, gettext_for, headers_middleware,
                   language_middleware, new_login_csrf, set_cookie)
from ..i18n import N_

log = logging.getLogger("kluis.setup")

SETUP_DIR = ".kluis-setup"         # inside DIR: the lock file and the box being made
STAGED = "box"
LOCK = "lock"
MADE_BY_INIT = {"kluis.toml", "blobs", "tmp", "keys"}  # what an interrupted commit may have moved already
MAY_BE_THERE = {"tls", SETUP_DIR, "lost+found"}       # the setup certificate; a file system's own
CLAIM_IDLE_S = 30 * 60
OWNER_COOKIE = "kluis_setup"
CSRF_COOKIE = "kluis_setup_csrf"
CONFIRM_GROUPS = 2
FINISH_S = 2.0  # the last page is served this long before the box takes over the address

routes = web.RouteTableDef()
WIZARD = web.AppKey("wizard", object)


class Wizard:
    """The state of one first boot (in memory: a restart before the commit starts over)."""

    def __init__(self, data_dir: Path, kdf_profile: str = "moderate"):
        self.data_dir = Path(data_dir)
        self.kdf_profile = kdf_profile
        self.step = "start"            # start, making, recovery, confirm, committing, archive, done
        self.owner: str | None = None  # the claiming browser's cookie
        self.active = 0.0              # time.monotonic() of the owner's last request
        self.office = ""
        self.keeper = ""
        self.recovery_key: str | None = None
        self.groups: list[int] = []    # 1-based numbers of the groups to type back
        self.box: Box | None = None
        self.enrolled: dict | None = None
        self.done = asyncio.Event()
        self._lock_fd: int | None = None

    # the directory ----------------------------------------------------------------------------------
    @property
    def staging(self) -> Path:
        return self.data_dir / SETUP_DIR / STAGED

    def prepare(self) -> None:
        """Take the lock, clear what an interrupted setup left, and make (or keep) the certificate."""
        if (self.data_dir / CATALOG).exists():
            raise KluisError(f"{self.data_dir} is already a Kluis data directory")
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        strange = sorted(p.name for p in self.data_dir.iterdir() if p.name not in MAY_BE_THERE | MADE_BY_INIT)
        if strange:
            raise KluisError(f"{self.data_dir} is not a Kluis data directory and not empty "
                             f"({', '.join(strange[:5])}): give an empty or new directory")
        blobs = self.data_dir / "blobs"
        if blobs.exists() and any(p.is_file() for p in blobs.rglob("*")):
            raise KluisError(f"{blobs} holds recordings but there is no catalog: restore from a backup")
        (self.data_dir / SETUP_DIR).mkdir(mode=0o700, exist_ok=True)
        fd = os.open(self.data_dir / SETUP_DIR / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise KluisError(f"{self.data_dir} is being set up by another kluis serve") from None
        if (self.data_dir / CATALOG).exists():  # made by the kluis serve that held the lock until just now
            os.close(fd)
            raise KluisError(f"{self.data_dir} is already a Kluis data directory")
        self._lock_fd = fd
        for name in MADE_BY_INIT:  # moved before a power cut, without the catalog: not a box yet
            _remove(self.data_dir / name)
        _remove(self.staging)
        tls.ensure_certificate(self.data_dir)  # kept after setup: the browser's exception stays valid

    def release(self) -> None:
        if self.box is not None:
            self.box.close()
            self.box = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
        if (self.data_dir / CATALOG).exists():
            _remove(self.data_dir / SETUP_DIR)
        else:
            _remove(self.staging)

    def make(self, office: str, keeper: str, password: str) -> None:
        """Step 1 (in a worker thread: Argon2id): the box, in the staging directory."""
        box, recovery_key = init_box(self.staging, keeper, password, self.kdf_profile)
        box.close()
        config_mod.write_template(self.staging, {"security": {"kdf_profile": self.kdf_profile},
                                                 "box": {"name": office}})
        _remove(self.staging / "tls")  # the setup certificate in DIR/tls is the box's
        self.recovery_key = recovery_key
        count = len(recovery_key.split("-")) - 1
        self.groups = sorted(secrets.SystemRandom().sample(range(1, count + 1), CONFIRM_GROUPS))

    def commit(self) -> None:
        """Move the staged box into DIR, the catalog last; then it is a box."""
        names = sorted(p.name for p in self.staging.iterdir())
        catalog_files = sorted((n for n in names if n.startswith(CATALOG)), key=lambda n: n == CATALOG)
        for name in [n for n in names if not n.startswith(CATALOG)] + catalog_files:
            os.replace(self.staging / name, self.data_dir / name)
        fsync_dir(self.data_dir)
        self.staging.rmdir()
        self.box = Box(self.data_dir)

    def discard(self) -> None:
        """An abandoned claim before the commit: forget it all, the next browser starts afresh."""
        _remove(self.staging)
        self.step, self.owner, self.recovery_key, self.groups = "start", None, None, []

    # who is asking ------------------------------------------------------------------------------------
    def is_owner(self, request: web.Request) -> bool:
        sent = request.cookies.get(OWNER_COOKIE, "")
        return self.owner is not None and _same(sent, self.owner)

    def expire(self) -> None:
        if (self.owner and self.step in ("recovery", "confirm")
                and time.monotonic() - self.active > CLAIM_IDLE_S):
            log.info("setup: the claim of an idle browser expired; starting over")
            self.discard()


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def check_office(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 64 or not name.isprintable() or '"' in name or "\\" in name:
        raise KluisError(N_("the office name is 1 to 64 printable characters, without quotes or backslashes"))
    return name


def groups_match(recovery_key: str, wanted: list[int], typed: list[str]) -> bool:
    parts = recovery_key.split("-")  # parts[0] is the prefix KLUIS; group n is parts[n]
    return len(typed) == len(wanted) and all(
        _same(_base32(t), parts[n]) for n, t in zip(wanted, typed))


def _same(a: str, b: str) -> bool:
    # compare_digest takes only ASCII str: whatever a browser sends, compare bytes
    return hmac.compare_digest(a.encode(), b.encode())


def _base32(typed: str) -> str:
    # Base32 has no 0, 1 or 8: on paper they are O, I and B.
    return typed.strip().upper().translate(str.maketrans("018", "OIB"))


# pages ------------------------------------------------------------------------------------------------

def _render(request: web.Request, status: int = 200, error: str | None = None, **context) -> web.Response:
    wizard: Wizard = request.app[WIZARD]
    token = request.cookies.get(CSRF_COOKIE) or new_login_csrf()
    context.setdefault("values", {})
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
    if not expected or not isinstance(sent, str) or not _same(sent, expected):
        _ = gettext_for(request)
        raise web.HTTPForbidden(text=_("This form has expired or did not come from this box. "
                                       "Go back, reload the page and try again."))
    return {k: str(v) for k, v in form.items() if isinstance(v, str)}


def _owned(request: web.Request, *steps: str) -> Wizard:
    """The wizard, if this browser owns it and it is at one of `steps`; otherwise a redirect or refusal."""
    wizard: Wizard = request.app[WIZARD]
    wizard.expire()
    if wizard.owner is not None and not wizard.is_owner(request):
        raise web.HTTPConflict(text="busy")  # turned into the page by _guard
    if wizard.step not in steps:
        raise _see()
    wizard.active = time.monotonic()
    return wizard


@web.middleware
async def _guard(request: web.Request, handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPConflict:
        return _busy(request)
    except web.HTTPForbidden as exc:
        return _render(request, 403, step="refused", error=exc.text)


@routes.get("/setup")
async def page(request: web.Request) -> web.StreamResponse:
    wizard: Wizard = request.app[WIZARD]
    wizard.expire()
    if wizard.owner is not None and not wizard.is_owner(request) and wizard.step != "done":
        return _busy(request)
    return _render(request)


@routes.post("/setup/begin")
async def begin(request: web.Request) -> web.StreamResponse:
    _ = gettext_for(request)
    form = await _form(request)
    wizard = _owned(request, "start")
    office, keeper = form.get("office", ""), form.get("keeper", "").strip()
    password, again = form.get("password", ""), form.get("password_again", "")
    values = {"office": office, "keeper": keeper}
    try:
        office = check_office(office)
        users._check_name(keeper)  # the rule every user name follows
        if password != again:
            raise KluisError(N_("The two passwords differ."))
        users.check_password(password)
    except KluisError as exc:
        return _render(request, 400, error=_(str(exc)), values=values)
    # Claimed before the first await: a second browser posting at the same moment finds it taken.
    owner = secrets.token_urlsafe(32)
    wizard.owner, wizard.step, wizard.active = owner, "making", time.monotonic()
    wizard.office, wizard.keeper = office, keeper
    try:
        await asyncio.get_running_loop().run_in_executor(None, wizard.make, office, keeper, password)
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


@routes.post("/setup/opgeschreven")
async def written_down(request: web.Request) -> web.StreamResponse:
    await _form(request)
    wizard = _owned(request, "recovery")
    wizard.step = "confirm"
    raise _see()


@routes.post("/setup/opnieuw-tonen")
async def show_again(request: web.Request) -> web.StreamResponse:
    await _form(request)
    wizard = _owned(request, "confirm")
    wizard.step = "recovery"
    raise _see()


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
    wizard.recovery_key, wizard.step = None, "archive"  # the only copy in memory goes now
    # The box's first audit entry: who became its keeper, from where.
    audit.record(wizard.box.catalog, actor=wizard.keeper, action="setup", client=client_of(request),
                 clock=wizard.box.clock, details={"office": wizard.office, "via": "first-boot wizard",
                                                  "kdf_profile": wizard.kdf_profile})
    log.info("setup: recovery key confirmed; %s is a Kluis box", wizard.data_dir)
    raise _see()


@routes.post("/setup/archief")
async def archive(request: web.Request) -> web.StreamResponse:
    _ = gettext_for(request)
    form = await _form(request)
    wizard = _owned(request, "archive")
    if "enroll" in form:
        url, token = form.get("url", "").strip(), form.get("token", "").strip()
        from sync import client

        try:
            enrolled = await client.enroll(wizard.box, url, token, actor=wizard.keeper)
        except (KluisError, ValueError, OSError, aiohttp.ClientError) as exc:  # a mistyped URL or token
            return _render(request, 400, error=_("Enrolling with the archive failed: %(why)s")
                           % {"why": str(exc)}, values={"url": url})
        log.info("setup: enrolled at %s as box %s", enrolled["url"], enrolled["box_id"])
        wizard.enrolled = enrolled
    finish(wizard)
    raise _see()


def finish(wizard: Wizard) -> None:
    wizard.step = "done"
    # The browser follows the redirect to the last page first (FINISH_S is ample for that); then
    # run_setup stops this server and starts the box on the same address.
    asyncio.get_running_loop().call_later(FINISH_S, wizard.done.set)


@routes.get("/taal/{lang}")
async def language(request: web.Request) -> web.StreamResponse:
    response = _see()
    set_cookie(response, LANG_COOKIE, i18n.pick(request.match_info["lang"]), max_age=365 * 86400)
    raise response


async def everything_else(request: web.Request) -> web.StreamResponse:
    raise _see()


def create_setup_app(wizard: Wizard) -> web.Application:
    app = web.Application(middlewares=[headers_middleware, language_middleware, _guard], client_max_size=64 * 1024)
    app[WIZARD] = wizard
    app[TEMPLATES] = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                                        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    app.add_routes(routes)
    app.router.add_static("/static", HERE / "static", name="static", append_version=True)
    app.router.add_route("*", "/{tail:.*}", everything_else)
    return app


async def run_setup(data_dir: Path, listen: tuple[str, int] | None = None,
                    kdf_profile: str = "moderate") -> tuple[str, int] | None:
    """Serve the wizard until the box is made (returns the address it listened on, for the box to take
    over) or SIGTERM/SIGINT (returns None). Called by appliance.app.service for an uninitialised DIR."""
    wizard = Wizard(data_dir, kdf_profile)
    wizard.prepare()
    host, port = listen or ("127.0.0.1", 8443)
    runner = web.AppRunner(create_setup_app(wizard), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, ssl_context=tls.server_context(wizard.data_dir),
                           reuse_address=True)
        try:
            await site.start()
        except OSError as exc:
            raise KluisError(f"web UI: cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        bound = next((a for a in runner.addresses if isinstance(a, tuple)), (host, port))
        log.info("first boot: %s is not initialised; the setup wizard is at https://%s:%d/setup",
                 wizard.data_dir, bound[0], bound[1])
        log.info("certificate (SHA-256), compare with the browser: %s", tls.fingerprint(wizard.data_dir))
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopping.set)
        waits = [asyncio.ensure_future(wizard.done.wait()), asyncio.ensure_future(stopping.wait())]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waits:
                task.cancel()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
    finally:
        await runner.cleanup()
        wizard.release()
    if not wizard.done.is_set():
        log.info("setup stopped before the box was made")
        return None
    log.info("setup done: starting the box")
    return bound[0], bound[1]


# After setup: the box's own health as the overview and the settings page show it -------------------------

async def box_health(box: Box, role: str) -> dict:
    """The clock's synchronisation (every role) and the data at rest (the keeper and the privacy officer,
    who answer for the data): what webui/templates/setup_status.html shows."""
    from appliance import platform, roles, timesync

    loop = asyncio.get_running_loop()
    clock = await loop.run_in_executor(None, timesync.status)  # may run timedatectl: not on the loop
    at_rest = None
    if role in (roles.KEEPER, roles.PRIVACY_OFFICER):
        at_rest = await loop.run_in_executor(None, platform.at_rest, box.data_dir)
    unsynced = box.catalog.db.execute("SELECT count(*) FROM recordings WHERE clock_synced = 0").fetchone()[0]
    return {"clock": clock, "at_rest": at_rest, "unsynced": unsynced}
