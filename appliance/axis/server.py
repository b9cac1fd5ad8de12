"""The Axis content destination over HTTPS: a thin aiohttp app over accounts.py and destination.py.

`kluis serve` starts it on `[axis] listen` (off by default) with the box's TLS certificate, which the
connection file hands to the W800. Every refusal is one status code (the spec's), one log line and,
where it is about trust (credentials, System ID), an audit entry and an alert; no traceback.
"""

from __future__ import annotations

import asyncio
import errno
import logging
from urllib.parse import quote

from aiohttp import ClientPayloadError, web

from ..box import Box
from ..config_models import parse_listen
from ..errors import KluisError, StorageFull
from . import accounts, spec
from .destination import Destination, Limits
from .spec import AxisError

log = logging.getLogger("kluis.axis")

READ_TIMEOUT_S = 60  # a W800 silent this long mid-body is taken as gone; it sends the clip again
SHUTDOWN_S = 1.5  # when the destination stops, uploads in flight get this long to end before they are cut
# (aiohttp waits up to twice this); not aiohttp's 60 s, which held up `kluis serve` on SIGTERM
PIECE = 256 * 1024

DESTINATION = web.AppKey("destination", Destination)
THROTTLE = web.AppKey("throttle", accounts.Throttle)


def _client(request: web.Request) -> str:
    return request.remote or "?"


def _meta_headers(meta: dict, kind: str) -> dict[str, str]:
    return {f"X-{kind}-Meta-{key[:1].upper()}{key[1:]}": quote(str(value), safe="") for key, value in meta.items()
            if not key.startswith("_")}


@web.middleware
async def _errors(request: web.Request, handler):
    try:
        return await handler(request)
    except AxisError as exc:
        level = logging.INFO if exc.status in (404, 503) else logging.WARNING
        log.log(level, "axis %s %s from %s: %d %s", request.method, request.path[:200], _client(request),
                exc.status, exc)
        return web.Response(status=exc.status, text=f"{exc}\n")
    except StorageFull as exc:  # the disk ran full while a body was written: the same episode as a refusal
        request.app[DESTINATION].disk_full(request.content_length or 0, f"Axis upload {request.path[:200]}", exc)
        log.warning("axis %s %s from %s: 507 %s", request.method, request.path[:200], _client(request), exc)
        return web.Response(status=507, text="out of space\n")
    except (ConnectionError, ClientPayloadError) as exc:  # the W800 went away mid-request; it sends again
        log.info("axis %s %s from %s: connection lost (%s); nothing of it was kept", request.method,
                 request.path[:200], _client(request), exc)
        return web.Response(status=400, text="connection lost\n")  # nobody reads it; aiohttp needs an answer
    except asyncio.CancelledError:  # the same, noticed first by aiohttp (it cancels the handler), or a stop
        log.info("axis %s %s from %s: connection lost or the box stops; nothing of it was kept", request.method,
                 request.path[:200], _client(request))
        raise
    except KluisError as exc:  # a refusal of the domain below (a storage error): the W800 retries later
        log.warning("axis %s %s from %s: 500 %s", request.method, request.path[:200], _client(request), exc)
        return web.Response(status=500, text="internal error\n")


async def _body(request: web.Request, limit: int) -> bytes:
    """A small body, at most `limit` bytes (400 beyond: it can never be stored)."""
    if request.content_length is not None and request.content_length > limit:
        raise AxisError(400, f"body of {request.content_length} bytes: at most {limit} here")
    data = bytearray()
    while chunk := await asyncio.wait_for(request.content.read(PIECE), READ_TIMEOUT_S):
        data += chunk
        if len(data) > limit:
            raise AxisError(400, f"body over {limit} bytes")
    return bytes(data)


async def auth(request: web.Request) -> web.Response:
    destination = request.app[DESTINATION]
    user = request.headers.get("X-Auth-User") or request.headers.get("X-Storage-User") or ""
    key = request.headers.get("X-Auth-Key") or request.headers.get("X-Storage-Pass") or ""
    token, account = accounts.authenticate(destination.box, user, key, _client(request), request.app[THROTTLE])
    url = f"{request.scheme}://{request.host}/v1/AUTH_{account}"
    return web.Response(status=200, headers={"X-Auth-Token": token, "X-Storage-Token": token, "X-Storage-Url": url,
                                             "X-Auth-Token-Expires": str(accounts.TOKEN_TTL_S)})


def _account(request: web.Request) -> dict:
    match = spec.ACCOUNT_RE.match(request.match_info["account"])
    if not match:
        raise AxisError(404, "no such account")
    token = request.headers.get("X-Auth-Token") or request.headers.get("X-Storage-Token")
    return accounts.check_token(request.app[DESTINATION].box, token, match.group(1))


async def account_root(request: web.Request) -> web.Response:
    _account(request)
    return web.Response(status=204)


async def container(request: web.Request) -> web.Response:
    account = _account(request)
    destination = request.app[DESTINATION]
    target = spec.parse_target(request.match_info["container"], None)
    name = target.container_name
    meta = spec.metadata(request.headers, "container")
    if target.kind != "recording":  # System, Users, Devices exist by themselves
        return web.Response(status=202 if request.method == "PUT" else 204)
    if request.method == "PUT":
        created = destination.put_container(account["name"], name)
        if meta:
            destination.post_container(account["name"], name, meta)
        return web.Response(status=201 if created else 202)
    if request.method == "POST":
        destination.post_container(account["name"], name, meta)
        return web.Response(status=204)
    # HEAD
    return web.Response(status=204, headers=_meta_headers(destination.container_meta(account["name"], name),
                                                          "Container"))


async def obj(request: web.Request) -> web.StreamResponse:
    account = _account(request)
    destination = request.app[DESTINATION]
    box = destination.box
    target = spec.parse_target(request.match_info["container"], request.match_info["object"])
    meta = spec.metadata(request.headers, "object")
    method = request.method
    if target.kind == "system_doc":
        if method != "GET" and method != "HEAD":
            raise AxisError(403, "the System documents are the destination's own")
        if target.name == "Categories.json":
            body, etag = spec.json_document(spec.categories_document(box.settings.retention.categories))
        else:
            body, etag = spec.json_document(spec.CAPABILITIES)
        return web.Response(body=body if method == "GET" else None, content_type="application/json",
                            headers={"Etag": etag})
    if target.kind == "system_id":
        if method == "PUT":
            await _body(request, spec.MAX_SMALL_BODY)
            accounts.bind_system(box, account, target.object_name, meta, _client(request))
            return web.Response(status=201)
        if method == "POST":
            accounts.bind_system(box, account, target.object_name, meta, _client(request))
            return web.Response(status=202)
        if method in ("GET", "HEAD"):
            return web.Response(status=200, headers=_meta_headers(accounts.system_object(account, target.object_name),
                                                                  "Object"))
    if target.kind in ("user", "device"):
        if method in ("PUT", "POST"):
            if method == "PUT":
                await _body(request, spec.MAX_SMALL_BODY)
            put = destination.put_user if target.kind == "user" else destination.put_device
            put(account["name"], target.object_name, meta)
            return web.Response(status=201 if method == "PUT" else 202)
        raise AxisError(403, "users and devices are written by the W800, not read back")
    if target.kind == "clip":
        if method == "PUT":
            return await _put_clip(request, destination, account, target, meta)
    elif target.kind in ("key", "bookmark", "gnss"):
        if method == "PUT":
            limit = {"key": spec.MAX_SMALL_BODY, "bookmark": spec.MAX_BOOKMARK_BODY, "gnss": spec.MAX_GNSS_BODY}
            body = await _body(request, limit[target.kind])
            md5 = await destination.put_small(account, target.container_name, target.object_name, target.kind, meta,
                                              body)
            return web.Response(status=201, headers={"Etag": md5})
    if method == "POST":
        destination.post_object(account["name"], target.container_name, target.object_name, meta)
        return web.Response(status=202)
    if method == "HEAD":
        row = destination.object(account["name"], target.container_name, target.object_name)
        if row is None:
            raise AxisError(404, "no such object")
        known = {"Etag": row["md5"]} if row["md5"] else {}  # a clip's MD5 only if it was computed
        return web.Response(status=200, headers={**known, **_meta_headers(destination.object_meta(row), "Object")})
    raise AxisError(403, f"{method} of a {target.kind} object is not part of this destination")


async def _put_clip(request: web.Request, destination: Destination, account: dict, target: spec.Target,
                    meta: dict) -> web.Response:
    await destination.admit()
    upload = destination.begin_clip(account, target.container_name, target.object_name, meta, request.content_length,
                                    md5=spec.wants_md5(request.headers))
    loop = asyncio.get_running_loop()
    try:
        # One deadline moved on after every piece, not a timer task per read (this loop is the hot path).
        async with asyncio.timeout(READ_TIMEOUT_S) as silence:
            while True:
                # readany: the piece the TLS layer delivered, as it is (no join into a larger buffer)
                data = await request.content.readany()
                if not data:
                    break
                silence.reschedule(loop.time() + READ_TIMEOUT_S)
                await upload.push(data)
        if request.content_length is not None and upload.received != request.content_length:
            raise AxisError(400, f"clip {target.name}: {upload.received} of {request.content_length} bytes came")
    except asyncio.TimeoutError:
        await upload.abort()
        raise AxisError(408, f"clip {target.name}: nothing came for {READ_TIMEOUT_S} s") from None
    except BaseException:  # a cut connection (the W800 sends it again), a refusal, a full disk
        await upload.abort()
        raise
    md5, _ = await upload.finish(request.headers.get("ETag"))
    # Swift answers every PUT with the MD5 as Etag; here only when it was computed (spec.wants_md5). Clients
    # that check it skip the check without one, and the Axis reference server answers none.
    return web.Response(status=201, headers={"Etag": md5} if md5 else None)


class _OneLine:
    """aiohttp's request-handler logger: a request it cannot parse (a line over its limit, a malformed
    header) is one warning line of ours, not an ERROR with a traceback that anyone on the LAN can repeat."""

    def exception(self, msg, *args, exc_info=None, **kwargs) -> None:
        exc = exc_info if isinstance(exc_info, BaseException) else None
        log.warning("axis: a request was refused before it reached Kluis: %s", exc or (msg % args if args else msg))

    def __getattr__(self, name):  # debug/info/warning/error as the standard logger, without tracebacks
        return lambda msg, *args, **kwargs: log.log(logging.WARNING if name in ("warning", "error") else
                                                    logging.DEBUG, msg, *args)


def create_app(box: Box, limits: Limits | None = None) -> web.Application:
    app = web.Application(middlewares=[_errors], client_max_size=spec.MAX_GNSS_BODY)
    app[DESTINATION] = Destination(box, limits)
    app[THROTTLE] = accounts.Throttle()
    app.router.add_get("/auth/v1.0", auth)
    app.router.add_get("/auth/v1.0/", auth)
    app.router.add_route("*", "/v1/{account}", account_root)
    app.router.add_route("*", "/v1/{account}/", account_root)
    app.router.add_route("*", "/v1/{account}/{container}", container)
    app.router.add_route("*", "/v1/{account}/{container}/{object:.+}", obj)
    return app


def limits_from_config(box: Box) -> Limits:
    axis = box.settings.axis
    return Limits(max_uploads=axis.max_uploads, queue_wait_s=axis.queue_wait_s,
                  max_clip_bytes=axis.max_clip_mb << 20,
                  reserve_bytes=box.settings.storage.reserve_mb << 20)


async def start_axis(box: Box, host: str, port: int, *, ssl: bool = True) -> web.AppRunner:
    """Serve the content destination on host:port with the box's certificate; returns the runner."""
    from .. import tls

    app = create_app(box, limits_from_config(box))
    app.cleanup_ctx.append(_janitor)
    # Stopping (the service, or the settings page switching the destination off) gives uploads in flight
    # SHUTDOWN_S to end, then cuts them: nothing of a cut clip is kept, and the W800 sends it again.
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True, logger=_OneLine(),
                           shutdown_timeout=SHUTDOWN_S)
    await runner.setup()
    try:
        context = tls.server_context(box.data_dir, box.settings.box.name) if ssl else None
        await web.TCPSite(runner, host, port, ssl_context=context, reuse_address=True).start()
    except BaseException:  # the address cannot be had: nothing of this runner may stay behind
        await runner.cleanup()
        raise
    return runner


class CannotListen(KluisError):
    """The Axis content destination cannot listen on an address; `reason`: "in_use", "not_here", "denied"
    or "other" (the OS's words are in the message)."""

    def __init__(self, listen: str, reason: str, detail: str):
        super().__init__(f"[axis] listen = {listen!r}: cannot listen there: {detail}")
        self.listen, self.reason = listen, reason


_REASONS = {errno.EADDRINUSE: "in_use", errno.EADDRNOTAVAIL: "not_here", errno.EACCES: "denied"}


class AxisSwitch:
    """The Axis content destination of a running `kluis serve`: on, moved or off while the box runs, one
    change at a time. A change that cannot listen on its new address leaves the destination as it was.
    Switching off (or moving) cuts the uploads in flight on the old address: nothing of them was kept,
    and the W800, which keeps every recording until it is stored, sends them again."""

    def __init__(self, box: Box):
        self.box = box
        self.listen = ""  # what it serves now ("" = off)
        self.address: str | None = None  # host:port it is bound to, when on
        self._runner: web.AppRunner | None = None
        self._lock = asyncio.Lock()

    async def apply(self, listen: str) -> str | None:
        """Serve on `listen` ("HOST:PORT"; "" = off); returns the bound host:port (None when off).
        Raises CannotListen (the destination unchanged) or KluisError for a malformed address."""
        listen = listen.strip()
        where = parse_listen(listen)
        async with self._lock:
            if listen == self.listen:
                return self.address
            old, old_listen, old_where = self._runner, self.listen, parse_listen(self.listen)
            # The new address may overlap the old one on the same port (0.0.0.0 holds 127.0.0.1 too):
            # the old site goes first, and comes back if the new address cannot be had.
            free_first = old is not None and (where is None or (old_where is not None and old_where[1] == where[1]))
            if old is not None and free_first:
                await old.cleanup()
                self._runner, self.listen, self.address = None, "", None
            if where is None:
                log.info("Axis content destination: off")
                return None
            try:
                runner = await self._start(listen, *where)
            except CannotListen:
                if old_where is not None and free_first:
                    self._bind(old_listen, await self._start(old_listen, *old_where))
                raise
            if old is not None and not free_first:
                await old.cleanup()
            return self._bind(listen, runner)

    def _bind(self, listen: str, runner: web.AppRunner) -> str:
        self._runner, self.listen = runner, listen
        self.address = next((f"{a[0]}:{a[1]}" for a in runner.addresses if isinstance(a, tuple)), listen)
        log.info("Axis content destination: listening on %s", self.address)
        return self.address

    async def stop(self) -> None:
        await self.apply("")

    async def _start(self, listen: str, host: str, port: int) -> web.AppRunner:
        try:
            return await start_axis(self.box, host, port)
        except OSError as exc:
            raise CannotListen(listen, _REASONS.get(exc.errno or 0, "other"), exc.strerror or str(exc)) from None


async def _janitor(app: web.Application):
    task = asyncio.create_task(_drop_abandoned(app[DESTINATION]))
    yield
    task.cancel()


async def _drop_abandoned(destination: Destination, every_s: float = 3600) -> None:
    """Hourly (and at start): recordings never completed within the retention term are given up."""
    while True:
        try:
            destination.drop_abandoned()
        except Exception:  # a bug must not stop the destination; it is logged with its traceback
            log.exception("axis: dropping abandoned recordings failed")
        await asyncio.sleep(every_s)
