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
(encrypting if so, in a worker thread), once to send it.

State under the state directory, so that a rerun is the same W800:

    DIR/system.json   system id, connection id, system name, SCU serial
    DIR/users.json    user key (their ID, else their name) -> the user's UUID
    DIR/cameras.json  serial -> the end of its latest recording: a camera's next recording starts later
    DIR/spool/        one-shot clip streams copied to disk while their recording uploads (a W800, too,
                      holds a recording on its own disk until the upload is done)
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import http.client
import io
import json
import logging
import os
import secrets
import ssl
import struct
import sys
import time
import uuid
from collections.abc import AsyncIterable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import quote, urlsplit

import aiohttp
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import padding as sym_padding
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from yarl import URL

from ..dock.footage import make_mp4
from ..errors import KluisError

log = logging.getLogger("kluis.axis-sim")

CHUNK = 1024 * 1024
MAX_CONNECTION_FILE = 64 * 1024  # the spec's limit
MODEL = "AXIS W101"
FIRMWARE = "11.6.71"
SERIAL_PREFIX = "B8A44F"  # Axis's MAC prefix, as on the label of a real unit
TIME_ZONE = "Europe/Amsterdam"
USER_AGENT = "AXIS-W800-simulator (Kluis test equipment)"
# The capabilities the spec names, by the group of Capabilities.json they belong in.
CAPABILITIES = {
    "Read": ("ReadCategories",),
    "Store": ("StoreBookmarks", "StoreRejectedContent", "StoreUserIDKey", "StoreSignedVideo",
              "StoreGNSSTrackRecording"),
    "StoreAndRead": ("StoreReadSystemID",),
}
# A walk from the Domplein in Utrecht: where the simulated officer is while recording (lat, lon).
UTRECHT_WALK = [(52.0907, 5.1214), (52.0911, 5.1206), (52.0916, 5.1199), (52.0920, 5.1191), (52.0925, 5.1183)]
LOCATION_ACCURACY_M = 10


# --- errors ----------------------------------------------------------------------------------------------


class AxisSimError(KluisError):
    """An upload step failed. `status`: the HTTP status that ended it (None: no answer at all)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class NeverStorable(AxisSimError):
    """400: the content destination can never store this recording; a W800 marks it "not transferred"."""


class Unauthorized(AxisSimError):
    """401 with a fresh token, or the credentials were refused at authentication."""


class Corrupt(AxisSimError):
    """An Etag that is not the MD5 of the body: "object corrupt" in a real SCU's log."""


class GaveUp(AxisSimError):
    """Still busy, full or unreachable when the retry budget ran out."""


class _Unreachable(Exception):
    """No HTTP answer (refused, reset, timed out): worth another try."""


class _CutOnPurpose(Exception):
    """The cut_mid_clip fault: raised inside the body stream, aiohttp then drops the connection."""


# --- the connection file ---------------------------------------------------------------------------------


def load_connection(path: str | os.PathLike) -> dict:
    """Read and check a connection file (the spec's "Connection API")."""
    raw = Path(path).read_bytes()
    if len(raw) > MAX_CONNECTION_FILE:
        raise KluisError(f"connection file {path} is larger than 64 kB")
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise KluisError(f"connection file {path} is not JSON: {exc}") from None
    return check_connection(data)


def check_connection(data: dict) -> dict:
    """The connection file with its defaults filled in; KluisError if a W800 would refuse it."""
    if not isinstance(data, dict):
        raise KluisError("the connection file is not a JSON object")
    if data.get("ConnectionFileVersion") != "1.0":
        raise KluisError(f"ConnectionFileVersion {data.get('ConnectionFileVersion')!r} is not supported (1.0)")
    uris = data.get("AuthenticationTokenURI")
    if isinstance(uris, str):
        uris = [uris]
    if not uris or not isinstance(uris, list) or len(uris) > 10 or not all(isinstance(u, str) and u for u in uris):
        raise KluisError("AuthenticationTokenURI must be a list of 1 to 10 URIs")
    certs = data.get("HTTPSCertificate") or []
    if not isinstance(certs, list) or len(certs) > 10 or not all(isinstance(c, str) for c in certs):
        raise KluisError("HTTPSCertificate must be a list of at most 10 base64 certificates")
    if not certs and any(u.lower().startswith("https:") for u in uris):
        # The spec: without a certificate the W800 speaks plain HTTP, so it has nothing to check TLS with.
        raise KluisError("the connection file has no HTTPSCertificate, but an https AuthenticationTokenURI")
    for name in ("BlobAPIUserName", "BlobAPIKey"):
        if not isinstance(data.get(name), str) or not data[name]:
            raise KluisError(f"{name} is missing from the connection file")
    container_type = data.get("ContainerType") or "mkv"  # the spec's default
    if container_type not in ("mkv", "mp4"):
        raise KluisError(f"ContainerType {container_type!r} is neither mkv nor mp4")
    want = bool(data.get("WantEncryption", False))
    if want and not (data.get("PublicKey") and data.get("PublicKeyId")):
        raise KluisError("WantEncryption is set, but PublicKey or PublicKeyId is missing")
    checked = {**data, "AuthenticationTokenURI": uris, "HTTPSCertificate": certs,
               "ContainerType": container_type, "WantEncryption": want,
               "FullStoreAndReadSupport": bool(data.get("FullStoreAndReadSupport", False))}
    if want:
        load_public_key(data["PublicKey"])  # refuse a bad key now, not at the first clip
    return checked


def ssl_context(certificates: list[str]) -> ssl.SSLContext | None:
    """A TLS context that trusts exactly the connection file's certificates (None: plain HTTP).

    The content destination's certificate is self-signed and pinned by the connection file, so the name in
    it says nothing (a W800 reaches it by IP or any name): the chain is checked, the host name is not."""
    if not certificates:
        return None
    pems = []
    for text in certificates:
        if "-----BEGIN" in text:  # lenient: a PEM where base64 DER was meant
            pems.append(text)
            continue
        try:
            pems.append(ssl.DER_cert_to_PEM_cert(base64.b64decode(text, validate=True)))
        except ValueError:
            raise KluisError("an HTTPSCertificate is not base64") from None
    try:
        context = ssl.create_default_context(cadata="".join(pems))  # cadata: the system CAs are NOT loaded
    except ssl.SSLError as exc:
        raise KluisError(f"an HTTPSCertificate is not an X.509 certificate: {exc}") from None
    context.check_hostname = False
    context.verify_mode = ssl.CERT_REQUIRED
    # A pinned certificate is trusted as it stands, even a leaf that is not a CA; and a real W800's TLS stack
    # does not apply Python 3.13's strict X.509 checks to a self-made certificate.
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    context.verify_flags &= ~ssl.VERIFY_X509_STRICT
    return context


# --- names, times and metadata (pure) ---------------------------------------------------------------------


class Raw(str):
    """A metadata value sent as it is, not percent-encoded (the malformed_metadata fault)."""


def utc(moment: datetime) -> datetime:
    """Aware UTC, whole seconds (a naive datetime is taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).replace(microsecond=0)


def epoch(moment: datetime) -> str:
    return str(int(utc(moment).timestamp()))


def iso(moment: datetime) -> str:
    """RFC 3339 in UTC, e.g. 2026-12-01T10:00:00Z."""
    return utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def meta_header(kind: str, key: str) -> str:
    """Swift's spelling of a metadata header: all lowercase except the first letter and any letter after a
    hyphen. meta_header("Container", "BWCSerialNumber") == "X-Container-Meta-Bwcserialnumber"."""
    return "-".join(part[:1].upper() + part[1:].lower() for part in f"X-{kind}-Meta-{key}".split("-"))


def encode_metadata(kind: str, metadata: dict[str, str]) -> dict[str, str]:
    """Metadata as headers: values URL-encoded UTF-8 (every reserved character too), Raw values as they are."""
    return {meta_header(kind, key): value if isinstance(value, Raw) else quote(str(value), safe="")
            for key, value in metadata.items()}


def container_name(user_uuid: str, serial: str, trigger_on: datetime) -> str:
    return f"{user_uuid}_{serial}_{utc(trigger_on):%Y%m%dT%H%M%SZ}"


def clip_name(start: datetime, recording_id: str, container_type: str) -> str:
    return f"{utc(start):%Y%m%d_%H%M%S}_{recording_id}.{container_type}"


def clip_key_name(clip: str) -> str:
    """<StartTime>_<RecordingID>.key: the clip's name with .key for its extension."""
    return clip.rsplit(".", 1)[0] + ".key"


def gnss_name(start: datetime, recording_id: str, serial: str) -> str:
    return f"{utc(start):%Y%m%d_%H%M%S}_{recording_id}_{serial}_gpstrail.json"


def gnss_key_name(gnss: str) -> str:
    """The GNSS track's key object: the track's full name plus .key (it has no clip-like stem to share)."""
    return gnss + ".key"


def bookmark_name(timestamp: datetime, bookmark_id: str) -> str:
    return f"bookmark_{iso(timestamp)}_{bookmark_id}"


def location(lat: float, lon: float, accuracy_m: int, moment: datetime) -> str:
    """The spec's <lat><long><accuracy><epoch>, e.g. +52.0907+005.1214+10/1733050800."""
    return f"{lat:+08.4f}{lon:+09.4f}+{accuracy_m}/{epoch(moment)}"


def where(fraction: float) -> tuple[float, float]:
    """The simulated officer's position a fraction of the way through a recording."""
    index = round(min(max(fraction, 0.0), 1.0) * (len(UTRECHT_WALK) - 1))
    return UTRECHT_WALK[index]


def gnss_track(start: datetime, stop: datetime, points: int = 5) -> dict:
    """The location object's body: points along the walk, SecondsFromStart from the recording's StartTime."""
    total = (utc(stop) - utc(start)).total_seconds()
    entries = []
    for i in range(points):
        seconds = round(total * i / max(points - 1, 1))
        lat, lon = where(i / max(points - 1, 1))
        entries.append({"LocationWKT": f"POINT({lon:.6f} {lat:.6f})",  # WKT: x is the longitude
                        "SecondsFromStart": float(seconds),
                        "Timestamp": iso(utc(start) + timedelta(seconds=seconds))})
    return {"CoordinateEntries": entries}


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _etag(headers) -> str:
    """An Etag header without quotes or weak marker, lowercase ('' when absent)."""
    value = headers.get("Etag", "").strip()
    if value.startswith("W/"):
        value = value[2:]
    return value.strip('"').lower()


# --- content encryption ------------------------------------------------------------------------------------


def load_public_key(text: str) -> rsa.RSAPublicKey:
    """The connection file's PublicKey: base64 of a PEM RSA public key (a bare PEM is accepted too)."""
    try:
        pem = text.encode() if "-----BEGIN" in text else base64.b64decode(text, validate=True)
        key = load_pem_public_key(pem)
    except ValueError as exc:
        raise KluisError(f"PublicKey is not a base64 PEM public key: {exc}") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise KluisError("PublicKey is not an RSA key")
    return key


def encrypted_size(plain_size: int) -> int:
    """AES-CBC with PKCS7 always pads: 1 to 16 bytes."""
    return (plain_size // 16 + 1) * 16


class StreamEncryptor:
    """AES-256-CBC with PKCS7 padding over a stream: the padding comes only at the end, so a clip of any size
    is encrypted a chunk at a time."""

    def __init__(self, key: bytes, iv: bytes):
        self._cipher = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
        self._padder = sym_padding.PKCS7(128).padder()

    def update(self, chunk: bytes) -> bytes:
        return self._cipher.update(self._padder.update(chunk))

    def finalize(self) -> bytes:
        return self._cipher.update(self._padder.finalize()) + self._cipher.finalize()


@dataclass(frozen=True)
class ContentKey:
    """One object's content encryption key and IV (a new pair per clip and per GNSS track)."""

    key: bytes
    iv: bytes

    @classmethod
    def new(cls) -> ContentKey:
        return cls(secrets.token_bytes(32), secrets.token_bytes(16))

    def encrypt(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        encryptor = StreamEncryptor(self.key, self.iv)
        for chunk in chunks:
            if out := encryptor.update(chunk):
                yield out
        yield encryptor.finalize()

    def key_object(self, public_key: rsa.RSAPublicKey, public_key_id: str) -> bytes:
        """The key object's body: the AES key wrapped with RSA-OAEP (SHA-1, as `openssl rsautl -oaep`)."""
        wrapped = public_key.encrypt(self.key, padding.OAEP(mgf=padding.MGF1(hashes.SHA1()),
                                                            algorithm=hashes.SHA1(), label=None))
        return json.dumps({"EncryptedKey": base64.b64encode(wrapped).decode(),
                           "ContentEncryptionIV": base64.b64encode(self.iv).decode(),
                           "PublicKeyId": public_key_id}).encode()


# --- clips -------------------------------------------------------------------------------------------------


def _read_file(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            yield block


def _slices(data: bytes) -> Iterator[bytes]:
    view = memoryview(data)
    for offset in range(0, len(data), CHUNK):
        yield bytes(view[offset : offset + CHUNK])


@dataclass
class ClipSource:
    """A clip's plaintext, readable from the start any number of times: every retry sends the whole clip."""

    size: int
    open: Callable[[], Iterator[bytes]]  # a fresh iterator over the bytes
    seconds: float | None = None  # the clip's length, when known (else probed from `path` or `data`)
    path: Path | None = None
    data: bytes | None = None

    @classmethod
    def from_path(cls, path: str | os.PathLike, seconds: float | None = None) -> ClipSource:
        path = Path(path)
        return cls(path.stat().st_size, lambda: _read_file(path), seconds, path)

    @classmethod
    def from_bytes(cls, data: bytes, seconds: float | None = None) -> ClipSource:
        data = bytes(data)
        return cls(len(data), lambda: _slices(data), seconds, data=data)


def _filler_header(container_type: str, filler: int) -> bytes:
    """The start of a `filler`-byte element that players skip: an MP4 `free` box or a Matroska Void."""
    if container_type == "mp4":
        return (struct.pack(">I4s", filler, b"free") if filler < 2**32
                else struct.pack(">I4sQ", 1, b"free", filler))
    return b"\xec\x01" + (filler - 9).to_bytes(7, "big")  # EBML Void, an 8-byte size (0x01 + 7 bytes)


def padded_clip(data: bytes, filler: int, container_type: str, seconds: float | None = None) -> ClipSource:
    """`data` plus `filler` bytes of an element players skip: clips of any size (benchmarks) without encoding
    minutes of video, and without holding or storing the filler (it is zeros made on the fly)."""
    if filler <= 0:
        return ClipSource.from_bytes(data, seconds)
    filler = max(filler, 16)
    head = _filler_header(container_type, filler)
    zeros = bytes(CHUNK)

    def chunks() -> Iterator[bytes]:
        yield from _slices(data + head)
        left = filler - len(head)
        while left > 0:
            n = min(left, CHUNK)
            yield zeros if n == CHUNK else zeros[:n]
            left -= n

    return ClipSource(len(data) + filler, chunks, seconds)


def remux(mp4: bytes, container_format: str = "matroska") -> bytes:
    """The same H.264 stream in another container, without re-encoding (an mkv W800 records Matroska)."""
    import av  # already loaded by footage; imported here to say where it is used

    out_buf = io.BytesIO()
    with av.open(io.BytesIO(mp4)) as source, av.open(out_buf, "w", format=container_format) as out:
        video = source.streams.video[0]
        stream = out.add_stream_from_template(video)
        for packet in source.demux(video):
            if packet.dts is None:  # the demuxer's end-of-stream marker
                continue
            packet.stream = stream
            out.mux(packet)
    return out_buf.getvalue()


def make_clip(seconds: float, started_at: datetime, label: str = "", container_type: str = "mp4",
              filler_bytes: int = 0) -> ClipSource:
    """A real, playable clip made with footage.make_mp4 (the camera clock burnt in, UTC), remuxed to Matroska
    for an mkv destination, optionally padded to a large size. Only the video itself is held in memory."""
    buf = io.BytesIO()
    make_mp4(buf, seconds, utc(started_at).replace(tzinfo=None), label)
    data = buf.getvalue()
    if container_type == "mkv":
        data = remux(data)
    return padded_clip(data, filler_bytes, container_type, seconds)


def probe_seconds(clip: str | os.PathLike | bytes) -> float | None:
    """A clip's length from its container (a file, or the bytes), or None if PyAV cannot read it."""
    import av

    try:
        with av.open(io.BytesIO(clip) if isinstance(clip, bytes) else str(clip)) as container:
            if container.duration:
                return container.duration / av.time_base
            video = container.streams.video[0]
            if video.duration and video.time_base:
                return float(video.duration * video.time_base)
    except (av.FFmpegError, IndexError, OSError):
        pass
    return None


# --- bodies, replies, results ------------------------------------------------------------------------------


@dataclass
class _Body:
    """A request body that can be sent again from the start (a retry), with its size known beforehand."""

    size: int
    chunks: Callable[[], Iterator[bytes]]
    content_type: str
    md5: str | None = None  # known before sending: then it goes out as the ETag header
    small: bytes | None = None  # the whole body, when it is a few bytes of JSON or text

    @classmethod
    def of(cls, data: bytes, content_type: str) -> _Body:
        return cls(len(data), lambda: iter([data]), content_type, md5_hex(data), data)


@dataclass
class _Reply:
    status: int
    headers: dict
    data: bytes


@dataclass
class Bookmark:
    """A bookmark or category bookmark on a recording (stored only with the StoreBookmarks capability)."""

    text: str = ""  # the free text, the object's body
    category_id: str | None = None
    category_name: str | None = None
    tags: str | None = None  # "key:value;key:value"; default "TriggerOn:<the recording's trigger>"
    start: datetime | None = None  # default: the recording's start
    end: datetime | None = None  # default: none (then no EndTime key)


@dataclass
class RecordingResult:
    """What became of one recording."""

    container: str
    clips: list[str] = field(default_factory=list)  # clip objects stored, in order
    objects: list[str] = field(default_factory=list)  # every object stored (clips, keys, track, bookmarks)
    statuses: list[tuple[str, str, int]] = field(default_factory=list)  # (method, name, final status)
    retries: int = 0
    error: str | None = None
    status: int | None = None  # the HTTP status that stopped the recording (None: none, or no answer)

    @property
    def ok(self) -> bool:
        return self.error is None


# --- the W800 ----------------------------------------------------------------------------------------------


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
                if seconds is None and (source.path or source.data) is not None:
                    seconds = await asyncio.to_thread(probe_seconds, source.path or source.data)
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
        data, cut = None, []  # cut: the stream notes here that it cut this attempt
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
        """PUT an object of a recording. A clip: cut by the cut_mid_clip fault, and its reply must carry the
        Etag of what was sent (the contract); other objects' Etags are checked when present."""
        if self.send_etag and body.md5 is None:
            body.md5 = await asyncio.to_thread(_hash_body, body)
        await self._request("PUT", f"{container}/{name}", headers=encode_metadata("Object", meta), body=body,
                            ok=(201,), tally=result, may_cut=clip, etag="required" if clip else "if_present")
        result.objects.append(name)


def _close(chunks: Iterator[bytes]) -> None:
    """Close a generator early (its file with it); a plain iterator has nothing to close."""
    if (close := getattr(chunks, "close", None)) is not None:
        close()


def _hash_body(body: _Body) -> str:
    """The MD5 of a body as it will be sent (encrypted, if so), and a check that it has the size it claims."""
    md5, size = hashlib.md5(), 0
    chunks = body.chunks()
    try:
        for chunk in chunks:
            md5.update(chunk)
            size += len(chunk)
    finally:
        _close(chunks)
    if size != body.size:
        raise AxisSimError(f"a clip has {size} bytes, not the {body.size} it claimed")
    return md5.hexdigest()


class _Recording:
    """The upload of one recording: names, times and metadata, and the order of the requests."""

    def __init__(self, w800: W800Simulator, result: RecordingResult, serial: str, user_uuid: str, model: str,
                 firmware: str, on: datetime, off: datetime, start: datetime, stop: datetime,
                 trigger_on_reason: str, trigger_off_reason: str):
        self.w = w800
        self.result = result
        self.serial = serial
        self.user_uuid = user_uuid
        self.model = model
        self.firmware = firmware
        self.on, self.off, self.start, self.stop = on, off, start, stop
        self.trigger_on_reason, self.trigger_off_reason = trigger_on_reason, trigger_off_reason
        self.recording_id = secrets.token_hex(2)  # the spec's "short, random number", the same for all clips

    @property
    def container(self) -> str:
        return self.result.container

    def place(self, moment: datetime) -> str:
        span = (self.stop - self.start).total_seconds() or 1
        lat, lon = where((moment - self.start).total_seconds() / span)
        return location(lat, lon, LOCATION_ACCURACY_M, moment)

    def metadata(self, status: str) -> dict[str, str]:
        meta = {
            "ContainerName": self.container, "BWCSerialNumber": self.serial, "SCUSerialNumber": self.w.scu_serial,
            "FirmwareVersion": self.firmware, "UserID": self.user_uuid,
            "TriggerOn": self.trigger_on_reason, "TriggerOff": self.trigger_off_reason,
            "TriggerOnTime": epoch(self.on), "TriggerOnTimeISO": iso(self.on),
            "TriggerOnLocation": self.place(self.on),
            "TriggerOffTime": epoch(self.off), "TriggerOffTimeISO": iso(self.off),
            "TriggerOffLocation": self.place(self.off),
            "StartTime": epoch(self.start), "StartTimeISO": iso(self.start),
            "StopTime": epoch(self.stop), "StopTimeISO": iso(self.stop),
            "TimeZone": self.w.time_zone, "BWCModel": self.model, "Status": status,
        }
        if self.w.malformed_metadata:
            meta["TriggerOnTime"] = "not-a-number"
            meta["TriggerOnLocation"] = Raw("%zz")  # not valid percent-encoding
        return meta

    async def post_metadata(self, status: str) -> None:
        await self.w._request("POST", self.container, headers=encode_metadata("Container", self.metadata(status)),
                              ok=(204,), tally=self.result)

    async def upload(self, sources: list[ClipSource], lengths: list[int], bookmarks: list[Bookmark],
                     gnss: bool) -> None:
        w = self.w
        await w._request("PUT", self.container, body=_Body.of(b"", "application/octet-stream"),
                         ok=(201, 202), tally=self.result)
        await self.post_metadata("Transferring")
        if w.complete_before_clips:
            await self.post_metadata("Complete")
        begin = self.start
        for source, seconds in zip(sources, lengths):
            end = begin + timedelta(seconds=seconds)
            await self.put_clip(source, begin, end)
            begin = end
        if gnss and w.capable("StoreGNSSTrackRecording"):
            await self.put_gnss()
        elif gnss:
            log.info("%s: no StoreGNSSTrackRecording capability, no GNSS track", self.container)
        if bookmarks and w.capable("StoreBookmarks"):
            for number, bookmark in enumerate(bookmarks, 1):
                await self.put_bookmark(bookmark, str(number))
        elif bookmarks:
            log.info("%s: no StoreBookmarks capability, bookmarks left out", self.container)
        await self.post_metadata("Complete")

    def _encrypted(self, size: int, chunks: Callable[[], Iterator[bytes]], content_type: str,
                   key: ContentKey | None) -> _Body:
        if key is None:
            return _Body(size, chunks, content_type)
        return _Body(encrypted_size(size), lambda: key.encrypt(chunks()), "application/octet-stream")

    async def _put_with_key(self, name: str, key_name: str, key_start: datetime, meta: dict, body: _Body,
                            key: ContentKey | None, *, clip: bool = False) -> None:
        """An object and, with encryption, its key object: before it, or after it (key_after_clip)."""
        w = self.w

        async def put_key() -> None:
            data = key.key_object(w.public_key, w.conn["PublicKeyId"])
            await w._put_object(self.container, key_name, {"StartTime": epoch(key_start), "FileType": "key"},
                                _Body.of(data, "application/json"), self.result)

        if key is not None and not w.key_after_clip:
            await put_key()
        await w._put_object(self.container, name, meta, body, self.result, clip=clip)
        if key is not None and w.key_after_clip:
            await put_key()

    async def put_clip(self, source: ClipSource, begin: datetime, end: datetime) -> None:
        w = self.w
        name = clip_name(begin, self.recording_id, w.container_type)
        key = ContentKey.new() if w.public_key is not None else None
        meta = {"StartTime": epoch(begin), "StartTimeISO": iso(begin), "StopTime": epoch(end),
                "StopTimeISO": iso(end), "ContainerType": w.container_type,
                "StartLocation": self.place(begin), "StopLocation": self.place(end)}
        content_type = "video/mp4" if w.container_type == "mp4" else "video/x-matroska"
        body = self._encrypted(source.size, source.open, content_type, key)
        await self._put_with_key(name, clip_key_name(name), begin, meta, body, key, clip=True)
        self.result.clips.append(name)

    async def put_gnss(self) -> None:
        w = self.w
        name = gnss_name(self.start, self.recording_id, self.serial)
        data = json.dumps(gnss_track(self.start, self.stop), indent=2).encode()
        key = ContentKey.new() if w.public_key is not None else None
        body = self._encrypted(len(data), lambda: iter([data]), "application/json", key)
        await self._put_with_key(name, gnss_key_name(name), self.start, {"FileType": "json"}, body, key)

    async def put_bookmark(self, bookmark: Bookmark, number: str) -> None:
        start = utc(bookmark.start) if bookmark.start else self.start
        meta = {}
        if bookmark.category_id is not None:
            meta["CategoryID"] = bookmark.category_id
        if bookmark.category_name is not None:
            meta["CategoryName"] = bookmark.category_name
        meta["Tags"] = bookmark.tags if bookmark.tags is not None else f"TriggerOn:{self.trigger_on_reason}"
        meta["StartTime"] = iso(start)
        if bookmark.end is not None:
            meta["EndTime"] = iso(bookmark.end)
        await self.w._put_object(self.container, bookmark_name(start, number), meta,
                                 _Body.of(bookmark.text.encode("utf-8"), "text/plain; charset=utf-8"), self.result)


def setup_logging(verbose: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s axis-sim: %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.DEBUG if verbose else logging.INFO)
    log.propagate = False
