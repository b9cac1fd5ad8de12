"""The Axis W800 simulator: a body-worn system controller (SCU) that uploads recordings to a content destination.

Test and demo equipment. It is the CLIENT side of the Axis Body Worn Content Destination API, a small subset
of OpenStack Swift (github.com/AxisCommunications/body-worn-integration-api, README.md); Kluis plays the
content destination (the server, elsewhere in appliance/axis/). It imports nothing of the box except
`dock.footage` (real, playable clips) and `KluisError`, so that it tests the box's side from the outside,
as a real W800 would.

What it does, in the order a W800 does it:

    read the connection file     JSON from the content destination: URIs, pinned certificates, credentials,
                                 container type, encryption key (`load_connection`, `ssl_context`)
    GET  <AuthenticationTokenURI> X-Auth-User / X-Auth-Key -> X-Auth-Token, X-Storage-Url
    GET  System/Capabilities.json its Etag must be the MD5 of the body ("object corrupt" otherwise)
    PUT  System/<system id>      if StoreReadSystemID: binds this W800 to that content destination
    GET  System/Categories.json  if ReadCategories: the category bookmarks' names and IDs
    PUT  Users/<user uuid>, Devices/<serial>
    per recording                PUT <container>; POST its metadata (Status Transferring); per clip the key
                                 object (with encryption) and the clip; the GNSS track; bookmarks; POST
                                 Status Complete

Every request that can be repeated is: 503 (busy), 507 (out of space) and a lost connection are retried
with exponential backoff within a time budget, a 401 gets one fresh token. A 400 means "never storable":
the recording stops there and its result says so.

Clips are streamed, never read whole: a 512 MiB clip costs a few MiB of memory, encrypted or not. The ETag
header (the MD5 of the body as sent) must go before the body, so each clip is read twice: once to hash it
(encrypting if so, in a worker thread), once to send it. A clip sent with an ETag must be answered with that
Etag (the destination checked it); one sent without (`send_etag=False`) may be answered with none, as the
Axis reference server does: an Etag that does come is checked against the MD5 taken while sending.

State under the state directory, so that a rerun is the same W800:

    DIR/system.json   system id, connection id, system name, SCU serial
    DIR/users.json    user key (their ID, else their name) -> the user's UUID
    DIR/cameras.json  serial -> the end of its latest recording: a camera's next recording starts later
    DIR/spool/        one-shot clip streams copied to disk while their recording uploads (a W800, too,
                      holds a recording on its own disk until the upload is done)
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import http.client
import json
import logging
import os
import secrets
import ssl
import sys
import time
import uuid
from collections.abc import AsyncIterable, Iterable, Iterator, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import quote, urlsplit

import aiohttp
from yarl import URL

from appliance.errors import KluisError

from .clips import ClipSource, probe_seconds
from .protocol import (AxisSimError, CAPABILITIES, check_connection, container_name, Corrupt, _CutOnPurpose,
                       encode_metadata, _etag, FIRMWARE, GaveUp, load_public_key, md5_hex, MODEL, NeverStorable,
                       SERIAL_PREFIX, ssl_context, TIME_ZONE, Unauthorized, _Unreachable, USER_AGENT, utc)
from .recording import _Body, Bookmark, _close, _hash_body, _Recording, RecordingResult, _Reply

log = logging.getLogger("kluis.axis-sim")


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except ValueError:
        raise KluisError(f"W800 simulator state file damaged: {path}") from None


class W800Simulator:
    """One Axis W800 system controller talking to one content destination.

        async with W800Simulator(load_connection("conn.json"), "state") as w800:   # connect() ... close()
            user = await w800.register_user("J. Jansen", "1001")
            await w800.register_device("B8A44F000001", "AXIS W101")
            result = await w800.upload_recording(user, "B8A44F000001", [clip], trigger_on, 2, 2)

    Fault knobs (each off by default):
        wrong_credentials     authenticate with a wrong BlobAPIKey
        wrong_system_id       register a new System ID instead of the one in DIR/system.json (not saved)
        malformed_metadata    a TriggerOnTime that is no number, a TriggerOnLocation of "%zz" (bad encoding)
        complete_before_clips POST Status Complete right after creating the container, then go on
        cut_mid_clip          drop the connection halfway through a clip this many times (True: once), then
                              retry the whole clip as a W800 does
        key_after_clip        PUT each key object after its clip instead of before
    """

    def __init__(self, connection: dict, state_dir: str | os.PathLike, *, serial_prefix: str = SERIAL_PREFIX,
                 system_name: str = "W800 simulator", time_zone: str = TIME_ZONE,
                 retry_budget_s: float = 120.0, max_backoff_s: float = 5.0, first_backoff_s: float = 0.2,
                 timeout_s: float = 120.0, send_etag: bool = True, check_etag: bool = True,
                 wrong_credentials: bool = False, wrong_system_id: bool = False,
                 malformed_metadata: bool = False, complete_before_clips: bool = False,
                 cut_mid_clip: int | bool = 0, key_after_clip: bool = False):
        self.conn = check_connection(connection)
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.time_zone = time_zone
        self.retry_budget_s = retry_budget_s
        self.max_backoff_s = max_backoff_s
        self.first_backoff_s = first_backoff_s
        self.timeout_s = timeout_s
        self.send_etag = send_etag  # False: no hashing pass; the reply's Etag is checked against the stream
        self.check_etag = check_etag  # False (with send_etag False): no hashing at all, the reply is trusted
        self.wrong_credentials = wrong_credentials
        self.wrong_system_id = wrong_system_id
        self.malformed_metadata = malformed_metadata
        self.complete_before_clips = complete_before_clips
        self.cuts_left = int(cut_mid_clip)
        self.key_after_clip = key_after_clip
        self.container_type: str = self.conn["ContainerType"]
        self.public_key = load_public_key(self.conn["PublicKey"]) if self.conn["WantEncryption"] else None

        system = _read_json(self.state_dir / "system.json")
        if not system:
            system = {"system_id": str(uuid.uuid4()), "connection_id": str(uuid.uuid4()),
                      "system_name": system_name, "scu_serial": serial_prefix + secrets.token_hex(3).upper()}
            _write_json(self.state_dir / "system.json", system)
        self.system = system
        self.system_id: str = str(uuid.uuid4()) if wrong_system_id else system["system_id"]
        self.scu_serial: str = system["scu_serial"]
        self.capabilities: dict[str, dict[str, bool]] = {}
        self.categories: list[dict] = []  # System/Categories.json, with the ReadCategories capability
        self.devices: dict[str, str] = {}  # serial -> model, of the devices registered in this run
        self.storage_url: str | None = None
        self._token: str | None = None
        self._auth_lock = asyncio.Lock()
        self._ssl = ssl_context(self.conn["HTTPSCertificate"])
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> W800Simulator:
        try:
            await self.connect()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    # -- connecting

    async def connect(self) -> None:
        """Authenticate, read the capabilities, register the System ID if the destination stores it."""
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self._ssl if self._ssl is not None else True),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=min(self.timeout_s, 15),
                                              sock_read=self.timeout_s),
                headers={"User-Agent": USER_AGENT}, auto_decompress=False)
        await self._authenticate()
        self.capabilities = await self._read_capabilities()
        log.info("connected to %s; capabilities %s", self.storage_url,
                 ", ".join(sorted(n for g in self.capabilities.values() for n, on in g.items() if on)) or "none")
        if self.capable("StoreReadSystemID"):
            meta = {"ConnectionId": self.system["connection_id"], "SystemName": self.system["system_name"]}
            await self._request("PUT", f"System/{self.system_id}", headers=encode_metadata("Object", meta),
                                body=_Body.of(b"", "application/octet-stream"), ok=(201,))
        if self.capable("ReadCategories"):
            self.categories = await self._read_categories()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def capable(self, name: str) -> bool:
        for group, names in CAPABILITIES.items():
            if name in names:
                return self.capabilities.get(group, {}).get(name) is True
        return False

    async def _authenticate(self) -> None:
        """GET the token URIs in turn until one answers; back off and go round again within the budget."""
        key = self.conn["BlobAPIKey"] + ("-wrong" if self.wrong_credentials else "")
        headers = {"X-Auth-User": self.conn["BlobAPIUserName"], "X-Auth-Key": key}
        deadline, delay = time.monotonic() + self.retry_budget_s, self.first_backoff_s
        while True:
            trouble = []
            for uri in self.conn["AuthenticationTokenURI"]:
                try:
                    reply = await self._attempt("GET", uri, headers, None)
                except _Unreachable as exc:
                    trouble.append(f"{uri}: {exc}")
                    continue
                if reply.status == 401:
                    raise Unauthorized(f"the content destination refused the credentials ({uri})", 401)
                if reply.status in (503, 507):
                    trouble.append(f"{uri}: {reply.status}")
                    continue
                token, url = reply.headers.get("X-Auth-Token"), reply.headers.get("X-Storage-Url")
                if reply.status != 200 or not token or not url:
                    raise AxisSimError(f"authentication at {uri} answered {reply.status} without a token "
                                       f"and storage URL", reply.status)
                self._token, self.storage_url = token, url.rstrip("/")
                return
            if time.monotonic() + delay > deadline:
                raise GaveUp(f"could not authenticate: {'; '.join(trouble)}")
            log.info("authentication failed (%s); again in %.1f s", "; ".join(trouble), delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.max_backoff_s)

    async def _read_capabilities(self) -> dict[str, dict[str, bool]]:
        everything = {group: {name: True for name in names} for group, names in CAPABILITIES.items()}
        reply = await self._request("GET", "System/Capabilities.json", ok=(200, 404))
        if reply.status == 404:
            found = {}
        else:
            if _etag(reply.headers) != md5_hex(reply.data):
                raise Corrupt("System/Capabilities.json: object corrupt (its Etag is not the MD5 of its body)")
            try:
                parsed = json.loads(reply.data)
                found = {group: {name: value is True for name, value in parsed.get(group, {}).items()}
                         for group in CAPABILITIES}
            except (ValueError, AttributeError):
                log.warning("System/Capabilities.json is malformed: every capability counts as unsupported")
                found = {}
        # FullStoreAndReadSupport: a standard Swift store, which supports whatever a W800 may store or read.
        return everything if self.conn["FullStoreAndReadSupport"] else found

    async def _read_categories(self) -> list[dict]:
        """[{"Name": ..., "Id": ...}]; none when missing, corrupt or malformed (a real W800 then falls back to
        its default categories, which a simulator does not have)."""
        reply = await self._request("GET", "System/Categories.json", ok=(200, 404))
        if reply.status == 404:
            return []
        if _etag(reply.headers) != md5_hex(reply.data):
            log.warning("System/Categories.json: object corrupt (its Etag is not the MD5 of its body)")
            return []
        with contextlib.suppress(ValueError):
            found = json.loads(reply.data)
            if isinstance(found, list) and all(isinstance(c, dict) and "Name" in c and "Id" in c for c in found):
                return found
        log.warning("System/Categories.json is malformed: no categories")
        return []

    def category_id(self, name: str) -> str | None:
        """The Id of the destination's category with this name, if it published one."""
        return next((str(c["Id"]) for c in self.categories if c["Name"] == name), None)

    # -- users and devices

    async def register_user(self, name: str, user_id: str | None = None) -> str:
        """PUT Users/<uuid>; returns the user's UUID (the same for the same user ID, or name, across runs)."""
        users_file = self.state_dir / "users.json"
        users = _read_json(users_file)
        key = f"id:{user_id}" if user_id else f"name:{name}"
        if key not in users:
            users[key] = str(uuid.uuid4())
            _write_json(users_file, users)
        user_uuid = users[key]
        meta = {"Active": "True", "Name": name}
        if user_id and self.capable("StoreUserIDKey"):
            meta["UserID"] = user_id
        await self._request("PUT", f"Users/{user_uuid}", headers=encode_metadata("Object", meta),
                            body=_Body.of(b"", "application/octet-stream"), ok=(201,))
        return user_uuid

    async def register_device(self, serial: str, model: str = MODEL, name: str | None = None) -> None:
        meta = {"Active": "True", "Name": name or serial, "Model": model}
        await self._request("PUT", f"Devices/{serial}", headers=encode_metadata("Object", meta),
                            body=_Body.of(b"", "application/octet-stream"), ok=(201,))
        self.devices[serial] = model

    # -- recordings

    async def upload_recording(self, user_uuid: str, serial: str,
                               clips: Sequence[ClipSource | str | os.PathLike | bytes | Iterable[bytes]
                                               | AsyncIterable[bytes]],
                               trigger_on: datetime, pre_s: float = 0, post_s: float = 0, *,
                               bookmarks: Sequence[Bookmark] = (), gnss: bool = True,
                               clip_seconds: float | Sequence[float] | None = None, model: str | None = None,
                               firmware: str = FIRMWARE, trigger_on_reason: str = "Button",
                               trigger_off_reason: str = "Button") -> RecordingResult:
        """Upload one recording: its clips back to back, the first starting `pre_s` before `trigger_on`, the
        trigger off `post_s` before the last one ends. A clip is a path, bytes, a ClipSource, or an iterable
        (sync or async) of bytes with a len(); one-shot streams are spooled to DIR/spool first. A clip's
        length: `clip_seconds` (one for all, or one each), else the ClipSource's, else probed, else 10 s;
        rounded to whole seconds, as the names and metadata are. Failures of the destination end up in the
        result (`error`, `status`); a ValueError or TypeError means the call itself was wrong."""
        if not clips:
            raise ValueError("a recording has at least one clip")
        on = utc(trigger_on)
        model = model or self.devices.get(serial, MODEL)
        result = RecordingResult(container_name(user_uuid, serial, on))
        spool = self.state_dir / "spool" / secrets.token_hex(6)
        try:
            sources = [await self._clip_source(clip, spool) for clip in clips]
            if isinstance(clip_seconds, (int, float)) or clip_seconds is None:
                wanted = [clip_seconds] * len(sources)
            else:
                wanted = list(clip_seconds)
                if len(wanted) != len(sources):
                    raise ValueError("clip_seconds has another length than clips")
            lengths = []
            for source, seconds in zip(sources, wanted):
                seconds = seconds or source.seconds
                media = source.path or source.data
                if seconds is None and media is not None:
                    seconds = await asyncio.to_thread(probe_seconds, media)
                lengths.append(max(1, round(seconds or 10)))
            start = on - timedelta(seconds=round(pre_s))
            stop = start + timedelta(seconds=sum(lengths))
            off = stop - timedelta(seconds=round(post_s))
            if off < on:
                raise ValueError(f"the clips ({sum(lengths)} s) are shorter than pre_s + post_s")
            self._note_recording(serial, stop)
            recording = _Recording(self, result, serial, user_uuid, model, firmware, on, off, start, stop,
                                   trigger_on_reason, trigger_off_reason)
            await recording.upload(sources, lengths, list(bookmarks), gnss)
        except AxisSimError as exc:
            result.error, result.status = str(exc), exc.status
            log.warning("%s: %s", result.container, exc)
        finally:
            if spool.exists():
                for path in spool.iterdir():
                    path.unlink()
                spool.rmdir()
        return result

    def camera_free_from(self, serial: str) -> datetime | None:
        """When the camera's latest recording (of any run on this state directory) ended, if it made one: a
        camera records one thing at a time, and two recordings in the same second would share a container."""
        stop = _read_json(self.state_dir / "cameras.json").get(serial)
        return datetime.fromtimestamp(stop, timezone.utc) if stop is not None else None

    def _note_recording(self, serial: str, stop: datetime) -> None:
        cameras = _read_json(self.state_dir / "cameras.json")
        cameras[serial] = max(cameras.get(serial, 0), int(stop.timestamp()))
        _write_json(self.state_dir / "cameras.json", cameras)

    async def _clip_source(self, clip, spool: Path) -> ClipSource:
        if isinstance(clip, ClipSource):
            return clip
        if isinstance(clip, (str, os.PathLike)):
            return ClipSource.from_path(clip)
        if isinstance(clip, (bytes, bytearray, memoryview)):
            return ClipSource.from_bytes(clip)
        try:
            size = len(clip)
        except TypeError:
            raise TypeError("a clip is a path, bytes, a ClipSource or an iterable of bytes with a len()") from None
        if isinstance(clip, Iterable) and not isinstance(clip, Iterator):  # can be read again: a list, say
            return ClipSource(size, lambda: iter(clip))
        # A one-shot stream cannot be hashed and then sent, nor sent again: keep it on disk meanwhile.
        spool.mkdir(parents=True, exist_ok=True)
        path = spool / f"clip-{secrets.token_hex(4)}"
        written = 0
        with open(path, "wb") as f:
            if isinstance(clip, AsyncIterable):
                async for chunk in clip:
                    await asyncio.to_thread(f.write, chunk)
                    written += len(chunk)
            else:
                for chunk in clip:
                    f.write(chunk)
                    written += len(chunk)
        if written != size:
            raise ValueError(f"a clip stream gave {written} bytes, its len() said {size}")
        return ClipSource.from_path(path)

    # -- HTTP

    def _url(self, name: str) -> str:
        return f"{self.storage_url}/{quote(name, safe='/')}"

    async def _attempt(self, method: str, url: str, headers: dict, body: _Body | None,
                       md5=None, may_cut: bool = False) -> _Reply:
        """One request, no retries. _Unreachable if no HTTP answer came."""
        assert self._session is not None, "connect() first"
        headers = dict(headers)
        data = None
        cut: list[bool] = []  # the stream notes here that it cut this attempt
        if body is not None:
            headers["Content-Length"] = str(body.size)
            headers["Content-Type"] = body.content_type
            if body.md5 is not None:
                headers["ETag"] = body.md5
            data = body.small if body.small is not None else self._stream(body, md5, may_cut, cut)
        if body is not None and body.small is None and not (may_cut and self.cuts_left > 0):
            # A clip goes out on a blocking TLS socket in a worker thread: one C call encrypts and sends
            # each MiB (asyncio's TLS layer costs the box's shared CPU several times more per byte).
            return await asyncio.to_thread(self._attempt_blocking, method, url, headers, body, md5)
        try:
            async with self._session.request(method, URL(url, encoded=True), headers=headers,
                                             data=data) as response:
                reply = _Reply(response.status, response.headers, await response.read())
            if cut:  # the server answered before the cut (an early 401, say): that cut did not count
                self.cuts_left += 1
            return reply
        except aiohttp.ClientSSLError as exc:  # never retried: the destination is not the one pinned
            raise AxisSimError(f"TLS with {url.split('/')[2]} failed (is its certificate the one in the "
                               f"connection file?): {exc}") from None
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            if isinstance(exc.__cause__, AxisSimError):  # the body itself failed (a clip changed on disk)
                raise exc.__cause__ from None
            cause = " (cut on purpose)" if isinstance(exc.__cause__, _CutOnPurpose) else ""
            raise _Unreachable(f"{type(exc).__name__}: {exc}{cause}") from exc

    def _attempt_blocking(self, method: str, url: str, headers: dict, body: _Body, md5) -> _Reply:
        """_attempt for a large body, in a worker thread: the same request on http.client."""
        parts = urlsplit(url)
        if parts.hostname is None:
            raise AxisSimError(f"no host in {url!r}")
        conn: http.client.HTTPConnection
        if parts.scheme == "https":
            conn = http.client.HTTPSConnection(parts.hostname, parts.port or 443, timeout=self.timeout_s,
                                               context=self._ssl or ssl.create_default_context())
        else:
            conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=self.timeout_s)
        sent = 0
        try:
            conn.putrequest(method, parts.path + (f"?{parts.query}" if parts.query else ""),
                            skip_accept_encoding=True)
            for name, value in {**headers, "User-Agent": USER_AGENT}.items():
                conn.putheader(name, value)
            conn.endheaders()
            chunks = body.chunks()
            try:
                for chunk in chunks:
                    if md5 is not None:
                        md5.update(chunk)
                    sent += len(chunk)
                    if sent > body.size:
                        raise AxisSimError(f"a clip grew while being sent (more than {body.size} bytes)")
                    conn.send(chunk)
            except OSError:  # the destination may have answered before it took the body (400, 507): read it
                try:
                    response = conn.getresponse()
                except (OSError, http.client.HTTPException):
                    raise _Unreachable("the connection broke while the clip was sent") from None
                return _Reply(response.status, response.headers, response.read())
            finally:
                _close(chunks)
            if sent != body.size:
                raise AxisSimError(f"a clip shrank while being sent ({sent} of {body.size} bytes)")
            response = conn.getresponse()
            return _Reply(response.status, response.headers, response.read())
        except ssl.SSLCertVerificationError as exc:  # never retried: the destination is not the one pinned
            raise AxisSimError(f"TLS with {parts.netloc} failed (is its certificate the one in the "
                               f"connection file?): {exc}") from None
        except (OSError, http.client.HTTPException) as exc:
            raise _Unreachable(f"{type(exc).__name__}: {exc}") from exc
        finally:
            conn.close()

    async def _stream(self, body: _Body, md5, may_cut: bool, cut: list[bool]):
        """The body a chunk at a time; reading (and encrypting, and hashing) runs in a worker thread, so
        that ten large uploads at once leave the event loop free. `may_cut`: stop halfway if the
        cut_mid_clip fault has a cut left (and say so in `cut`)."""
        chunks = body.chunks()
        half, sent = body.size // 2, 0

        def pull() -> bytes | None:
            chunk = next(chunks, None)
            if chunk is not None and md5 is not None:
                md5.update(chunk)
            return chunk

        try:
            while (chunk := await asyncio.to_thread(pull)) is not None:
                if may_cut and self.cuts_left > 0 and sent + len(chunk) >= half:
                    self.cuts_left -= 1
                    cut.append(True)
                    if half > sent:
                        yield chunk[: half - sent]
                    await asyncio.sleep(0.05)  # let the half reach the server before the connection goes
                    raise _CutOnPurpose()
                sent += len(chunk)
                if sent > body.size:
                    raise AxisSimError(f"a clip grew while being sent (more than {body.size} bytes)")
                yield chunk
            if sent != body.size:
                raise AxisSimError(f"a clip shrank while being sent ({sent} of {body.size} bytes)")
        finally:
            with contextlib.suppress(ValueError):  # ValueError: a worker is still inside it (cancelled)
                _close(chunks)

    async def _request(self, method: str, name: str, *, headers: dict | None = None, body: _Body | None = None,
                       ok: tuple[int, ...], tally: RecordingResult | None = None, may_cut: bool = False,
                       etag: str = "if_present") -> _Reply:
        """A request to the storage URL, retried as a W800 does. Returns the reply (its status in `ok`),
        raises AxisSimError otherwise. `etag`, for a request with a body: "required" (a clip: the reply's
        Etag must be the MD5 of the body as sent), "if_present" (checked when the reply has one) or "no"."""
        deadline, delay = time.monotonic() + self.retry_budget_s, self.first_backoff_s
        fresh_token, last_status = False, None
        while True:
            token = self._token
            # hashed while sent, unless the W800 is told not to check (a benchmark of the box alone)
            md5 = hashlib.md5() if body is not None and body.md5 is None and self.check_etag else None
            try:
                reply = await self._attempt(method, self._url(name), {**(headers or {}), "X-Auth-Token": token},
                                            body, md5, may_cut)
            except _Unreachable as exc:
                why, last_status = str(exc), None
            else:
                if reply.status == 401 and not fresh_token:
                    log.info("%s %s: 401, authenticating again", method, name)
                    await self._reauthenticate(token)
                    fresh_token = True
                    continue
                if reply.status not in (503, 507):
                    if tally is not None:
                        tally.statuses.append((method, name, reply.status))
                    sent_md5 = md5.hexdigest() if md5 is not None else body.md5 if body is not None else None
                    checked = etag if body is not None and (sent_md5 is not None or self.check_etag) else "no"
                    return self._judge(method, name, reply, ok, sent_md5, checked)
                why, last_status = f"{reply.status} {'busy' if reply.status == 503 else 'out of space'}", reply.status
                with contextlib.suppress(ValueError):  # Retry-After in seconds, if the server gives one
                    delay = max(delay, min(float(reply.headers.get("Retry-After", "")), self.max_backoff_s))
            if time.monotonic() + delay > deadline:
                if tally is not None:
                    tally.statuses.append((method, name, last_status or 0))
                raise GaveUp(f"{method} {name}: gave up after {self.retry_budget_s:g} s ({why})", last_status)
            if tally is not None:
                tally.retries += 1
            log.info("%s %s: %s; again in %.1f s", method, name, why, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.max_backoff_s)

    @staticmethod
    def _judge(method: str, name: str, reply: _Reply, ok: tuple[int, ...], sent_md5: str | None,
               etag: str) -> _Reply:
        detail = reply.data[:200].decode("utf-8", "replace").strip()
        detail = f": {detail}" if detail else ""
        if reply.status == 400:
            raise NeverStorable(f"{method} {name}: 400, never storable{detail}", 400)
        if reply.status == 401:
            raise Unauthorized(f"{method} {name}: 401 with a fresh token{detail}", 401)
        if reply.status not in ok:
            raise AxisSimError(f"{method} {name}: {reply.status}{detail}", reply.status)
        got = _etag(reply.headers)
        if (etag == "required" or (etag == "if_present" and got)) and got != sent_md5:
            raise Corrupt(f"{method} {name}: object corrupt (Etag {got or 'missing'}, sent MD5 {sent_md5})",
                          reply.status)
        return reply

    async def _reauthenticate(self, stale_token: str | None) -> None:
        async with self._auth_lock:  # one new token for every request that saw the old one expire
            if self._token == stale_token:
                await self._authenticate()

    async def _put_object(self, container: str, name: str, meta: dict, body: _Body, result: RecordingResult,
                          *, clip: bool = False) -> None:
        """PUT an object of a recording. A clip: cut by the cut_mid_clip fault, and when it went with an ETag
        its reply must carry that Etag (the destination checked the body); otherwise, and for other objects,
        an Etag is checked when present."""
        if self.send_etag and body.md5 is None:
            body.md5 = await asyncio.to_thread(_hash_body, body)
        await self._request("PUT", f"{container}/{name}", headers=encode_metadata("Object", meta), body=body,
                            ok=(201,), tally=result, may_cut=clip,
                            etag="required" if clip and body.md5 is not None else "if_present")
        result.objects.append(name)


def setup_logging(verbose: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s axis-sim: %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.DEBUG if verbose else logging.INFO)
    log.propagate = False
