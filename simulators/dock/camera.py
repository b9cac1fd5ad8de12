"""The camera simulator: a bodycam in its dock, the other end of the dock protocol (docs/dock-protocol.md).

A real component for the demo and the tests: it advertises `_bodycam._tcp.local.` with python-zeroconf's
asyncio API, serves the dock protocol with aiohttp, and keeps everything under its state directory so it
survives a restart:

    DIR/camera.json                 serial, model, firmware, next recording number
    DIR/camera.key                  the camera's Ed25519 seed (0600): signs manifests and confirmations
    DIR/holding.key                 X25519 key for recordings made while unpaired (0600), see below
    DIR/pairing.json                the paired box: its Ed25519 key, recipients, settings (absent: unpaired)
    DIR/replay.json                 nonces of accepted box requests (saved after every change and at exit)
    DIR/recordings/<id>.header      the container header (sealed file keys, metadata)
    DIR/recordings/<id>.payload     the container payload (encrypted chunks)
    DIR/recordings/<id>.json        the manifest entry; written last, so its presence means "complete"
    DIR/requests/<name>.json        "record now" requests from `kluis camera-sim record` (picked up, removed)
    DIR/display.txt                 the camera's screen: the pairing code, or the paired box's fingerprint
    DIR/sim.json                    pid and port of the running simulator

Recordings. Footage is made with `footage.make_mp4` into memory (io.BytesIO), never to a file, and
encrypted straight into the container with `container.Encryptor`, which needs only public keys. While
paired, recordings are sealed to the recipients the box provisioned. A camera records when unpaired too
(an officer may switch it on before it ever docked): those recordings are sealed to the camera's own
X25519 holding key, and at pairing their file keys are re-sealed to the box's recipients
(`Header.rewrap`: a new header, the same encrypted payload) and the holding stanza dropped. A real camera
would keep the holding key in its secure element.

Simulator-only endpoints (not part of the protocol; a real camera has none):

    POST /sim/record   {"seconds": 5, "filler_mb": 0}  -> the new manifest entry
    GET  /sim/faults, PUT /sim/faults {...}             fault knobs (see `Faults`)
    GET  /sim/stats                                     byte ranges served, refusals by code
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import ipaddress
import json
import logging
import os
import secrets
import signal
import socket
import sys
import time
from dataclasses import asdict, dataclass, fields
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from aiohttp import web
from nacl.signing import SigningKey, VerifyKey

from appliance.clock import Clock, system_clock
from appliance.errors import KluisError
from appliance.dock import protocol as p

from .state import SERVE_BLOCK, CameraState, write_atomic

if TYPE_CHECKING:
    from zeroconf import ServiceInfo
    from zeroconf.asyncio import AsyncZeroconf

log = logging.getLogger("kluis.camera")

MAX_WRONG_CODES = 5  # then a new code is drawn: guessing online is hopeless
REQUEST_POLL_S = 0.2


# --- fault knobs -----------------------------------------------------------------------------------------


@dataclass
class Faults:
    """Misbehaviour on purpose, for tests. Set with CLI flags or PUT /sim/faults (partial JSON)."""

    cut_after: int | None = None  # close the connection after this many body bytes of a recording
    cut_count: int | None = None  # ... this many times (None: every time)
    rate: int | None = None  # serve recordings at this many bytes per second
    corrupt: bool = False  # flip one byte in the middle of every recording served (stored copy intact)
    wrong_manifest_key: bool = False  # sign manifests with a key that is not the camera's
    bad_txt: str | None = None  # advertise an "oversized" or "malformed" TXT record
    # An impostor: advertise the serial with this public key's fingerprint (hex Ed25519 key of the paired
    # camera it copies: anyone on the LAN reads it from that camera's unsigned info) and as paired, while
    # holding only its own key. With `impostor_info` it also names that key in its info, so only a signed
    # challenge (the box-signed manifest request) can tell it from the real camera.
    impostor_of: str | None = None
    impostor_info: bool = False

    def update(self, changes: dict) -> None:
        names = {f.name for f in fields(self)}
        unknown = set(changes) - names
        if unknown:
            raise p.ProtocolError(f"unknown fault(s): {', '.join(sorted(unknown))}")
        if changes.get("bad_txt") not in (None, "oversized", "malformed"):
            raise p.ProtocolError("bad_txt is null, 'oversized' or 'malformed'")
        claimed = changes.get("impostor_of")
        if claimed is not None and (not isinstance(claimed, str) or not p.KEY_RE.match(claimed)):
            raise p.ProtocolError("impostor_of is null or a camera's public key (64 hex digits)")
        for name, value in changes.items():
            setattr(self, name, value)


def claimed_key(state: CameraState, faults: Faults) -> SigningKey | VerifyKey:
    """The key the camera says it has (in its TXT, and in its info with `impostor_info`)."""
    return VerifyKey(bytes.fromhex(faults.impostor_of)) if faults.impostor_of else state.key


def txt_properties(state: CameraState, faults: Faults) -> dict[str, str] | bytes:
    props = p.build_txt(state.serial, state.model, state.fw, claimed_key(state, faults),
                        state.paired or bool(faults.impostor_of))
    if faults.bad_txt == "oversized":
        return {**props, **{f"junk{i}": "x" * 240 for i in range(4)}}  # ~1 KB: over the 512-byte limit
    if faults.bad_txt == "malformed":
        bad = {**props, "serial": "cam 001!", "paired": "maybe"}
        return b"".join(bytes([len(item)]) + item for item in
                        [f"{k}={v}".encode() for k, v in bad.items()] + ["model=Kamera\u00e9".encode()])
    return props


# --- addresses -------------------------------------------------------------------------------------------


def choose_addresses(interfaces: Sequence[str] = (), addresses: Sequence[str] = ()) -> list[str]:
    """IPv4 addresses to advertise on. Explicit addresses and interfaces win; otherwise every non-loopback
    interface with an IPv4 address, or 127.0.0.1 when there is none (zeroconf's own default interface
    choice fails in a network namespace without a default route)."""
    import ifaddr  # a zeroconf dependency

    adapters = {a.nice_name: [ip.ip for ip in a.ips if isinstance(ip.ip, str)] for a in ifaddr.get_adapters()}
    chosen = [str(ipaddress.IPv4Address(a)) for a in addresses]
    for name in interfaces:
        if name not in adapters:
            raise KluisError(f"no network interface {name!r} (have: {', '.join(sorted(adapters))})")
        if not adapters[name]:
            raise KluisError(f"interface {name} has no IPv4 address")
        chosen += adapters[name]
    if not chosen:
        chosen = [ip for ips in adapters.values() for ip in ips if not ipaddress.IPv4Address(ip).is_loopback]
    return list(dict.fromkeys(chosen)) or ["127.0.0.1"]


# --- the running camera ---------------------------------------------------------------------------------


class Simulator:
    """The camera process: HTTP server + mDNS advertisement + record requests + schedule."""

    def __init__(self, state: CameraState, port: int = 0, bind: str = "0.0.0.0", addresses: Sequence[str] = (),
                 faults: Faults | None = None, record_every: float | None = None, record_seconds: float = 10,
                 announce: Callable[[str], None] | None = None):
        self.state = state
        self.port = port
        self.bind = bind
        self.addresses = list(addresses) or ["127.0.0.1"]
        self.faults = faults or Faults()
        self.record_every = record_every
        self.record_seconds = record_seconds
        self.announce = announce or (lambda line: print(line, flush=True))
        self.code: str | None = None
        self.wrong_codes = 0
        self.lock = asyncio.Lock()
        self.stats: dict = {"served": [], "refused": {}, "requests": 0}
        self._cuts = 0
        self._zc: AsyncZeroconf | None = None
        self._info: ServiceInfo | None = None
        self._registered = False
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task] = []

    # -- lifecycle

    async def start(self) -> None:
        app = web.Application(client_max_size=p.MAX_JSON_BODY, middlewares=[self._errors])
        prefix = p.API_PREFIX
        app.router.add_get(f"{prefix}/info", self.h_info)
        app.router.add_post(f"{prefix}/pair", self.h_pair)
        app.router.add_delete(f"{prefix}/pair", self.h_unpair)
        app.router.add_get(f"{prefix}/manifest", self.h_manifest)
        app.router.add_get(f"{prefix}/recordings/{{id}}", self.h_recording)
        app.router.add_delete(f"{prefix}/recordings/{{id}}", self.h_delete)
        app.router.add_put(f"{prefix}/settings", self.h_settings)
        app.router.add_post("/sim/record", self.h_sim_record)
        app.router.add_get("/sim/faults", self.h_sim_faults)
        app.router.add_put("/sim/faults", self.h_sim_faults)
        app.router.add_get("/sim/stats", self.h_sim_stats)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.bind, self.port))
        except OSError as exc:
            sock.close()
            raise KluisError(f"cannot listen on {self.bind}:{self.port}: {exc.strerror}") from None
        self.port = sock.getsockname()[1]
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()
        write_atomic(self.state.dir / "sim.json", p.canonical({"pid": os.getpid(), "port": self.port}))
        self.announce(f"camera {self.state.serial} listening on port {self.port}")
        if not self.state.paired:
            self.new_code()
        else:
            self._display()
        await self._advertise()
        self._tasks.append(asyncio.create_task(self._watch_requests()))
        if self.record_every:
            self._tasks.append(asyncio.create_task(self._schedule()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._zc is not None:
            if self._info is not None:
                # The returned awaitable must itself be awaited, or the goodbye packets are never sent.
                await (await self._zc.async_unregister_service(self._info))
            await self._zc.async_close()
        if self._runner is not None:
            await self._runner.cleanup()
        self.state.save_replay()
        with contextlib.suppress(FileNotFoundError):
            (self.state.dir / "sim.json").unlink()

    def _service_info(self):
        from zeroconf.asyncio import AsyncServiceInfo

        # An impostor cannot have the real camera's instance and host names (mDNS probing refuses a name in
        # use): like any device after a name conflict it takes others. Its TXT still names the serial.
        instance = self.state.serial + (f"-{self.port}" if self.faults.impostor_of else "")
        return AsyncServiceInfo(
            p.SERVICE_TYPE, f"{instance}.{p.SERVICE_TYPE}", port=self.port,
            properties=txt_properties(self.state, self.faults),
            server=f"{instance.lower()}-camera.local.",
            addresses=[socket.inet_aton(a) for a in self.addresses],
        )

    async def _advertise(self) -> None:
        from zeroconf import IPVersion, NonUniqueNameException
        from zeroconf.asyncio import AsyncZeroconf

        self._info = self._service_info()
        self._zc = AsyncZeroconf(interfaces=self.addresses, ip_version=IPVersion.V4Only)
        try:
            await (await self._zc.async_register_service(self._info))
        except NonUniqueNameException:
            self._info = None
            raise KluisError(f"another device already advertises {self.state.serial} on this network") from None
        self._registered = True
        await self.readvertise()  # paired (or a fault set) while registration was still probing?
        log.info("advertising %s on %s", self._info.name, ", ".join(self.addresses))

    async def readvertise(self) -> None:
        """The TXT record changed (paired flag, a fault): publish the new one. Before registration has
        finished this does nothing; registration calls it again when done."""
        if not self._registered or self._zc is None or self._info is None:  # registered: both are set
            return
        info = self._service_info()
        if info.text != self._info.text:
            await (await self._zc.async_update_service(info))
            self._info = info

    def new_code(self) -> None:
        self.code = p.new_pairing_code()
        self.wrong_codes = 0
        self.announce(f"pairing code: {self.code}")
        self._display()

    def _display(self) -> None:
        pairing = self.state.pairing
        text = (f"pairing code: {self.code}\n" if pairing is None
                else f"paired with {pairing['box_name']} ({p.key_fingerprint(pairing['box_key'])})\n")
        write_atomic(self.state.dir / "display.txt", text.encode())

    # -- recording

    async def record(self, seconds: float, filler_mb: float = 0) -> dict:
        async with self.lock:  # pairing never happens halfway through sealing a recording
            entry = await asyncio.to_thread(self.state.make_recording, seconds, filler_mb)
        log.info("recorded %s (%d bytes, %s)", entry["id"], entry["size"],
                 "sealed to the box" if self.state.paired else "held until paired")
        self.announce(f"recorded {entry['id']}")
        return entry

    async def _watch_requests(self) -> None:
        folder = self.state.dir / "requests"
        while True:
            for path in sorted(folder.glob("*.json")):
                try:
                    wanted = json.loads(path.read_text())
                    entry = await self.record(float(wanted.get("seconds", 5)), float(wanted.get("filler_mb", 0)))
                    result = {"id": entry["id"]}
                except (ValueError, TypeError, AttributeError, KluisError, OSError) as exc:
                    # A bad request or a full disk fails this recording, not the camera.
                    log.warning("record request %s failed: %s", path.name, exc)
                    result = {"error": str(exc)}
                write_atomic(path.with_suffix(".done"), p.canonical(result))
                path.unlink()
            await asyncio.sleep(REQUEST_POLL_S)

    async def _schedule(self) -> None:
        if self.record_every is None:  # started only with an interval
            return
        while True:
            await asyncio.sleep(self.record_every)
            try:
                await self.record(self.record_seconds)
            except (KluisError, OSError) as exc:
                log.warning("scheduled recording failed: %s", exc)

    # -- HTTP

    @web.middleware
    async def _errors(self, request: web.Request, handler):
        self.stats["requests"] += 1
        try:
            return await handler(request)
        except p.ProtocolError as exc:
            return self._refuse(request, exc)
        except web.HTTPRequestEntityTooLarge:
            return self._refuse(request, p.ProtocolError("request body too large", 413, "too_large"))

    def _refuse(self, request: web.Request, exc: p.ProtocolError) -> web.Response:
        self.stats["refused"][exc.code] = self.stats["refused"].get(exc.code, 0) + 1
        log.warning("refused %s %s from %s: %s (%s)", request.method, request.path, request.remote, exc, exc.code)
        return web.json_response(exc.body(), status=exc.status)

    async def _signed(self, request: web.Request, body: bytes = b"") -> str:
        nonce = p.verify_request(self.state.box_key, request.method, request.raw_path, request.headers, body,
                                 self.state.clock(), self.state.replay)
        if request.method != "GET":
            self.state.save_replay()  # a replayed mutation stays refused after a restart
        return nonce

    async def h_info(self, request: web.Request) -> web.Response:
        s, f = self.state, self.faults
        key = claimed_key(s, f) if f.impostor_info else s.key
        return web.json_response(p.build_info(s.serial, s.model, s.fw, key, s.paired or bool(f.impostor_of),
                                              s.box_key, s.clock(), s.settings["version"]))

    async def h_pair(self, request: web.Request) -> web.Response:
        body = p.parse_json(await request.read(), what="pair request")
        async with self.lock:
            if self.state.paired:
                raise p.ProtocolError("this camera is already paired (unpair it first)", 409, "already_paired")
            code = self.code
            if code is None:  # an unpaired camera always shows one
                raise p.ProtocolError("this camera shows no pairing code", 409, "no_code")
            try:
                # In a thread: the pairing key is Argon2id (~50 ms); serving goes on meanwhile.
                pairing = await asyncio.to_thread(p.verify_pair_request, body, code, self.state.serial)
            except p.ProtocolError as exc:
                if exc.code == "wrong_code":
                    self.wrong_codes += 1
                    if self.wrong_codes >= MAX_WRONG_CODES:
                        log.warning("%d wrong pairing codes: drawing a new one", self.wrong_codes)
                        self.new_code()
                raise
            rewrapped = await asyncio.to_thread(self.state.pair, pairing)
            self.code = None
        log.info("paired with %s (%s); %d held recording(s) re-sealed to its recipients",
                 pairing["box_name"], p.key_fingerprint(pairing["box_key"]), rewrapped)
        self._display()
        self.announce(f"paired with {p.key_fingerprint(pairing['box_key'])}")
        await self.readvertise()
        return web.json_response(p.build_pair_response(code, pairing, self.state.serial, self.state.key,
                                                       self.state.clock(), self.state.model, self.state.fw))

    async def h_unpair(self, request: web.Request) -> web.Response:
        await self._signed(request, await request.read())
        async with self.lock:
            self.state.unpair()
        log.info("unpaired by the box")
        self.new_code()
        await self.readvertise()
        return web.json_response({"paired": False})

    async def h_manifest(self, request: web.Request) -> web.Response:
        nonce = await self._signed(request)
        key = SigningKey.generate() if self.faults.wrong_manifest_key else self.state.key
        entries = await asyncio.to_thread(self.state.entries)
        return web.json_response(p.build_manifest(key, self.state.serial, entries, self.state.clock(), nonce))

    async def h_recording(self, request: web.Request) -> web.StreamResponse:
        await self._signed(request)
        entry, header, payload_path = self.state.open_recording(request.match_info["id"])
        size = entry["size"]
        span = p.parse_range(request.headers.get("Range"), size)
        start, end = span or (0, size)
        resp = web.StreamResponse(status=206 if span else 200)
        resp.content_type = "application/octet-stream"
        resp.content_length = end - start
        resp.headers["Accept-Ranges"] = "bytes"
        resp.headers["ETag"] = f'"{entry["sha256"]}"'
        if span:
            resp.headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
        record = {"id": entry["id"], "start": start, "end": end, "sent": 0, "complete": False}
        self.stats["served"] = self.stats["served"][-999:] + [record]
        await resp.prepare(request)
        faults = self.faults
        cut = faults.cut_after if faults.cut_after is not None and (
            faults.cut_count is None or self._cuts < faults.cut_count) else None
        flip = size // 2 if faults.corrupt else -1
        block = SERVE_BLOCK if not faults.rate else max(1, min(SERVE_BLOCK, faults.rate // 10))
        began = time.monotonic()
        try:
            payload = open(payload_path, "rb")
        except FileNotFoundError:  # deleted between the entry and here: the headers are already out
            if request.transport is not None:
                request.transport.abort()
            return resp
        with payload:
            pos = start
            while pos < end:
                if pos < len(header):
                    data = header[pos : min(end, len(header), pos + block)]
                else:
                    payload.seek(pos - len(header))
                    data = payload.read(min(block, end - pos))
                    if not data:
                        raise KluisError(f"recording {entry['id']} is shorter on disk than its entry")
                if pos <= flip < pos + len(data):
                    flipped = bytearray(data)
                    flipped[flip - pos] ^= 0x01
                    data = bytes(flipped)
                if cut is not None and record["sent"] + len(data) >= cut:
                    data = data[: cut - record["sent"]]
                    await resp.write(data)
                    record["sent"] += len(data)
                    self._cuts += 1
                    log.info("fault: cutting %s after %d bytes", entry["id"], record["sent"])
                    # close, not abort: the N bytes still in the send buffer go out, then FIN before
                    # Content-Length is reached, so the box sees a broken transfer of exactly N bytes.
                    if request.transport is not None:
                        request.transport.close()
                    return resp
                await resp.write(data)
                pos += len(data)
                record["sent"] += len(data)
                if faults.rate:
                    ahead = record["sent"] / faults.rate - (time.monotonic() - began)
                    if ahead > 0:
                        await asyncio.sleep(ahead)
        await resp.write_eof()
        record["complete"] = True
        return resp

    async def h_delete(self, request: web.Request) -> web.Response:
        body = await request.read()
        nonce = await self._signed(request, body)
        recording_id = request.match_info["id"]
        sha256 = p.parse_delete(body, recording_id)
        async with self.lock:
            await asyncio.to_thread(self.state.delete_recording, recording_id, sha256)
        log.info("deleted %s on request of the box (sha256 %s...)", recording_id, sha256[:16])
        return web.json_response(p.build_deleted(self.state.key, self.state.serial, recording_id, sha256,
                                                 self.state.clock(), nonce))

    async def h_settings(self, request: web.Request) -> web.Response:
        body = await request.read()
        await self._signed(request, body)
        settings = p.parse_settings(p.parse_json(body, what="settings"))
        async with self.lock:
            applied = self.state.apply_settings(settings)
        log.info("settings v%d applied: pre %ds, post %ds, officer %s, %s", applied["version"],
                 applied["pre_record_s"], applied["post_record_s"], applied["officer"], applied["assignment"])
        return web.json_response({"settings": applied})

    async def h_sim_record(self, request: web.Request) -> web.Response:
        body = p.parse_json(await request.read() or b"{}", what="record request")
        seconds, filler = body.get("seconds", 5), body.get("filler_mb", 0)
        if not isinstance(seconds, (int, float)) or not 0 < seconds <= 3600 or not isinstance(filler, (int, float)):
            raise p.ProtocolError("seconds must be a number in (0, 3600], filler_mb a number")
        return web.json_response(await self.record(float(seconds), float(filler)))

    async def h_sim_faults(self, request: web.Request) -> web.Response:
        if request.method == "PUT":
            before = self.faults.bad_txt
            changes = p.parse_json(await request.read(), what="faults")
            if "impostor_of" in changes:  # it names the advertisement: fixed for the process's life
                raise p.ProtocolError("impostor_of is set at the start (--impostor-of)")
            self.faults.update(changes)
            self._cuts = 0
            log.info("faults now %s", asdict(self.faults))
            if self.faults.bad_txt != before:
                await self.readvertise()
        return web.json_response(asdict(self.faults))

    async def h_sim_stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats)


def lock_state(state_dir: Path):
    """One simulator per state directory."""
    Path(state_dir).mkdir(parents=True, exist_ok=True)
    handle = open(Path(state_dir) / "lock", "w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise KluisError(f"another camera simulator is running on {state_dir}") from None
    return handle


def drifting_clock(drift_s: float) -> Clock:
    offset = timedelta(seconds=drift_s)
    return lambda: system_clock() + offset


async def run(state: CameraState, **options) -> None:
    """Run until SIGTERM or SIGINT, then withdraw the advertisement (goodbye) and stop."""
    sim = Simulator(state, **options)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await sim.start()
        await stop.wait()
    finally:
        log.info("stopping")
        await sim.stop()


def request_recording(state_dir: Path, seconds: float, filler_mb: float = 0, wait: float | None = None) -> str | None:
    """Drop a "record now" request into DIR/requests for the running simulator; with `wait`, wait that
    many seconds for it to be made and return the recording id."""
    folder = Path(state_dir) / "requests"
    if not (Path(state_dir) / "camera.json").exists():
        raise KluisError(f"{state_dir} is not a camera state directory")
    folder.mkdir(exist_ok=True)
    name = f"{time.time_ns()}-{secrets.token_hex(3)}"
    write_atomic(folder / f"{name}.json", p.canonical({"seconds": seconds, "filler_mb": filler_mb}))
    if wait is None:
        return None
    done = folder / f"{name}.done"
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if done.exists():
            result = json.loads(done.read_text())
            done.unlink()
            if "error" in result:
                raise KluisError(f"the camera could not record: {result['error']}")
            return result["id"]
        time.sleep(0.05)
    raise KluisError(f"no camera simulator picked up the request within {wait:g} s "
                     f"(is `kluis camera-sim --state {state_dir}` running?)")


def setup_logging(serial: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)s camera {serial}: %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
