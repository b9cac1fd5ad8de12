"""The Axis content destination API's names, metadata and documents: what is valid, nothing stored.

Everything a W800 sends is checked here before anything else looks at it: object and container names
against the spec's patterns (no path tricks can pass: the patterns allow no '/', '.' runs or '%'),
metadata values URL-decoded strictly and bounded in length, and the documents (capabilities, categories,
GNSS tracks) built or parsed. A violation is an `AxisError` carrying the HTTP status the spec asks for.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Literal, Mapping, overload
from urllib.parse import unquote_to_bytes

from ..errors import KluisError

CONNECTION_FILE_VERSION = "1.0"
CONNECTION_FILE_MAX = 64 * 1024  # the spec's limit for the whole file

SYSTEM, USERS, DEVICES = "System", "Users", "Devices"

# Bounds of what one request may carry (the clip itself is bounded by [axis] max_clip_mb and the disk).
MAX_SMALL_BODY = 4 * 1024  # users, devices, system objects (empty in the spec), key objects
MAX_BOOKMARK_BODY = 64 * 1024
MAX_GNSS_BODY = 8 * 1024 * 1024
MAX_META_TOTAL = 16 * 1024  # all metadata headers of one request together

_UUIDISH = r"[A-Za-z0-9][A-Za-z0-9-]{0,63}"
_SERIAL = r"[A-Za-z0-9][A-Za-z0-9-]{0,31}"
_STEM = r"\d{8}_\d{6}_[A-Za-z0-9]{1,16}"
ACCOUNT_RE = re.compile(r"^AUTH_([a-z0-9][a-z0-9-]{0,47})$")
SYSTEM_ID_RE = USER_RE = re.compile(rf"^{_UUIDISH}$")
SERIAL_RE = re.compile(rf"^{_SERIAL}$")
RECORDING_RE = re.compile(rf"^(?P<user>{_UUIDISH})_(?P<serial>{_SERIAL})_(?P<on>\d{{8}}T\d{{6}}Z)$")
CLIP_RE = re.compile(rf"^(?P<stem>{_STEM})\.(?P<ext>mkv|mp4)$")
GNSS_RE = re.compile(rf"^(?P<stem>{_STEM}_[A-Za-z0-9-]{{1,32}}_gpstrail)\.json$")
KEY_RE = re.compile(rf"^(?P<target>{_STEM}(_[A-Za-z0-9-]{{1,32}}_gpstrail)?(\.(mkv|mp4|json))?)\.key$")
BOOKMARK_RE = re.compile(r"^bookmark_[0-9A-Za-z:.+-]{1,40}_[A-Za-z0-9-]{1,64}$")
REJECTED_RE = re.compile(r"^RejectedContent_")

# Longest decoded value per metadata key, in bytes. The spec says 32 bytes unless noted, and notes
# longer ones (names, locations); real names (ContainerName, time zones) are longer than 32, so the
# default is generous while still bounded.
META_LIMITS = {"name": 100, "systemname": 100, "connectionid": 100, "userid": 100, "containername": 160,
               "triggeronlocation": 64, "triggerofflocation": 64, "startlocation": 64, "stoplocation": 64,
               "tags": 512, "categoryname": 100}
META_DEFAULT_LIMIT = 64


class AxisError(KluisError):
    """A request the destination refuses, with the status code the spec names for it."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Target:
    """What a request's path names inside an account."""
    kind: str  # system, system_id, user, device, recording, clip, key, bookmark, gnss, account, container
    container: str | None = None
    name: str | None = None

    @property
    def container_name(self) -> str:
        """The container, for the kinds that name one."""
        if self.container is None:
            raise AxisError(400, f"a path to the {self.kind} names no container")
        return self.container

    @property
    def object_name(self) -> str:
        """The object's name, for the kinds that name one."""
        if self.name is None:
            raise AxisError(400, f"a path to the {self.kind} names no object")
        return self.name


def parse_target(container: str | None, obj: str | None) -> Target:
    """Classify a container/object pair of the path, refusing anything outside the spec's names."""
    if not container:
        return Target("account")
    if container == SYSTEM:
        if obj is None:
            return Target("system", container)
        if obj in ("Capabilities.json", "Capability.json", "Categories.json"):
            return Target("system_doc", container, obj)
        if SYSTEM_ID_RE.match(obj):
            return Target("system_id", container, obj)
    elif container == USERS:
        if obj is None:
            return Target("container", container)
        if USER_RE.match(obj):
            return Target("user", container, obj)
    elif container == DEVICES:
        if obj is None:
            return Target("container", container)
        if SERIAL_RE.match(obj):
            return Target("device", container, obj)
    elif RECORDING_RE.match(container):
        if obj is None:
            return Target("recording", container)
        for kind, pattern in (("clip", CLIP_RE), ("key", KEY_RE), ("bookmark", BOOKMARK_RE), ("gnss", GNSS_RE)):
            if pattern.match(obj):
                return Target(kind, container, obj)
    elif REJECTED_RE.match(container):
        raise AxisError(403, "rejected content is not taken (StoreRejectedContent is not offered)")
    what = f"{container}/{obj}" if obj is not None else container
    raise AxisError(400, f"not a name of the Axis API: {what[:120]!r}")


def decode_value(key: str, raw: str) -> str:
    """One metadata value: strict percent-decoding, UTF-8, no control characters, bounded length."""
    if re.search(r"%(?![0-9A-Fa-f]{2})", raw):
        raise AxisError(400, f"metadata {key}: not URL-encoded (a '%' without two hex digits)")
    data = unquote_to_bytes(raw)
    limit = META_LIMITS.get(key.lower(), META_DEFAULT_LIMIT)
    if len(data) > limit:
        raise AxisError(400, f"metadata {key}: {len(data)} bytes, at most {limit}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise AxisError(400, f"metadata {key}: not UTF-8") from None
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise AxisError(400, f"metadata {key}: control characters")
    return text


def metadata(headers: Mapping[str, str], kind: str) -> dict[str, str]:
    """The X-{Object|Container}-Meta-* headers of a request, decoded, keyed as the spec spells them
    in lower case ('triggerontime')."""
    prefix = f"x-{kind}-meta-"
    meta: dict[str, str] = {}
    total = 0
    for name, raw in headers.items():
        lower = name.lower()
        if not lower.startswith(prefix) or len(lower) == len(prefix):
            continue
        total += len(name) + len(raw)
        if total > MAX_META_TOTAL:
            raise AxisError(400, "metadata: too large")
        key = lower[len(prefix):]
        meta[key] = decode_value(key, raw)
    return meta


def matched(pattern: re.Pattern[str], text: str, what: str) -> re.Match[str]:
    """`pattern` on a name the parsing of the path accepted already; AxisError 400 should it not match."""
    match = pattern.match(text)
    if match is None:
        raise AxisError(400, f"not a {what}: {text[:120]!r}")
    return match


@overload
def parse_epoch(meta: Mapping[str, str], key: str, *, required: Literal[True] = True) -> datetime: ...
@overload
def parse_epoch(meta: Mapping[str, str], key: str, *, required: bool) -> datetime | None: ...
def parse_epoch(meta: Mapping[str, str], key: str, *, required: bool = True) -> datetime | None:
    """A time from its epoch field, or else from its ISO twin ('TriggerOnTime' / 'TriggerOnTimeISO')."""
    raw = meta.get(key.lower())
    if raw not in (None, ""):
        try:
            seconds = float(raw)
        except ValueError:
            raise AxisError(400, f"metadata {key}: not a time in epoch seconds: {raw[:40]!r}") from None
        if not 946684800 <= seconds <= 4102444800:  # 2000 .. 2100: the spec's "timestamp out of bounds"
            raise AxisError(400, f"metadata {key}: time out of bounds")
        return datetime.fromtimestamp(seconds, timezone.utc)
    iso = meta.get(f"{key.lower()}iso")
    if iso:
        try:
            moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
        except ValueError:
            raise AxisError(400, f"metadata {key}ISO: not an RFC 3339 time: {iso[:40]!r}") from None
        if moment.tzinfo is None:
            raise AxisError(400, f"metadata {key}ISO: a time without its zone")
        return moment.astimezone(timezone.utc)
    if required:
        raise AxisError(400, f"metadata {key}: missing")
    return None


def parse_rfc3339(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.astimezone(timezone.utc) if moment.tzinfo else None


def parse_bool(text: str | None) -> bool | None:
    if text is None:
        return None
    return text.strip().lower() in ("true", "1", "yes")


CAPABILITIES = {
    "Read": {"ReadCategories": True},
    "Store": {"StoreUserIDKey": True, "StoreBookmarks": True, "StoreGNSSTrackRecording": True,
              # The clip's bytes are kept unchanged (sealed as they came), so a signed video still verifies.
              "StoreSignedVideo": True, "StoreRejectedContent": False},
    "StoreAndRead": {"StoreReadSystemID": True},
}


def json_document(value) -> tuple[bytes, str]:
    """A JSON body and its Etag (the MD5 of the body, hex, as the W800 checks it)."""
    body = json.dumps(value, indent=2).encode()
    return body, hashlib.md5(body).hexdigest()


# Swift clients known to compare the Etag a PUT is answered with against the MD5 they computed of the body
# (python-swiftclient: SwiftService.upload, `swift upload`), by the start of their User-Agent. They skip
# that check when no Etag comes back, so for them the box computes the MD5 unasked.
ETAG_CHECKERS = ("python-swiftclient",)


def wants_md5(headers: Mapping[str, str]) -> bool:
    """Whether a clip's MD5 is computed: its PUT carries an ETag to check (a mismatch is 422, as in Swift),
    or comes from a client known to check the answer's. Not for a W800: the Axis spec asks for no hash of
    a clip, and its reference server answers a clip with no Etag (docs/axis.md, "Hashes")."""
    if headers.get("ETag") is not None:  # even a malformed one: it is checked, and cannot match (422)
        return True
    return (headers.get("User-Agent") or "").startswith(ETAG_CHECKERS)


def categories_document(categories: Mapping[str, int]) -> list[dict]:
    """The W800's category list: the box's retention categories, so an officer's choice on the camera
    sets the recording's retention category on arrival."""
    return [{"Name": name, "Id": name} for name in sorted(categories)]


_WKT_POINT = re.compile(r"^\s*POINT\s*\(\s*(-?\d{1,3}(?:\.\d+)?)\s+(-?\d{1,2}(?:\.\d+)?)\s*\)\s*$", re.I)


def parse_gnss(body: bytes) -> list[dict]:
    """The points of a GNSS track: [{"lat", "lon", "seconds", "time"}]. Refuses what is not the spec's JSON."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise AxisError(400, "GNSS track: not JSON") from None
    entries = doc.get("CoordinateEntries") if isinstance(doc, dict) else None
    if not isinstance(entries, list):
        raise AxisError(400, "GNSS track: no CoordinateEntries list")
    points = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("LocationWKT"), str):
            raise AxisError(400, "GNSS track: an entry without LocationWKT")
        match = _WKT_POINT.match(entry["LocationWKT"])
        if not match:
            raise AxisError(400, f"GNSS track: not a WKT point: {entry['LocationWKT'][:60]!r}")
        lon, lat = float(match.group(1)), float(match.group(2))
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            raise AxisError(400, "GNSS track: a point outside the earth")
        seconds = entry.get("SecondsFromStart")
        if seconds is not None and not isinstance(seconds, (int, float)):
            raise AxisError(400, "GNSS track: SecondsFromStart is not a number")
        points.append({"lat": lat, "lon": lon, "seconds": seconds,
                       "time": str(entry.get("Timestamp") or "")[:40] or None})
    return points


_LOCATION = re.compile(r"^([+-]\d{1,2}(?:\.\d+)?)([+-]\d{1,3}(?:\.\d+)?)")


def parse_location(text: str | None) -> tuple[float, float] | None:
    """Latitude and longitude from the spec's `<lat><long><accuracy><epoch>` (ISO 6709 style), or None."""
    if not text:
        return None
    match = _LOCATION.match(text.strip())
    if not match:
        return None
    lat, lon = float(match.group(1)), float(match.group(2))
    if -90 <= lat <= 90 and -180 <= lon <= 180:
        return lat, lon
    return None
