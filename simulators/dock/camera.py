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
import hashlib
import io
import ipaddress
import json
import logging
import os
import secrets
import signal
import socket
import struct
import sys
import time
from dataclasses import asdict, dataclass, fields
from datetime import timedelta
from pathlib import Path
from typing import Callable

from aiohttp import web
from nacl.public import PrivateKey
from nacl.signing import SigningKey

from ..clock import Clock, system_clock, to_iso
from ..container import Encryptor, parse_header
from ..errors import KluisError
from ..vault import fsync_dir
from . import protocol as p
from .footage import make_mp4

log = logging.getLogger("kluis.camera")

MODEL = "Kluis-Sim"
FIRMWARE = "1.0.0"
MAX_WRONG_CODES = 5  # then a new code is drawn: guessing online is hopeless
REQUEST_POLL_S = 0.2
SERVE_BLOCK = 1024 * 1024
DEFAULT_SETTINGS = {"version": 0, "pre_record_s": 30, "post_record_s": 30, "officer": None,
                    "assignment": "personal"}


# --- durable little files -------------------------------------------------------------------------------


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write, fsync, rename, fsync the directory: after a crash the file is either old or new."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except ValueError:
        raise KluisError(f"camera state file damaged: {path}") from None


# --- footage source --------------------------------------------------------------------------------------


class _FootageSource(io.RawIOBase):
    """The MP4 bytes, then optionally an MP4 `free` box of filler (players skip it): lets a benchmark make
    recordings of any size without encoding hours of video, in bounded memory."""

    def __init__(self, mp4: bytes, filler: int = 0):
        self._parts: list[tuple[bytes, int]] = [(mp4, len(mp4))]
        if filler:
            filler = max(filler, 16)
            head = (struct.pack(">I4s", filler, b"free") if filler < 2**32
                    else struct.pack(">I4sQ", 1, b"free", filler))
            self._parts += [(head, len(head)), (b"", filler - len(head))]  # b"": that many zero bytes
        self._part, self._pos = 0, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        view, done = memoryview(buf), 0
        while done < len(view) and self._part < len(self._parts):
            data, length = self._parts[self._part]
            n = min(len(view) - done, length - self._pos)
            if data:
                view[done : done + n] = data[self._pos : self._pos + n]
            else:
                view[done : done + n] = bytes(n)
            done, self._pos = done + n, self._pos + n
            if self._pos == length:
                self._part, self._pos = self._part + 1, 0
        return done


# --- the camera's state (files only; no asyncio, no HTTP) ------------------------------------------------


class CameraState:
    """Everything a camera keeps, under one directory. Not thread-safe: the server serializes changes."""

    def __init__(self, state_dir: Path, serial: str | None = None, model: str = MODEL, fw: str = FIRMWARE,
                 clock: Clock = system_clock):
        self.dir = Path(state_dir)
        self.clock = clock  # the camera's clock (drift included)
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "recordings").mkdir(exist_ok=True)
        (self.dir / "requests").mkdir(exist_ok=True)
        info = _read_json(self.dir / "camera.json")
        if info is None:
            if serial is None:
                raise KluisError(f"{self.dir} is not a camera state directory (start `kluis camera-sim "
                                 f"--serial SERIAL --state {self.dir}` once)")
            if not p.SERIAL_RE.match(serial):
                raise KluisError(f"serial {serial!r} is not valid (A-Z, 0-9 and '-', at most 32)")
            info = {"serial": serial, "model": model, "fw": fw, "next_seq": 1}
            write_atomic(self.dir / "camera.key", bytes(SigningKey.generate()), 0o600)
            write_atomic(self.dir / "holding.key", bytes(PrivateKey.generate()), 0o600)
            write_atomic(self.dir / "camera.json", p.canonical(info))
        elif serial is not None and serial != info["serial"]:
            raise KluisError(f"{self.dir} holds camera {info['serial']}, not {serial}")
        self.info = info
        self.serial: str = info["serial"]
        self.model: str = info["model"]
        self.fw: str = info["fw"]
        self.key = SigningKey((self.dir / "camera.key").read_bytes())
        self.holding = PrivateKey((self.dir / "holding.key").read_bytes())
        self.pairing: dict | None = _read_json(self.dir / "pairing.json")
        self.replay = p.ReplayCache.from_json(_read_json(self.dir / "replay.json") or {})
        self._cleanup()

    # -- pairing and settings

    @property
    def paired(self) -> bool:
        return self.pairing is not None

    @property
    def box_key(self) -> str | None:
        return self.pairing["box_key"] if self.pairing else None

    @property
    def settings(self) -> dict:
        return self.pairing["settings"] if self.pairing else dict(DEFAULT_SETTINGS)

    def recipients(self) -> list[bytes]:
        if self.pairing:
            return [bytes.fromhex(k) for k in self.pairing["recipients"]]
        return [bytes(self.holding.public_key)]

    def pair(self, pairing: dict) -> int:
        """Store the pairing durably, then re-seal the recordings made while unpaired. Returns how many."""
        if self.pairing is not None:
            raise p.ProtocolError("this camera is already paired (unpair it first)", 409, "already_paired")
        stored = {k: pairing[k] for k in ("box_key", "box_name", "recipients", "settings")}
        stored["paired_at"] = to_iso(self.clock())
        write_atomic(self.dir / "pairing.json", p.canonical(stored))
        self.pairing = stored
        self.replay = p.ReplayCache()
        self.save_replay()
        return self._rewrap_held()

    def unpair(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.dir / "pairing.json").unlink()
        fsync_dir(self.dir)
        self.pairing = None

    def apply_settings(self, settings: dict) -> dict:
        if self.pairing is None:
            raise p.ProtocolError("this camera is not paired", 403, "not_paired")
        p.check_settings_newer(self.settings["version"], settings)
        updated = {**self.pairing, "settings": settings}
        write_atomic(self.dir / "pairing.json", p.canonical(updated))
        self.pairing = updated
        return settings

    def save_replay(self) -> None:
        write_atomic(self.dir / "replay.json", p.canonical(self.replay.to_json()))

    # -- recordings

    def _path(self, recording_id: str, ext: str) -> Path:
        if not p.RECORDING_ID_RE.match(recording_id):
            raise p.ProtocolError(f"not a recording id: {recording_id[:80]!r}", 404, "not_found")
        return self.dir / "recordings" / f"{recording_id}.{ext}"

    def entries(self) -> list[dict]:
        found = [_read_json(path) for path in (self.dir / "recordings").glob("*.json")]
        return sorted((e for e in found if e), key=lambda e: (e["start"], e["id"]))

    def entry(self, recording_id: str) -> dict:
        entry = _read_json(self._path(recording_id, "json"))
        if entry is None:
            raise p.ProtocolError(f"no recording {recording_id}", 404, "not_found")
        return entry

    def open_recording(self, recording_id: str) -> tuple[dict, bytes, Path]:
        """(entry, header bytes, payload path) of one recording."""
        entry = self.entry(recording_id)
        try:
            return entry, self._path(recording_id, "header").read_bytes(), self._path(recording_id, "payload")
        except FileNotFoundError:  # deleted in the meantime
            raise p.ProtocolError(f"no recording {recording_id}", 404, "not_found") from None

    def make_recording(self, seconds: float, filler_mb: float = 0) -> dict:
        """An incident that just ended on the camera clock: `pre_record_s` before the button, `seconds`
        of incident, `post_record_s` after. The MP4 exists only in memory; the container is durable (and
        listed) before this returns."""
        settings = self.settings
        pre, post = settings["pre_record_s"], settings["post_record_s"]
        now = self.clock()
        end = now.replace(microsecond=now.microsecond // 1000 * 1000)  # the protocol's millisecond times
        start = end - timedelta(seconds=pre + seconds + post)
        seq = self.info["next_seq"]
        recording_id = f"{self.serial}-{start:%Y%m%dT%H%M%S}-{seq:04d}"
        self.info["next_seq"] = seq + 1
        write_atomic(self.dir / "camera.json", p.canonical(self.info))  # never reuse an id

        entry = {"id": recording_id, "start": to_iso(start), "end": to_iso(end), "pre_record_s": pre,
                 "post_record_s": post, "officer": settings["officer"]}
        mp4 = io.BytesIO()
        make_mp4(mp4, pre + seconds + post, start, self.serial)
        source = _FootageSource(mp4.getvalue(), int(filler_mb * 1024 * 1024))
        del mp4
        encryptor = Encryptor(self.recipients(), metadata=p.recording_metadata(self.serial, entry))
        digest = hashlib.sha256(encryptor.header.raw)
        payload_path = self._path(recording_id, "payload")
        tmp = payload_path.with_name(payload_path.name + ".part")
        size = len(encryptor.header.raw)
        with open(tmp, "wb") as f:
            for chunk in encryptor.chunks(source):
                f.write(chunk)
                digest.update(chunk)
                size += len(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, payload_path)
        write_atomic(self._path(recording_id, "header"), encryptor.header.raw)
        entry = p.manifest_entry(recording_id, size, digest.hexdigest(), entry["start"], entry["end"], pre,
                                 post, entry["officer"])
        write_atomic(self._path(recording_id, "json"), p.canonical(entry))
        return entry

    def delete_recording(self, recording_id: str, sha256: str) -> dict:
        entry = self.entry(recording_id)
        if entry["sha256"] != sha256:
            raise p.ProtocolError(f"recording {recording_id} has another sha256 than the box names; kept",
                                  409, "sha256_mismatch")
        self._path(recording_id, "json").unlink()  # first: from now on it is not listed
        for ext in ("header", "payload"):
            with contextlib.suppress(FileNotFoundError):
                self._path(recording_id, ext).unlink()
        fsync_dir(self.dir / "recordings")
        return entry

    def _rewrap_held(self) -> int:
        """Re-seal recordings made while unpaired (sealed to the holding key) to the box's recipients."""
        mine, count = bytes(self.holding.public_key), 0
        for entry in self.entries():
            header = parse_header(self._path(entry["id"], "header").read_bytes())
            if header.recipients != [mine]:
                continue
            new = header.rewrap(header.unwrap(self.holding), self.recipients())
            digest = hashlib.sha256(new.raw)
            with open(self._path(entry["id"], "payload"), "rb") as f:
                while block := f.read(SERVE_BLOCK):
                    digest.update(block)
            write_atomic(self._path(entry["id"], "header"), new.raw)
            entry = {**entry, "size": entry["size"] - header.size + new.size, "sha256": digest.hexdigest()}
            write_atomic(self._path(entry["id"], "json"), p.canonical(entry))
            count += 1
        return count

    def _cleanup(self) -> None:
        """Drop what a crash left half-made: parts, and headers/payloads without their entry."""
        folder = self.dir / "recordings"
        complete = {path.stem for path in folder.glob("*.json")}
        for path in folder.iterdir():
            if path.name.endswith((".part", ".tmp")) or path.name.split(".")[0] not in complete:
                path.unlink()


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

    def update(self, changes: dict) -> None:
        names = {f.name for f in fields(self)}
        unknown = set(changes) - names
        if unknown:
            raise p.ProtocolError(f"unknown fault(s): {', '.join(sorted(unknown))}")
        if changes.get("bad_txt") not in (None, "oversized", "malformed"):
            raise p.ProtocolError("bad_txt is null, 'oversized' or 'malformed'")
        for name, value in changes.items():
            setattr(self, name, value)


def txt_properties(state: CameraState, faults: Faults) -> dict[str, str] | bytes:
    props = p.build_txt(state.serial, state.model, state.fw, state.key, state.paired)
    if faults.bad_txt == "oversized":
        return {**props, **{f"junk{i}": "x" * 240 for i in range(4)}}  # ~1 KB: over the 512-byte limit
    if faults.bad_txt == "malformed":
        bad = {**props, "serial": "cam 001!", "paired": "maybe"}
        return b"".join(bytes([len(item)]) + item for item in
                        [f"{k}={v}".encode() for k, v in bad.items()] + ["model=Kamera\u00e9".encode()])
    return props


# --- addresses -------------------------------------------------------------------------------------------


def choose_addresses(interfaces: list[str] = (), addresses: list[str] = ()) -> list[str]:
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

    def __init__(self, state: CameraState, port: int = 0, bind: str = "0.0.0.0", addresses: list[str] = (),
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
        self._zc = None
        self._info = None
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

        return AsyncServiceInfo(
            p.SERVICE_TYPE, f"{self.state.serial}.{p.SERVICE_TYPE}", port=self.port,
            properties=txt_properties(self.state, self.faults),
            server=f"{self.state.serial.lower()}-camera.local.",
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
        if not self._registered:
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
        text = (f"pairing code: {self.code}\n" if not self.state.paired
                else f"paired with {self.state.pairing['box_name']} ({p.key_fingerprint(self.state.box_key)})\n")
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
        s = self.state
        return web.json_response(p.build_info(s.serial, s.model, s.fw, s.key, s.paired, s.box_key, s.clock(),
                                              s.settings["version"]))

    async def h_pair(self, request: web.Request) -> web.Response:
        body = p.parse_json(await request.read(), what="pair request")
        async with self.lock:
            if self.state.paired:
                raise p.ProtocolError("this camera is already paired (unpair it first)", 409, "already_paired")
            try:
                # In a thread: the pairing key is Argon2id (~50 ms); serving goes on meanwhile.
                pairing = await asyncio.to_thread(p.verify_pair_request, body, self.code, self.state.serial)
            except p.ProtocolError as exc:
                if exc.code == "wrong_code":
                    self.wrong_codes += 1
                    if self.wrong_codes >= MAX_WRONG_CODES:
                        log.warning("%d wrong pairing codes: drawing a new one", self.wrong_codes)
                        self.new_code()
                raise
            code = self.code
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
                    data = bytearray(data)
                    data[flip - pos] ^= 0x01
                    data = bytes(data)
                if cut is not None and record["sent"] + len(data) >= cut:
                    data = data[: cut - record["sent"]]
                    await resp.write(data)
                    record["sent"] += len(data)
                    self._cuts += 1
                    log.info("fault: cutting %s after %d bytes", entry["id"], record["sent"])
                    # close, not abort: the N bytes still in the send buffer go out, then FIN before
                    # Content-Length is reached, so the box sees a broken transfer of exactly N bytes.
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
            self.faults.update(p.parse_json(await request.read(), what="faults"))
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
