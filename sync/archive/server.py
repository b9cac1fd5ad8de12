"""The archive's HTTPS API (aiohttp), thin over store.Archive. Described in docs/archive-openapi.yaml.

Every route except `info` and `enroll` takes a request signed by an enrolled box (sync/protocol.py).
Order of refusal: unsigned 401, unknown box 403, body altered 422, bad signature or stale time 401,
replay 409. Bodies are read with a cap (413 past it) before anything is checked or stored.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from pathlib import Path

from aiohttp import ClientPayloadError, web
from aiohttp.streams import EofStream

from appliance import tls
from appliance.errors import KluisError, NotFound

from ..protocol import API, H_BODY, H_BOX, MAX_CHUNK, MAX_JSON, NOT_A_CONTAINER, ProtocolError, check_request, sha256_hex
from .store import Archive, UploadState

log = logging.getLogger("kluis.archive")

ARCHIVE = web.AppKey("archive", Archive)
LOCK = web.AppKey("lock", asyncio.Lock)
STREAMS = web.AppKey("streams", dict)  # (box, sha256) -> _StreamSlot: one stream per upload at a time
SHUTDOWN_S = 1.5  # after a stop, how long a request under way gets to end (aiohttp waits up to twice this)
STREAM_BATCH = 4 * 1024 * 1024  # most bytes handed to the writing thread at a time
STREAM_NUDGE = 256 * 1024  # fewest, while it is idle (a thread hop costs too)
FEED_STEP = 1024 * 1024  # the progress feed sends a line once the written offset moved this far,
FEED_QUIET_S = 0.01  # ... or once writes paused this long with some of it untold,
FEED_IDLE_S = 5.0  # ... or after this long without one (the box's read timeout must not fire)


class Stopping(Exception):
    """The archive is stopping: set on an open stream's body, so that its reader ends at once."""


def stop_streams(app: web.Application) -> None:
    """End every upload stream under way where it is: each keeps what arrived (durably) and answers 503,
    so that the box retries, and resumes from that offset once the archive is back. Without this, a
    stop waited for the box to finish sending (SIGTERM was ignored for as long as an upload lasted)."""
    for slot in list(app[STREAMS].values()):
        if slot.request is not None:
            slot.request.content.set_exception(Stopping())


class StreamCut(ConnectionResetError):
    """A cut stream, already logged in its one line."""


def _went_away(exc: BaseException) -> bool:
    """A box that went away mid-request (link cut, box stopped): expected, one line, no traceback."""
    return isinstance(exc, (ConnectionError, asyncio.IncompleteReadError, ClientPayloadError, EofStream))


def _error(status: int, message: str, **extra) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


@web.middleware
async def errors(request: web.Request, handler):
    try:
        return await handler(request)
    except ProtocolError as exc:
        if exc.status >= 500 or exc.status in (401, 403, 409, 413, 422):
            log.warning("%s %s refused: %s %s", request.method, request.path, exc.status, exc.message)
        return _error(exc.status, exc.message)
    except NotFound as exc:
        return _error(404, str(exc))
    except KluisError as exc:
        return _error(400, str(exc))
    except web.HTTPException as exc:
        if exc.status >= 400:
            return _error(exc.status, exc.reason)
        raise
    except Stopping:
        return _error(503, "the archive is stopping; resume later")
    except Exception as exc:
        if isinstance(exc, StreamCut):
            return _error(400, "request cut")
        if _went_away(exc):
            log.warning("%s %s: the box went away mid-request (%s)", request.method, request.path,
                        type(exc).__name__)
            return _error(400, "request cut")
        log.exception("%s %s failed", request.method, request.path)
        return _error(500, "internal error (see the archive's log)")


async def _read_capped(request: web.Request, limit: int) -> bytes:
    """The whole body, refusing it as soon as it passes `limit` (so an oversized body is never kept)."""
    if request.content_length is not None and request.content_length > limit:
        raise ProtocolError(f"body of {request.content_length} bytes exceeds the limit of {limit}", 413)
    parts, total = [], 0
    while True:
        block = await request.content.read(256 * 1024)
        if not block:
            break
        total += len(block)
        if total > limit:
            raise ProtocolError(f"body exceeds the limit of {limit} bytes", 413)
        parts.append(block)
    return b"".join(parts)


async def _run(request: web.Request, func, *args):
    """Store calls run in a thread, one at a time: SQLite and fsync must not stall the event loop."""
    async with request.app[LOCK]:
        return await asyncio.to_thread(func, *args)


def _authenticate(archive: Archive, headers, method: str, path: str, body: bytes | None) -> None:
    """Known box, body hash, signature, time, fresh nonce: in one call, off the event loop (a 4 MiB hash
    and an SQLite write per request). `body` None: a streamed body, whose signed hash the stream checks
    at its end, before its bytes count (put_stream)."""
    box_id = headers.get(H_BOX, "")
    key = archive.box_key(box_id) if box_id else None
    if box_id and key is None:
        raise ProtocolError(f"box {box_id} is not enrolled at this archive", 403)
    digest = headers.get(H_BODY, "").lower() if body is None else sha256_hex(body)
    signed_req = check_request(headers, method, path, digest, key or bytes(32), archive.clock())
    archive.remember_nonce(box_id, signed_req.nonce)


def signed(limit: int):
    """Route decorator: read the body (capped), verify the box's signature, refuse replays."""

    def decorate(handler):
        async def wrapper(request: web.Request) -> web.Response:
            archive = request.app[ARCHIVE]
            body = await _read_capped(request, limit)
            box_id = request.headers.get(H_BOX, "")
            await _run(request, _authenticate, archive, request.headers, request.method, request.path_qs, body)
            return await handler(request, box_id, body)

        wrapper.__name__ = handler.__name__
        return wrapper

    return decorate


def _json(body: bytes) -> dict:
    try:
        value = json.loads(body)
    except ValueError:
        raise ProtocolError("body is not JSON", 400) from None
    if not isinstance(value, dict):
        raise ProtocolError("body is not a JSON object", 400)
    return value


async def info(request: web.Request) -> web.Response:
    return web.json_response(request.app[ARCHIVE].info())


async def enroll(request: web.Request) -> web.Response:
    """The one signed request from a box not yet known: signed by the key it asks to enroll."""
    archive = request.app[ARCHIVE]
    body = await _read_capped(request, MAX_JSON)
    data = _json(body)
    try:
        signing_key = bytes.fromhex(data["signing_key"])
        public_key = bytes.fromhex(data["public_key"])
        token, name = str(data["token"]), str(data.get("name") or "Kluis")[:100]
    except (KeyError, ValueError, TypeError):
        raise ProtocolError("enroll needs token, name, signing_key and public_key (hex)", 400) from None
    check_request(request.headers, request.method, request.path_qs, sha256_hex(body), signing_key,
                  archive.clock())
    return web.json_response(await _run(request, archive.enroll, token, name, signing_key, public_key))


@signed(MAX_JSON)
async def requisitions(request: web.Request, box_id: str, body: bytes) -> web.Response:
    archive = request.app[ARCHIVE]
    return web.json_response({"requisitions": await _run(request, archive.open_requisitions_for, box_id)})


@signed(MAX_JSON)
async def report_requisition(request: web.Request, box_id: str, body: bytes) -> web.Response:
    archive = request.app[ARCHIVE]
    try:
        req_id = int(request.match_info["req_id"])
    except ValueError:
        raise ProtocolError("requisition id is a number", 400) from None
    await _run(request, archive.report_requisition, box_id, req_id, _json(body).get("matched"))
    return web.json_response({"ok": True})


def _upload_state(state) -> dict:
    if state.complete:
        return {"state": "complete", "offset": state.offset, "receipt": state.receipt}
    return {"state": "open", "offset": state.offset, "chunk_size": MAX_CHUNK}


@signed(MAX_JSON)
async def start_upload(request: web.Request, box_id: str, body: bytes) -> web.Response:
    archive = request.app[ARCHIVE]
    data = _json(body)
    metadata = data.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise ProtocolError("metadata must be an object", 400)
    state = await _run(request, archive.start_upload, box_id, data.get("recording_id"), data.get("sha256"),
                       data.get("size"), metadata)
    return web.json_response(_upload_state(state))


async def put_part(request: web.Request) -> web.Response:
    """Not @signed: checking the request and writing the part happen in one call off the event loop, one
    thread hop per 4 MiB instead of two (under load each hop costs milliseconds)."""
    archive = request.app[ARCHIVE]
    body = await _read_capped(request, MAX_CHUNK)
    try:
        offset = int(request.query["offset"])
    except (KeyError, ValueError):
        offset = None

    def work() -> int:
        _authenticate(archive, request.headers, request.method, request.path_qs, body)
        if offset is None:
            raise ProtocolError("offset query parameter missing", 400)
        if not body:
            raise ProtocolError("empty part", 400)
        return archive.write_part(request.headers[H_BOX], request.match_info["sha256"], offset, body)

    return web.json_response({"state": "open", "offset": await _run(request, work)})


class _Feed:
    """Blocks off the socket to the stream's writer thread. The writer takes whatever has arrived as soon
    as it is free (after a moment to let a few blocks gather: each thread hop costs), so bytes do not
    wait for more to come: the box holds back until they are written (the progress feed)."""

    def __init__(self, stream, slot: "_StreamSlot"):
        self.stream, self.slot = stream, slot
        self.blocks: list[bytes] = []
        self.queued = 0
        self.ended = False
        self.arrived = asyncio.Event()
        self.writer = asyncio.ensure_future(self._write())

    async def put(self, block: bytes) -> None:
        self.blocks.append(block)
        self.queued += len(block)
        self.arrived.set()
        while self.queued >= STREAM_BATCH and not self.writer.done():  # the disk is behind: stop reading
            await asyncio.sleep(0.001)

    async def end(self) -> None:
        """No more blocks: wait until the writer has written what came (raises what it raised)."""
        self.ended = True
        self.arrived.set()
        await self.writer

    async def _write(self) -> None:
        while True:
            await self.arrived.wait()
            if self.queued < STREAM_NUDGE and not self.ended:
                await asyncio.sleep(0.002)
            batch, self.blocks, self.queued = self.blocks, [], 0
            self.arrived.clear()
            if batch:
                await asyncio.to_thread(self.stream.write, batch)
                self.slot.moved(self.stream.offset)
            if self.ended and not self.blocks:
                return


async def put_stream(request: web.Request) -> web.Response:
    """The rest of a container, [offset, size), in one request. The headers are checked before a byte of
    the body is read; the body is written as it arrives (in a thread, one batch while the next is read),
    fsynced every stream.SYNC_EVERY bytes and at its end, where its hash is checked against the signed one
    before it counts (stream.Stream). A cut stream keeps what arrived: the box resumes from there."""
    archive = request.app[ARCHIVE]
    sha = request.match_info["sha256"]
    try:
        offset = int(request.query["offset"])
    except (KeyError, ValueError):
        raise ProtocolError("offset query parameter missing", 400) from None
    await _run(request, _authenticate, archive, request.headers, request.method, request.path_qs, None)
    box_id = request.headers[H_BOX]
    key = (box_id, sha)
    slot = request.app[STREAMS].setdefault(key, _StreamSlot())
    slot.users += 1
    try:
        try:  # a stream cut a moment ago may not have noticed yet: let it end first
            await asyncio.wait_for(slot.lock.acquire(), 30)
        except asyncio.TimeoutError:
            raise ProtocolError("another stream of this upload is still open", 409) from None
        try:
            committed = await _receive(request, archive, slot, box_id, sha, offset)
        finally:
            slot.moved(None)
            slot.lock.release()
    finally:
        slot.users -= 1
        if not slot.users:  # one slot per upload under way, not one per upload ever seen
            del request.app[STREAMS][key]
    return web.json_response({"state": "open", "offset": committed})


async def _receive(request: web.Request, archive, slot: "_StreamSlot", box_id: str, sha: str, offset: int) -> int:
    """Write one stream's body into the upload; returns the offset committed."""
    stream = await _run(request, archive.open_stream, box_id, sha, offset,
                        request.headers.get(H_BODY, "").lower(), request.content_length)
    slot.moved(offset)
    slot.request = request
    feed = _Feed(stream, slot)
    try:
        while not feed.writer.done():  # a writer that failed ends the reading too
            block = await request.content.readany()
            if not block:
                break
            await feed.put(block)
        await feed.end()
        return await asyncio.to_thread(stream.finish)
    except ProtocolError as exc:
        if exc.code == NOT_A_CONTAINER:  # never storable: nothing of it is kept to resume
            await _run(request, archive.discard_upload, box_id, sha)
        raise
    except BaseException as exc:  # cut or stopped mid-stream: keep what arrived, durably (stream.Stream.close)
        await asyncio.gather(feed.end(), return_exceptions=True)
        await asyncio.to_thread(stream.close)
        if isinstance(exc, Stopping) or _went_away(exc):
            why = "the archive is stopping" if isinstance(exc, Stopping) else "the box went away"
            log.warning("upload %s of box %s cut at %d of %d bytes (%s); kept to resume", sha[:12], box_id,
                        stream.offset, stream.size, why)
            if isinstance(exc, Stopping):
                raise
            raise StreamCut("stream cut") from None  # answered (to nobody) without a second line
        raise
    finally:
        slot.request = None


class _StreamSlot:
    """One upload's stream lock, how many requests hold or await it (to forget it when none do), and the
    offset its running stream has written (None when none runs), for the progress feed to follow."""

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0
        self.offset: int | None = None
        self.request: web.Request | None = None  # the running stream's, for stop_streams
        self._moved = asyncio.Event()

    def moved(self, offset: int | None) -> None:
        self.offset = offset
        self._moved.set()
        self._moved = asyncio.Event()  # every follower waits on the event of its moment

    async def wait(self, timeout: float) -> bool:
        """Whether the offset moved (or the stream ended) within `timeout`."""
        try:
            await asyncio.wait_for(self._moved.wait(), timeout)
            return True
        except asyncio.TimeoutError:
            return False


@signed(MAX_JSON)
async def upload_state(request: web.Request, box_id: str, body: bytes) -> web.Response:
    """How far an upload is: a streaming box asks this to keep what a cut link loses under a chunk."""
    archive = request.app[ARCHIVE]
    return web.json_response(_upload_state(await _run(request, archive.upload_state, box_id,
                                                      request.match_info["sha256"])))


@signed(MAX_JSON)
async def upload_progress(request: web.Request, box_id: str, body: bytes) -> web.StreamResponse:
    """The written offset of an upload's running stream, as it grows: one JSON line per FEED_STEP bytes,
    when writes pause, and at least every FEED_IDLE_S, ending when the stream ends; without a running stream, one line
    of the upload's state. A streaming box follows this instead of asking GET uploads/{sha256} again
    and again (at loopback speed that was ~200 signed requests per GiB, a third of both ends' CPU)."""
    archive, sha = request.app[ARCHIVE], request.match_info["sha256"]
    slot = request.app[STREAMS].get((box_id, sha))
    if slot is None or slot.offset is None:
        return web.json_response(_upload_state(await _run(request, archive.upload_state, box_id, sha)))
    response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
    await response.prepare(request)
    sent, quiet = None, False
    try:
        while (offset := slot.offset) is not None:
            if sent is None or offset - sent >= FEED_STEP or quiet:
                await response.write(json.dumps(_upload_state(UploadState(False, offset))).encode() + b"\n")
                sent = offset
            # Writes that pause with news unsent (the box may wait for just that) are told after a
            # moment; with nothing new, the line is repeated every FEED_IDLE_S.
            quiet = not await slot.wait(FEED_QUIET_S if offset != sent else FEED_IDLE_S)
        await response.write_eof()
    except ConnectionError:  # the box went away (its stream ended or the link dropped)
        pass
    return response


@signed(MAX_JSON)
async def complete_upload(request: web.Request, box_id: str, body: bytes) -> web.Response:
    archive = request.app[ARCHIVE]
    receipt = await _run(request, archive.complete_upload, box_id, request.match_info["sha256"])
    return web.json_response({"state": "complete", "offset": receipt["size"], "receipt": receipt})


@signed(MAX_JSON)
async def update_metadata(request: web.Request, box_id: str, body: bytes) -> web.Response:
    archive = request.app[ARCHIVE]
    metadata = _json(body).get("metadata")
    if not isinstance(metadata, dict):
        raise ProtocolError("metadata must be an object", 400)
    await _run(request, archive.update_metadata, box_id, request.match_info["sha256"], metadata)
    return web.json_response({"ok": True})


@signed(MAX_JSON)
async def last_checkpoint(request: web.Request, box_id: str, body: bytes) -> web.Response:
    archive = request.app[ARCHIVE]
    return web.json_response(await _run(request, archive.last_checkpoint, box_id))


@signed(MAX_JSON)
async def post_checkpoint(request: web.Request, box_id: str, body: bytes) -> web.Response:
    archive = request.app[ARCHIVE]
    data = _json(body)
    return web.json_response(await _run(request, archive.receive_checkpoint, box_id, data.get("checkpoint"),
                                        data.get("prior"), data.get("witnessed_prior")))


ROUTES = [
    ("GET", f"{API}/info", info),
    ("POST", f"{API}/enroll", enroll),
    ("GET", f"{API}/requisitions", requisitions),
    ("POST", f"{API}/requisitions/{{req_id}}/report", report_requisition),
    ("POST", f"{API}/uploads", start_upload),
    ("GET", f"{API}/uploads/{{sha256}}", upload_state),
    ("PUT", f"{API}/uploads/{{sha256}}", put_part),
    ("PUT", f"{API}/uploads/{{sha256}}/stream", put_stream),
    ("GET", f"{API}/uploads/{{sha256}}/progress", upload_progress),
    ("POST", f"{API}/uploads/{{sha256}}/complete", complete_upload),
    ("POST", f"{API}/recordings/{{sha256}}/metadata", update_metadata),
    ("GET", f"{API}/checkpoints/last", last_checkpoint),
    ("POST", f"{API}/checkpoints", post_checkpoint),
]


def make_app(archive: Archive) -> web.Application:
    # The cap is enforced per route in _read_capped; this only stops aiohttp's own reader earlier.
    app = web.Application(middlewares=[errors], client_max_size=MAX_CHUNK + 1024 * 1024)
    app[ARCHIVE] = archive
    app[LOCK] = asyncio.Lock()
    app[STREAMS] = {}
    for method, path, handler in ROUTES:
        app.router.add_route(method, path, handler)
    return app


async def start(archive: Archive, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Serve HTTPS on host:port (0 picks a free port); returns the runner and the port bound."""
    runner = web.AppRunner(make_app(archive), access_log=None, shutdown_timeout=SHUTDOWN_S)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=tls.server_context(archive.data_dir, archive.meta["name"]))
    await site.start()
    return runner, runner.addresses[0][1]


async def _serve(archive: Archive, host: str, port: int) -> None:
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    runner, bound = await start(archive, host, port)
    print(f"archive {archive.archive_id} listening on https://{host}:{bound}", flush=True)
    try:
        await stopping.wait()
        log.info("stopping: open upload streams end where they are, to be resumed")
    finally:
        stop_streams(runner.app)
        await runner.cleanup()


def serve(data_dir: Path, host: str, port: int) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    with Archive(data_dir) as archive:
        asyncio.run(_serve(archive, host, port))
