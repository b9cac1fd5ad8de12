"""The box's end of the dock protocol for one camera: its HTTP requests, box-signed where the protocol
asks, and the camera's answers parsed and checked (appliance/dock/protocol.py). Used by the offload
(offload.py) and by pairing (pairing.py)."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta

import aiohttp
from nacl.signing import SigningKey

from ..box import Box
from ..errors import KluisError
from . import protocol
from .protocol import API_PREFIX, ProtocolError


class DockError(KluisError):
    """The camera did not answer, or answered with an error: try again later."""

    def __init__(self, message: str, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code


class Offline(DockError):
    """The camera does not answer its info: it left the dock (or the network)."""


class NotThere(Offline):
    """Something else answers at the camera's proven address (another serial or key): the paired camera
    is not there. The manager alerts once per episode and looks for the camera at its claimed addresses."""

    def __init__(self, message: str, alert: str):
        super().__init__(message)
        self.alert = alert



class CameraClient:
    """The box's end of the dock protocol for one paired (or pairing) camera."""

    def __init__(self, http: aiohttp.ClientSession, box: Box, serial: str, address: str, port: int,
                 camera_key: str | None = None, signing_key: SigningKey | None = None):
        self.http = http
        self.box = box
        self.serial = serial
        self.base = f"http://{address}:{port}"
        self.camera_key = camera_key
        self.signing_key = signing_key or box.signing_key()

    def _paired_key(self) -> str:
        """The camera's key, which what it signs is checked against: known once it is paired."""
        if self.camera_key is None:
            raise KluisError(f"camera {self.serial} is not paired: its signed answers cannot be checked")
        return self.camera_key

    def _signed(self, method: str, path: str, body: bytes = b"") -> dict[str, str]:
        return protocol.sign_request(self.signing_key, method, path, body, self.box.clock())

    async def _json(self, method: str, path: str, *, body: bytes | None = None, signed: bool = False,
                    limit: int = protocol.MAX_JSON_BODY, what: str = "response") -> tuple[dict, dict]:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if signed:
            headers.update(self._signed(method, path, body or b""))
        try:
            async with self.http.request(method, self.base + path, data=body, headers=headers) as resp:
                raw = await _read_limited(resp, limit, what)
                if resp.status != 200:
                    code, text = _error_of(raw)
                    raise DockError(f"{self.serial}: {method} {path}: HTTP {resp.status}: {text}", resp.status, code)
                return protocol.parse_json(raw, limit, what), headers
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise DockError(f"{self.serial} at {self.base}: {method} {path}: {why_of(exc)}") from None

    async def info(self) -> tuple[dict, datetime]:
        """The camera's info and the box's clock at the middle of the exchange (for the offset)."""
        t0 = time.monotonic()
        before = self.box.clock()
        obj, _ = await self._json("GET", f"{API_PREFIX}/info", what="info")
        midpoint = before + timedelta(seconds=(time.monotonic() - t0) / 2)
        return protocol.parse_info(obj), midpoint

    async def manifest(self) -> dict:
        path = f"{API_PREFIX}/manifest"
        obj, sent = await self._json("GET", path, signed=True, limit=protocol.MAX_MANIFEST_BODY, what="manifest")
        return protocol.verify_manifest(obj, self._paired_key(), self.serial, sent[protocol.H_NONCE])

    async def delete(self, recording_id: str, sha256: str) -> dict | None:
        """The camera's signed confirmation; None if it no longer had the recording (a repeated delete)."""
        path = f"{API_PREFIX}/recordings/{recording_id}"
        body = protocol.build_delete(recording_id, sha256)
        try:
            obj, _ = await self._json("DELETE", path, body=body, signed=True, what="delete confirmation")
        except DockError as exc:
            if exc.status == 404:
                return None
            raise
        return protocol.verify_deleted(obj, self._paired_key(), self.serial, recording_id, sha256)

    async def put_settings(self, settings: dict) -> dict:
        body = protocol.canonical(settings)
        obj, _ = await self._json("PUT", f"{API_PREFIX}/settings", body=body, signed=True, what="settings")
        return obj

    async def pair(self, request: dict) -> dict:
        obj, _ = await self._json("POST", f"{API_PREFIX}/pair", body=protocol.canonical(request), what="pairing")
        return obj

    async def unpair(self) -> dict:
        obj, _ = await self._json("DELETE", f"{API_PREFIX}/pair", body=b"", signed=True, what="unpair")
        return obj

    def recording(self, recording_id: str, start: int):
        """The GET for a recording's bytes from `start` (an aiohttp request context manager)."""
        path = f"{API_PREFIX}/recordings/{recording_id}"
        headers = self._signed("GET", path)
        if start:
            headers["Range"] = f"bytes={start}-"
        return self.http.get(self.base + path, headers=headers)


async def _read_limited(resp: aiohttp.ClientResponse, limit: int, what: str) -> bytes:
    if resp.content_length is not None and resp.content_length > limit:
        raise ProtocolError(f"{what} too large ({resp.content_length} bytes, limit {limit})", 413, "too_large")
    data = bytearray()
    async for block in resp.content.iter_any():
        data += block
        if len(data) > limit:
            raise ProtocolError(f"{what} too large (over {limit} bytes)", 413, "too_large")
    return bytes(data)


def _error_of(raw: bytes) -> tuple[str | None, str]:
    """(code, message) of a camera's error body; tolerant, since this is already the failure path."""
    try:
        error = protocol.parse_json(raw)["error"]
        return str(error["code"])[:40], str(error["message"])[:200]
    except (KluisError, KeyError, TypeError):
        return None, raw[:200].decode("utf-8", "replace")


def error_text(raw: bytes) -> str:
    return _error_of(raw)[1]


def why_of(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
