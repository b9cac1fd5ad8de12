"""The dock protocol, version 1: the messages between a camera (or its dock) and the box, and their
signatures. Shared by both ends; specified in docs/dock-protocol.md. Pure: no sockets, no files.

Trust in one paragraph: at pairing the operator types the 8-digit code the camera shows; both sides MAC
their pairing message with it (HMAC-SHA256), which binds the camera's Ed25519 key to the box's Ed25519 key.
From then on the camera signs every manifest and delete confirmation, and the box signs every request
except `info` and `pair` (method, path, time, nonce, body hash); the camera refuses stale or replayed ones.

Everything signed or MACed is canonical JSON (sorted keys, compact, UTF-8) prefixed with a domain string,
so a signature made for one kind of message can never be passed off as another.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Mapping

import nacl.exceptions
import nacl.pwhash.argon2id as argon2id
from nacl.signing import SigningKey, VerifyKey

from ..clock import from_iso, to_iso
from ..errors import KluisError
from ..keys import fingerprint

SERVICE_TYPE = "_bodycam._tcp.local."
API_PREFIX = "/dock/v1"
PROTOCOL_VERSION = 1

PAIRING_CODE_DIGITS = 8
PAIRING_KDF = (3, 16 * 1024 * 1024)  # Argon2id opslimit, memlimit: ~50 ms, once per side and pairing
MAX_CLOCK_SKEW = timedelta(hours=24)  # a camera's clock may be a day off; the box records the offset
MAX_JSON_BODY = 64 * 1024  # every request and response body except the manifest and recordings
MAX_MANIFEST_BODY = 4 * 1024 * 1024
MAX_RECORDINGS = 10_000  # per manifest
MAX_RECIPIENTS = 16  # as the container format
MAX_RECORDING_SIZE = 1 << 40
MAX_PRE_POST_S = 600
MAX_TXT_SIZE = 512  # the whole TXT record on the wire
MAX_TXT_VALUE = 64
MAX_TXT_KEYS = 16
REPLAY_CACHE_SIZE = 10_000

# Request headers for box-signed requests.
H_TIME = "X-Kluis-Time"
H_NONCE = "X-Kluis-Nonce"
H_SIGNATURE = "X-Kluis-Signature"

SERIAL_RE = re.compile(r"^[A-Z0-9][A-Z0-9-]{0,31}\Z")
RECORDING_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")
SHA256_RE = re.compile(r"^[0-9a-f]{64}\Z")
KEY_RE = re.compile(r"^[0-9a-f]{64}\Z")  # a 32-byte public key, hex
SIG_RE = re.compile(r"^[0-9a-f]{128}\Z")
NONCE_RE = re.compile(r"^[0-9a-f]{32}\Z")  # 16 random bytes, hex
TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\Z", re.ASCII)  # clock.to_iso form
FP_RE = re.compile(r"^[0-9a-f]{4}(:[0-9a-f]{4}){7}\Z")  # keys.fingerprint form
PRINTABLE_RE = re.compile(r"^[\x20-\x7e]*\Z")
CODE_RE = re.compile(r"^\d{8}\Z", re.ASCII)
ASSIGNMENTS = ("personal", "pooled")

# Domain strings: the first line of every signed or MACed message.
D_MANIFEST = "kluis-dock/1 manifest"
D_REQUEST = "kluis-dock/1 request"
D_PAIR_REQUEST = "kluis-dock/1 pair-request"
D_PAIR_RESPONSE = "kluis-dock/1 pair-response"
D_DELETED = "kluis-dock/1 deleted"


class ProtocolError(KluisError):
    """A peer sent something the protocol does not allow. `status` is the HTTP status a camera answers
    with, `code` a short machine-readable reason (see docs/dock-protocol.md, "Errors")."""

    def __init__(self, message: str, status: int = 400, code: str = "malformed"):
        super().__init__(message)
        self.status = status
        self.code = code

    def body(self) -> dict:
        return {"error": {"code": self.code, "message": str(self)}}


# --- canonical JSON ---------------------------------------------------------------------------------


def canonical(value: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8, no NaN: one byte string per value, on both ends."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    result = {}
    for key, value in pairs:
        if key in result:
            raise ProtocolError(f"duplicate JSON key {key!r}")
        result[key] = value
    return result


def _no_constant(name: str):
    raise ProtocolError(f"JSON constant {name} is not allowed")


def parse_json(body: bytes | str, limit: int = MAX_JSON_BODY, what: str = "message") -> dict:
    """A JSON object from a peer: size-limited, UTF-8, no duplicate keys, no NaN/Infinity."""
    if isinstance(body, str):
        body = body.encode("utf-8")
    if len(body) > limit:
        raise ProtocolError(f"{what} too large ({len(body)} bytes, limit {limit})", 413, "too_large")
    try:
        value = json.loads(body.decode("utf-8"), object_pairs_hook=_no_duplicates,
                           parse_constant=_no_constant)
    except UnicodeDecodeError:
        raise ProtocolError(f"{what} is not UTF-8") from None
    except RecursionError:
        raise ProtocolError(f"{what} is nested too deeply") from None
    except ValueError as exc:
        raise ProtocolError(f"{what} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ProtocolError(f"{what} is not a JSON object")
    return value


# --- field checks (a tiny schema language: enough for our few message kinds) ------------------------


def _field(obj: Mapping, name: str, what: str) -> Any:
    if name not in obj:
        raise ProtocolError(f"{what}: missing field {name!r}")
    return obj[name]


def _exact_keys(obj: Any, required: set[str], what: str, optional: set[str] = frozenset()) -> None:
    if not isinstance(obj, dict):
        raise ProtocolError(f"{what} is not a JSON object")
    missing = required - obj.keys()
    if missing:
        raise ProtocolError(f"{what}: missing field(s) {', '.join(sorted(missing))}")
    extra = obj.keys() - required - optional
    if extra:
        raise ProtocolError(f"{what}: unknown field(s) {', '.join(sorted(extra))}")


def _str(obj: Mapping, name: str, what: str, pattern: re.Pattern | None = None, max_len: int = 256,
         nullable: bool = False) -> str | None:
    value = _field(obj, name, what)
    if value is None and nullable:
        return None
    if not isinstance(value, str):
        raise ProtocolError(f"{what}: {name} must be a string")
    if len(value) > max_len:
        raise ProtocolError(f"{what}: {name} longer than {max_len} characters")
    if pattern is not None and not pattern.match(value):
        raise ProtocolError(f"{what}: {name} has an invalid form: {value[:80]!r}")
    return value


def _int(obj: Mapping, name: str, what: str, low: int, high: int) -> int:
    value = _field(obj, name, what)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ProtocolError(f"{what}: {name} must be an integer")
    if not low <= value <= high:
        raise ProtocolError(f"{what}: {name} out of range ({low}..{high})")
    return value


def _time(obj: Mapping, name: str, what: str) -> str:
    value = _str(obj, name, what, TIME_RE, 24)
    try:
        from_iso(value)
    except ValueError:
        raise ProtocolError(f"{what}: {name} is not a valid time") from None
    return value


def _officer(obj: Mapping, name: str, what: str) -> str | None:
    value = _str(obj, name, what, max_len=64, nullable=True)
    if value is not None and (not value.strip() or any(ord(c) < 32 or ord(c) == 127 for c in value)):
        raise ProtocolError(f"{what}: {name} must be a non-empty name without control characters")
    return value


def new_nonce() -> str:
    return secrets.token_hex(16)


def key_hex(key: SigningKey | VerifyKey | bytes) -> str:
    """Hex of a public key (a SigningKey gives its verify key: never the seed)."""
    if isinstance(key, SigningKey):
        key = key.verify_key
    return bytes(key).hex()


def key_fingerprint(key: SigningKey | VerifyKey | bytes | str) -> str:
    raw = bytes.fromhex(key) if isinstance(key, str) else bytes.fromhex(key_hex(key))
    return fingerprint(raw)


def _verify_key(value: VerifyKey | bytes | str) -> VerifyKey:
    if isinstance(value, VerifyKey):
        return value
    try:
        return VerifyKey(bytes.fromhex(value) if isinstance(value, str) else bytes(value))
    except (ValueError, TypeError, nacl.exceptions.CryptoError):
        raise ProtocolError("not an Ed25519 public key", 400, "bad_key") from None


def sign(key: SigningKey, domain: str, payload: Any) -> str:
    """Ed25519 over `domain` + newline + canonical JSON of `payload`; hex."""
    return key.sign(domain.encode() + b"\n" + canonical(payload)).signature.hex()


def verify(public_key: VerifyKey | bytes | str, domain: str, payload: Any, signature: str) -> None:
    if not isinstance(signature, str) or not SIG_RE.match(signature):
        raise ProtocolError("malformed signature", 401, "bad_signature")
    try:
        _verify_key(public_key).verify(domain.encode() + b"\n" + canonical(payload), bytes.fromhex(signature))
    except nacl.exceptions.BadSignatureError:
        raise ProtocolError(f"bad signature on the {domain.split()[-1]}", 401, "bad_signature") from None


# --- TXT record ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TxtRecord:
    serial: str
    model: str
    fw: str
    proto: int
    fp: str  # fingerprint of the camera's Ed25519 key
    paired: bool

    def properties(self) -> dict[str, str]:
        return {"serial": self.serial, "model": self.model, "fw": self.fw, "proto": str(self.proto),
                "fp": self.fp, "paired": "1" if self.paired else "0"}


def build_txt(serial: str, model: str, fw: str, camera_key: SigningKey | VerifyKey | bytes | str,
              paired: bool) -> dict[str, str]:
    """The TXT properties a camera advertises (validated: a camera never advertises what a box refuses)."""
    record = TxtRecord(serial, model, fw, PROTOCOL_VERSION, key_fingerprint(camera_key), paired)
    return parse_txt(record.properties()).properties()


def _txt_text(value: bytes | str | None, key: str) -> str:
    if value is None:
        raise ProtocolError(f"TXT {key} has no value")
    if isinstance(value, bytes):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            raise ProtocolError(f"TXT {key} is not ASCII") from None
    if len(value) > MAX_TXT_VALUE:
        raise ProtocolError(f"TXT {key} longer than {MAX_TXT_VALUE} characters")
    if not PRINTABLE_RE.match(value):
        raise ProtocolError(f"TXT {key} contains control characters")
    return value


def parse_txt(properties: Mapping[bytes | str, bytes | str | None], raw_size: int | None = None) -> TxtRecord:
    """Strictly parse a device's TXT properties (python-zeroconf's `ServiceInfo.properties`, bytes ->
    bytes). `raw_size` is the length of the record on the wire (`len(info.text)`), if known. Unknown keys
    are ignored (later protocol versions may add some), within the key-count and size limits."""
    if raw_size is not None and raw_size > MAX_TXT_SIZE:
        raise ProtocolError(f"TXT record too large ({raw_size} bytes, limit {MAX_TXT_SIZE})", 413, "too_large")
    if len(properties) > MAX_TXT_KEYS:
        raise ProtocolError(f"TXT record has {len(properties)} keys (limit {MAX_TXT_KEYS})", 413, "too_large")
    fields: dict[str, bytes | str | None] = {}
    for key, value in properties.items():
        if isinstance(key, bytes):
            try:
                key = key.decode("ascii")
            except UnicodeDecodeError:
                raise ProtocolError("TXT key is not ASCII") from None
        if not key or len(key) > 9 or not PRINTABLE_RE.match(key):  # RFC 6763 6.4: keys <= 9 chars
            raise ProtocolError(f"TXT key {key[:20]!r} is malformed")
        fields[key.lower()] = value
    values = {}
    for key in ("serial", "model", "fw", "proto", "fp", "paired"):
        if key not in fields:
            raise ProtocolError(f"TXT record lacks {key!r}")
        values[key] = _txt_text(fields[key], key)
    if not SERIAL_RE.match(values["serial"]):
        raise ProtocolError(f"TXT serial {values['serial']!r} is malformed (A-Z, 0-9, '-', at most 32)")
    if not re.fullmatch(r"\d{1,4}", values["proto"]):
        raise ProtocolError(f"TXT proto {values['proto']!r} is not a version number")
    if not FP_RE.match(values["fp"]):
        raise ProtocolError(f"TXT fp {values['fp']!r} is not a key fingerprint")
    if values["paired"] not in ("0", "1"):
        raise ProtocolError(f"TXT paired must be 0 or 1, not {values['paired']!r}")
    return TxtRecord(values["serial"], values["model"], values["fw"], int(values["proto"]), values["fp"],
                     values["paired"] == "1")


# --- info -------------------------------------------------------------------------------------------


def build_info(serial: str, model: str, fw: str, camera_key: SigningKey, paired: bool,
               box_key: str | None, camera_time: datetime, settings_version: int) -> dict:
    return {
        "proto": PROTOCOL_VERSION, "serial": serial, "model": model, "fw": fw,
        "camera_key": key_hex(camera_key), "fp": key_fingerprint(camera_key), "paired": paired,
        "box_fp": key_fingerprint(box_key) if box_key else None, "camera_time": to_iso(camera_time),
        "settings_version": settings_version,
    }


def parse_info(obj: dict) -> dict:
    what = "info"
    _exact_keys(obj, {"proto", "serial", "model", "fw", "camera_key", "fp", "paired", "box_fp",
                      "camera_time", "settings_version"}, what)
    _int(obj, "proto", what, 1, 9999)
    _str(obj, "serial", what, SERIAL_RE)
    _str(obj, "model", what, PRINTABLE_RE, MAX_TXT_VALUE)
    _str(obj, "fw", what, PRINTABLE_RE, MAX_TXT_VALUE)
    _str(obj, "camera_key", what, KEY_RE)
    if _str(obj, "fp", what, FP_RE) != key_fingerprint(obj["camera_key"]):
        raise ProtocolError("info: fp does not match camera_key")
    if not isinstance(obj["paired"], bool):
        raise ProtocolError("info: paired must be true or false")
    _str(obj, "box_fp", what, FP_RE, nullable=True)
    _time(obj, "camera_time", what)
    _int(obj, "settings_version", what, 0, 2**53)
    return obj


# --- settings ----------------------------------------------------------------------------------------


def build_settings(version: int, pre_record_s: int = 30, post_record_s: int = 30, officer: str | None = None,
                   assignment: str = "personal") -> dict:
    return parse_settings({"version": version, "pre_record_s": pre_record_s, "post_record_s": post_record_s,
                           "officer": officer, "assignment": assignment})


def parse_settings(obj: Any) -> dict:
    what = "settings"
    _exact_keys(obj, {"version", "pre_record_s", "post_record_s", "officer", "assignment"}, what)
    _int(obj, "version", what, 1, 2**53)
    _int(obj, "pre_record_s", what, 0, MAX_PRE_POST_S)
    _int(obj, "post_record_s", what, 0, MAX_PRE_POST_S)
    _officer(obj, "officer", what)
    if obj["assignment"] not in ASSIGNMENTS:
        raise ProtocolError(f"settings: assignment must be one of {', '.join(ASSIGNMENTS)}")
    return dict(obj)


def check_settings_newer(current_version: int, new: dict) -> None:
    """Settings versions only go up: an old (or replayed) settings message never undoes a newer one."""
    if new["version"] <= current_version:
        raise ProtocolError(f"settings version {new['version']} is not newer than {current_version}",
                            409, "stale_settings")


# --- pairing -----------------------------------------------------------------------------------------


def new_pairing_code() -> str:
    return f"{secrets.randbelow(10**PAIRING_CODE_DIGITS):0{PAIRING_CODE_DIGITS}d}"


def normalize_code(code: str) -> str:
    """What the operator typed ('1234 5678', '1234-5678') as 8 digits, or ProtocolError."""
    cleaned = re.sub(r"[\s-]", "", str(code))
    if not CODE_RE.match(cleaned):
        raise ProtocolError(f"a pairing code is {PAIRING_CODE_DIGITS} digits", 400, "bad_code")
    return cleaned


@functools.lru_cache(maxsize=16)
def _pairing_key(code: str, serial: str, nonce: str) -> bytes:
    salt = hashlib.sha256(f"kluis-dock/1 pairing\n{serial}\n{nonce}".encode()).digest()[:16]
    return argon2id.kdf(32, code.encode(), salt, opslimit=PAIRING_KDF[0], memlimit=PAIRING_KDF[1])


def pairing_key(code: str, serial: str, nonce: str) -> bytes:
    """The HMAC key of one pairing: Argon2id of the 8-digit code, salted with the serial and the box's
    fresh nonce. Stretching makes an offline search of all 10^8 codes from a recorded exchange cost CPU
    months instead of a minute, far beyond the seconds an attacker in the middle of a pairing has."""
    return _pairing_key(normalize_code(code), serial, nonce)


def pairing_mac(code: str, serial: str, nonce: str, domain: str, payload: dict) -> str:
    """HMAC-SHA256 under `pairing_key` over the domain line and canonical JSON of `payload`."""
    return hmac.new(pairing_key(code, serial, nonce), domain.encode() + b"\n" + canonical(payload),
                    hashlib.sha256).hexdigest()


def _check_mac(code: str, serial: str, nonce: str, domain: str, payload: dict, mac: Any) -> None:
    if not isinstance(mac, str) or not SHA256_RE.match(mac):
        raise ProtocolError("pairing: malformed mac")
    if not hmac.compare_digest(pairing_mac(code, serial, nonce, domain, payload), mac):
        raise ProtocolError("pairing code does not match", 403, "wrong_code")


def build_pair_request(code: str, serial: str, box_key: SigningKey, recipients: list[bytes | str],
                       settings: dict, now: datetime, box_name: str = "kluis") -> dict:
    """The box's POST pair body. MAC'd with the code the camera shows."""
    pairing = {
        "serial": serial, "box_key": key_hex(box_key), "box_name": box_name,
        "recipients": [r if isinstance(r, str) else bytes(r).hex() for r in recipients],
        "settings": settings, "nonce": new_nonce(), "time": to_iso(now),
    }
    _check_pair_request_fields(pairing)
    return {"pairing": pairing, "mac": pairing_mac(code, serial, pairing["nonce"], D_PAIR_REQUEST, pairing)}


def _check_pair_request_fields(pairing: Any) -> None:
    what = "pair request"
    _exact_keys(pairing, {"serial", "box_key", "box_name", "recipients", "settings", "nonce", "time"}, what)
    _str(pairing, "serial", what, SERIAL_RE)
    _str(pairing, "box_key", what, KEY_RE)
    _str(pairing, "box_name", what, PRINTABLE_RE, 64)
    recipients = pairing["recipients"]
    if not isinstance(recipients, list) or not 1 <= len(recipients) <= MAX_RECIPIENTS:
        raise ProtocolError(f"{what}: recipients must be a list of 1 to {MAX_RECIPIENTS} keys")
    if any(not isinstance(r, str) or not KEY_RE.match(r) for r in recipients) or len(set(recipients)) != len(recipients):
        raise ProtocolError(f"{what}: recipients must be distinct 32-byte X25519 keys in hex")
    parse_settings(pairing["settings"])
    _str(pairing, "nonce", what, NONCE_RE)
    _time(pairing, "time", what)


def verify_pair_request(body: dict, code: str, serial: str) -> dict:
    """Camera side: the `pairing` object of a well-formed request MAC'd with our current code, for us."""
    _exact_keys(body, {"pairing", "mac"}, "pair request")
    pairing = body["pairing"]
    _check_pair_request_fields(pairing)
    _check_mac(code, pairing["serial"], pairing["nonce"], D_PAIR_REQUEST, pairing, body["mac"])
    if pairing["serial"] != serial:
        raise ProtocolError(f"pair request is for {pairing['serial']}, not {serial}", 403, "wrong_device")
    return pairing


def build_pair_response(code: str, request: dict, serial: str, camera_key: SigningKey, now: datetime,
                        model: str, fw: str) -> dict:
    """The camera's answer: MAC'd with the code (so the box knows it reached the camera showing it) and
    signed with the camera key it announces (proof of possession)."""
    pairing = {
        "serial": serial, "camera_key": key_hex(camera_key), "box_key": request["box_key"],
        "nonce": request["nonce"], "camera_nonce": new_nonce(), "camera_time": to_iso(now),
        "model": model, "fw": fw,
    }
    return {"pairing": pairing, "mac": pairing_mac(code, request["serial"], request["nonce"], D_PAIR_RESPONSE,
                                                   pairing),
            "signature": sign(camera_key, D_PAIR_RESPONSE, pairing)}


def verify_pair_response(body: dict, code: str, request: dict) -> dict:
    """Box side: check the camera's answer to `request` (the body we sent). Returns its `pairing`."""
    what = "pair response"
    _exact_keys(body, {"pairing", "mac", "signature"}, what)
    pairing = body["pairing"]
    _exact_keys(pairing, {"serial", "camera_key", "box_key", "nonce", "camera_nonce", "camera_time",
                          "model", "fw"}, what)
    _str(pairing, "serial", what, SERIAL_RE)
    _str(pairing, "camera_key", what, KEY_RE)
    _str(pairing, "box_key", what, KEY_RE)
    _str(pairing, "nonce", what, NONCE_RE)
    _str(pairing, "camera_nonce", what, NONCE_RE)
    _time(pairing, "camera_time", what)
    _str(pairing, "model", what, PRINTABLE_RE, MAX_TXT_VALUE)
    _str(pairing, "fw", what, PRINTABLE_RE, MAX_TXT_VALUE)
    sent = request["pairing"]
    _check_mac(code, sent["serial"], sent["nonce"], D_PAIR_RESPONSE, pairing, body["mac"])
    if (pairing["serial"], pairing["box_key"], pairing["nonce"]) != (sent["serial"], sent["box_key"], sent["nonce"]):
        raise ProtocolError("pair response does not answer our request (serial, key or nonce differ)",
                            403, "wrong_device")
    verify(pairing["camera_key"], D_PAIR_RESPONSE, pairing, body["signature"])
    return pairing


# --- manifest ----------------------------------------------------------------------------------------

ENTRY_FIELDS = {"id", "size", "sha256", "start", "end", "pre_record_s", "post_record_s", "officer"}


def manifest_entry(recording_id: str, size: int, sha256: str, start: datetime | str, end: datetime | str,
                   pre_record_s: int, post_record_s: int, officer: str | None) -> dict:
    entry = {"id": recording_id, "size": size, "sha256": sha256,
             "start": start if isinstance(start, str) else to_iso(start),
             "end": end if isinstance(end, str) else to_iso(end),
             "pre_record_s": pre_record_s, "post_record_s": post_record_s, "officer": officer}
    _check_entry(entry)
    return entry


def _check_entry(entry: Any) -> None:
    what = "manifest entry"
    _exact_keys(entry, ENTRY_FIELDS, what)
    _str(entry, "id", what, RECORDING_ID_RE)
    _int(entry, "size", what, 1, MAX_RECORDING_SIZE)
    _str(entry, "sha256", what, SHA256_RE)
    _time(entry, "start", what)
    _time(entry, "end", what)
    if entry["end"] < entry["start"]:
        raise ProtocolError(f"{what} {entry['id']}: ends before it starts")
    _int(entry, "pre_record_s", what, 0, MAX_PRE_POST_S)
    _int(entry, "post_record_s", what, 0, MAX_PRE_POST_S)
    _officer(entry, "officer", what)


def build_manifest(camera_key: SigningKey, serial: str, entries: list[dict], camera_time: datetime,
                   request_nonce: str | None) -> dict:
    """The signed manifest. `request_nonce` echoes the nonce of the box's signed GET, so a recorded old
    manifest cannot be replayed to the box (it would hide newer recordings)."""
    manifest = {"proto": PROTOCOL_VERSION, "serial": serial, "camera_time": to_iso(camera_time),
                "request_nonce": request_nonce, "recordings": entries}
    _check_manifest(manifest)
    return {"manifest": manifest, "signature": sign(camera_key, D_MANIFEST, manifest)}


def _check_manifest(manifest: Any) -> None:
    what = "manifest"
    _exact_keys(manifest, {"proto", "serial", "camera_time", "request_nonce", "recordings"}, what)
    if manifest["proto"] != PROTOCOL_VERSION:
        raise ProtocolError(f"manifest protocol {manifest['proto']!r} is not {PROTOCOL_VERSION}")
    _str(manifest, "serial", what, SERIAL_RE)
    _time(manifest, "camera_time", what)
    _str(manifest, "request_nonce", what, NONCE_RE, nullable=True)
    entries = manifest["recordings"]
    if not isinstance(entries, list) or len(entries) > MAX_RECORDINGS:
        raise ProtocolError(f"manifest: recordings must be a list of at most {MAX_RECORDINGS}")
    seen = set()
    for entry in entries:
        _check_entry(entry)
        if entry["id"] in seen:
            raise ProtocolError(f"manifest lists recording {entry['id']} twice")
        seen.add(entry["id"])


def verify_manifest(body: bytes | dict, camera_key: VerifyKey | bytes | str, serial: str,
                    request_nonce: str | None = None) -> dict:
    """Box side: parse (bytes from the wire or a dict), check the schema, the camera's signature, the
    serial and (when given) the echoed nonce. Returns the manifest object."""
    obj = parse_json(body, MAX_MANIFEST_BODY, "manifest") if isinstance(body, (bytes, str)) else body
    _exact_keys(obj, {"manifest", "signature"}, "manifest")
    manifest = obj["manifest"]
    _check_manifest(manifest)
    verify(camera_key, D_MANIFEST, manifest, obj["signature"])
    if manifest["serial"] != serial:
        raise ProtocolError(f"manifest is from {manifest['serial']}, expected {serial}", 403, "wrong_device")
    if request_nonce is not None and manifest["request_nonce"] != request_nonce:
        raise ProtocolError("manifest does not answer our request (stale or replayed)", 401, "replay")
    return manifest


# --- recording metadata (inside the container header) -------------------------------------------


def recording_metadata(serial: str, entry_or_fields: dict) -> bytes:
    """The container header metadata a camera writes: the manifest fields (without size and hash, which
    are of the container itself) plus the serial, as canonical JSON."""
    meta = {k: entry_or_fields[k] for k in ("id", "start", "end", "pre_record_s", "post_record_s", "officer")}
    meta["serial"] = serial
    return canonical(meta)


def check_recording_metadata(metadata: dict, serial: str, entry: dict) -> None:
    """Box side: the header's metadata must say what the signed manifest says."""
    expected = parse_json(recording_metadata(serial, entry))
    if metadata != expected:
        diff = sorted(k for k in expected.keys() | metadata.keys() if metadata.get(k) != expected.get(k))
        raise ProtocolError(f"container metadata differs from the manifest ({', '.join(diff)})", 422,
                            "metadata_mismatch")


# --- box-signed requests -------------------------------------------------------------------------


def _request_payload(method: str, path: str, time: str, nonce: str, body: bytes) -> dict:
    return {"method": method.upper(), "path": path, "time": time, "nonce": nonce,
            "body_sha256": hashlib.sha256(body).hexdigest()}


def sign_request(box_key: SigningKey, method: str, path: str, body: bytes, now: datetime) -> dict[str, str]:
    """Headers for a box-signed request. `path` is the request target exactly as sent (path and query)."""
    time, nonce = to_iso(now), new_nonce()
    signature = sign(box_key, D_REQUEST, _request_payload(method, path, time, nonce, body))
    return {H_TIME: time, H_NONCE: nonce, H_SIGNATURE: signature}


class ReplayCache:
    """Nonces of accepted requests, bounded. When full, the oldest (by request time) is dropped and its
    time becomes a floor: anything signed at or before the floor is refused, so dropping never reopens
    a replay."""

    def __init__(self, size: int = REPLAY_CACHE_SIZE, floor: str = "", seen: dict[str, str] | None = None):
        self.size = size
        self.floor = floor
        self.seen: dict[str, str] = dict(seen or {})  # nonce -> request time (ISO, sortable)

    def check_and_add(self, nonce: str, time: str, now: datetime) -> None:
        self.expire(now)
        if nonce in self.seen or (self.floor and time <= self.floor):
            raise ProtocolError("request replayed (nonce already used)", 401, "replay")
        self.seen[nonce] = time
        while len(self.seen) > self.size:
            oldest = min(self.seen, key=self.seen.__getitem__)
            self.floor = max(self.floor, self.seen.pop(oldest))

    def expire(self, now: datetime) -> None:
        # Outside the time window a request is refused anyway: its nonce need not be kept.
        cutoff = to_iso(now - MAX_CLOCK_SKEW)
        for nonce in [n for n, t in self.seen.items() if t < cutoff]:
            del self.seen[nonce]

    def to_json(self) -> dict:
        return {"floor": self.floor, "seen": self.seen}

    @classmethod
    def from_json(cls, obj: dict, size: int = REPLAY_CACHE_SIZE) -> ReplayCache:
        return cls(size, obj.get("floor", ""), obj.get("seen", {}))


def verify_request(box_key: VerifyKey | bytes | str | None, method: str, path: str,
                   headers: Mapping[str, str], body: bytes, now: datetime, replay: ReplayCache) -> str:
    """Camera side: check a box-signed request against the paired box key, the camera's clock (`now`,
    +- MAX_CLOCK_SKEW) and the replay cache. Returns the request nonce (the manifest echoes it)."""
    if box_key is None:
        raise ProtocolError("this camera is not paired", 403, "not_paired")
    time, nonce, signature = headers.get(H_TIME), headers.get(H_NONCE), headers.get(H_SIGNATURE)
    if time is None or nonce is None or signature is None:
        raise ProtocolError(f"request not signed ({H_TIME}, {H_NONCE}, {H_SIGNATURE} required)", 401, "unsigned")
    if not TIME_RE.match(time) or not NONCE_RE.match(nonce):
        raise ProtocolError("malformed request time or nonce", 401, "unsigned")
    try:
        moment = from_iso(time)
    except ValueError:
        raise ProtocolError("malformed request time", 401, "unsigned") from None
    if abs(moment - now) > MAX_CLOCK_SKEW:
        raise ProtocolError(f"request time {time} is more than {MAX_CLOCK_SKEW} from the camera clock "
                            f"{to_iso(now)}", 401, "stale")
    verify(box_key, D_REQUEST, _request_payload(method, path, time, nonce, body), signature)
    replay.check_and_add(nonce, time, now)  # after the signature: forged requests never fill the cache
    return nonce


# --- delete ------------------------------------------------------------------------------------------


def build_delete(recording_id: str, sha256: str) -> bytes:
    """The body of DELETE recordings/{id}: the box names the container hash it committed."""
    return canonical({"id": recording_id, "sha256": sha256})


def parse_delete(body: bytes, recording_id: str) -> str:
    obj = parse_json(body, what="delete request")
    _exact_keys(obj, {"id", "sha256"}, "delete request")
    _str(obj, "id", "delete request", RECORDING_ID_RE)
    sha256 = _str(obj, "sha256", "delete request", SHA256_RE)
    if obj["id"] != recording_id:
        raise ProtocolError("delete request body names another recording than its path")
    return sha256


def build_deleted(camera_key: SigningKey, serial: str, recording_id: str, sha256: str, now: datetime,
                  request_nonce: str) -> dict:
    """The camera's signed confirmation that it erased a recording (the box keeps it for the audit)."""
    deleted = {"serial": serial, "id": recording_id, "sha256": sha256, "camera_time": to_iso(now),
               "request_nonce": request_nonce}
    return {"deleted": deleted, "signature": sign(camera_key, D_DELETED, deleted)}


def verify_deleted(body: bytes | dict, camera_key: VerifyKey | bytes | str, serial: str, recording_id: str,
                   sha256: str) -> dict:
    obj = parse_json(body, what="delete confirmation") if isinstance(body, (bytes, str)) else body
    what = "delete confirmation"
    _exact_keys(obj, {"deleted", "signature"}, what)
    deleted = obj["deleted"]
    _exact_keys(deleted, {"serial", "id", "sha256", "camera_time", "request_nonce"}, what)
    _time(deleted, "camera_time", what)
    _str(deleted, "request_nonce", what, NONCE_RE)
    verify(camera_key, D_DELETED, deleted, obj["signature"])
    if (deleted["serial"], deleted["id"], deleted["sha256"]) != (serial, recording_id, sha256):
        raise ProtocolError("delete confirmation is for another recording", 403, "wrong_device")
    return deleted


# --- ranges ------------------------------------------------------------------------------------------


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """`Range: bytes=N-` or `bytes=N-M` (one range) -> (start, end exclusive); None for the whole body.
    Out of range -> ProtocolError 416."""
    if header is None:
        return None
    match = re.fullmatch(r"\s*bytes=(\d{1,15})-(\d{0,15})\s*", header)
    if not match:
        raise ProtocolError(f"unsupported Range {header[:60]!r} (use bytes=N- or bytes=N-M)", 416, "bad_range")
    start = int(match.group(1))
    end = int(match.group(2)) + 1 if match.group(2) else size
    if start >= size or end <= start:
        raise ProtocolError(f"range {header.strip()} outside 0..{size}", 416, "bad_range")
    return start, min(end, size)

