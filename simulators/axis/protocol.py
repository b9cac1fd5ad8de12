"""The W800 simulator's side of the Axis API: its constants, errors, the connection file and the names and
metadata of the objects it stores (the spec's naming rules, in one place). See simulators/axis/w800.py."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import ssl
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import quote


from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from appliance.errors import KluisError

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
