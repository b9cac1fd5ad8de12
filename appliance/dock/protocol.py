"""The dock protocol, version 1: the messages between a camera (or its dock) and the box, and their
signatures. Shared by both ends; specified in docs/dock-protocol.md. Pure: no sockets, no files. The wire
basics (limits, field forms, the strict JSON parser, field checks) are in appliance/dock/wire.py and the
mDNS TXT record in appliance/dock/txt.py; this module re-exports them, so either end needs only it.

Trust in one paragraph: at pairing the operator types the 8-digit code the camera shows; both sides MAC
their pairing message with it (HMAC-SHA256), which binds the camera's Ed25519 key to the box's Ed25519 key.
From then on the camera signs every manifest and delete confirmation, and the box signs every request
except `info` and `pair` (method, path, time, nonce, body hash); the camera refuses stale or replayed ones.

Everything signed or MACed is canonical JSON (sorted keys, compact, UTF-8) prefixed with a domain string
(the kind's label, appliance/signing.py), so a signature made for one kind of message can never be passed
off as another.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import secrets
from datetime import datetime
from typing import Any, Mapping

import nacl.pwhash.argon2id as argon2id
from nacl.signing import SigningKey, VerifyKey

from .. import signing
from ..clock import from_iso, to_iso

# Re-exported: either end of the protocol needs only this module.
from .txt import TxtRecord, build_txt, parse_txt  # noqa: F401
from .wire import (API_PREFIX, ASSIGNMENTS, CODE_RE, D_DELETED, D_MANIFEST, D_PAIR_REQUEST,  # noqa: F401
    D_PAIR_RESPONSE, D_REQUEST, FP_RE, H_NONCE, H_SIGNATURE, H_TIME, KEY_RE, MAX_CLOCK_SKEW,  # noqa: F401
    MAX_JSON_BODY, MAX_MANIFEST_BODY, MAX_PRE_POST_S, MAX_RECIPIENTS, MAX_RECORDINGS,  # noqa: F401
    MAX_RECORDING_SIZE, MAX_TXT_KEYS, MAX_TXT_SIZE, MAX_TXT_VALUE, NONCE_RE,  # noqa: F401
    PAIRING_CODE_DIGITS, PAIRING_KDF, PRINTABLE_RE, PROTOCOL_VERSION, RECORDING_ID_RE,  # noqa: F401
    REPLAY_CACHE_SIZE, SERIAL_RE, SERVICE_TYPE, SHA256_RE, SIG_RE, TIME_RE, ProtocolError,  # noqa: F401
    canonical, exact_keys, field, integer, key_fingerprint, key_hex, new_nonce, officer_field,  # noqa: F401
    parse_json, sign, string, time_field, verify, verify_key_of)  # noqa: F401


# --- info -------------------------------------------------------------------------------------------


def build_info(serial: str, model: str, fw: str, camera_key: SigningKey | VerifyKey, paired: bool,
               box_key: str | None, camera_time: datetime, settings_version: int) -> dict:
    return {
        "proto": PROTOCOL_VERSION, "serial": serial, "model": model, "fw": fw,
        "camera_key": key_hex(camera_key), "fp": key_fingerprint(camera_key), "paired": paired,
        "box_fp": key_fingerprint(box_key) if box_key else None, "camera_time": to_iso(camera_time),
        "settings_version": settings_version,
    }


def parse_info(obj: dict) -> dict:
    what = "info"
    exact_keys(obj, {"proto", "serial", "model", "fw", "camera_key", "fp", "paired", "box_fp",
                      "camera_time", "settings_version"}, what)
    integer(obj, "proto", what, 1, 9999)
    string(obj, "serial", what, SERIAL_RE)
    string(obj, "model", what, PRINTABLE_RE, MAX_TXT_VALUE)
    string(obj, "fw", what, PRINTABLE_RE, MAX_TXT_VALUE)
    string(obj, "camera_key", what, KEY_RE)
    if string(obj, "fp", what, FP_RE) != key_fingerprint(obj["camera_key"]):
        raise ProtocolError("info: fp does not match camera_key")
    if not isinstance(obj["paired"], bool):
        raise ProtocolError("info: paired must be true or false")
    string(obj, "box_fp", what, FP_RE, nullable=True)
    time_field(obj, "camera_time", what)
    integer(obj, "settings_version", what, 0, 2**53)
    return obj


# --- settings ----------------------------------------------------------------------------------------


def build_settings(version: int, pre_record_s: int = 30, post_record_s: int = 30, officer: str | None = None,
                   assignment: str = "personal") -> dict:
    return parse_settings({"version": version, "pre_record_s": pre_record_s, "post_record_s": post_record_s,
                           "officer": officer, "assignment": assignment})


def parse_settings(obj: Any) -> dict:
    what = "settings"
    exact_keys(obj, {"version", "pre_record_s", "post_record_s", "officer", "assignment"}, what)
    integer(obj, "version", what, 1, 2**53)
    integer(obj, "pre_record_s", what, 0, MAX_PRE_POST_S)
    integer(obj, "post_record_s", what, 0, MAX_PRE_POST_S)
    officer_field(obj, "officer", what)
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
    pairing: dict[str, Any] = {
        "serial": serial, "box_key": key_hex(box_key), "box_name": box_name,
        "recipients": [r if isinstance(r, str) else bytes(r).hex() for r in recipients],
        "settings": settings, "nonce": new_nonce(), "time": to_iso(now),
    }
    _check_pair_request_fields(pairing)
    return {"pairing": pairing, "mac": pairing_mac(code, serial, pairing["nonce"], D_PAIR_REQUEST, pairing)}


def _check_pair_request_fields(pairing: Any) -> None:
    what = "pair request"
    exact_keys(pairing, {"serial", "box_key", "box_name", "recipients", "settings", "nonce", "time"}, what)
    string(pairing, "serial", what, SERIAL_RE)
    string(pairing, "box_key", what, KEY_RE)
    string(pairing, "box_name", what, PRINTABLE_RE, 64)
    recipients = pairing["recipients"]
    if not isinstance(recipients, list) or not 1 <= len(recipients) <= MAX_RECIPIENTS:
        raise ProtocolError(f"{what}: recipients must be a list of 1 to {MAX_RECIPIENTS} keys")
    if any(not isinstance(r, str) or not KEY_RE.match(r) for r in recipients) or len(set(recipients)) != len(recipients):
        raise ProtocolError(f"{what}: recipients must be distinct 32-byte X25519 keys in hex")
    parse_settings(pairing["settings"])
    string(pairing, "nonce", what, NONCE_RE)
    time_field(pairing, "time", what)


def verify_pair_request(body: dict, code: str, serial: str) -> dict:
    """Camera side: the `pairing` object of a well-formed request MAC'd with our current code, for us."""
    exact_keys(body, {"pairing", "mac"}, "pair request")
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
            "signature": sign(camera_key, signing.DOCK_PAIR_RESPONSE, pairing)}


def verify_pair_response(body: dict, code: str, request: dict) -> dict:
    """Box side: check the camera's answer to `request` (the body we sent). Returns its `pairing`."""
    what = "pair response"
    exact_keys(body, {"pairing", "mac", "signature"}, what)
    pairing = body["pairing"]
    exact_keys(pairing, {"serial", "camera_key", "box_key", "nonce", "camera_nonce", "camera_time",
                          "model", "fw"}, what)
    string(pairing, "serial", what, SERIAL_RE)
    string(pairing, "camera_key", what, KEY_RE)
    string(pairing, "box_key", what, KEY_RE)
    string(pairing, "nonce", what, NONCE_RE)
    string(pairing, "camera_nonce", what, NONCE_RE)
    time_field(pairing, "camera_time", what)
    string(pairing, "model", what, PRINTABLE_RE, MAX_TXT_VALUE)
    string(pairing, "fw", what, PRINTABLE_RE, MAX_TXT_VALUE)
    sent = request["pairing"]
    _check_mac(code, sent["serial"], sent["nonce"], D_PAIR_RESPONSE, pairing, body["mac"])
    if (pairing["serial"], pairing["box_key"], pairing["nonce"]) != (sent["serial"], sent["box_key"], sent["nonce"]):
        raise ProtocolError("pair response does not answer our request (serial, key or nonce differ)",
                            403, "wrong_device")
    verify(pairing["camera_key"], signing.DOCK_PAIR_RESPONSE, pairing, body["signature"])
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
    exact_keys(entry, ENTRY_FIELDS, what)
    string(entry, "id", what, RECORDING_ID_RE)
    integer(entry, "size", what, 1, MAX_RECORDING_SIZE)
    string(entry, "sha256", what, SHA256_RE)
    time_field(entry, "start", what)
    time_field(entry, "end", what)
    if entry["end"] < entry["start"]:
        raise ProtocolError(f"{what} {entry['id']}: ends before it starts")
    integer(entry, "pre_record_s", what, 0, MAX_PRE_POST_S)
    integer(entry, "post_record_s", what, 0, MAX_PRE_POST_S)
    officer_field(entry, "officer", what)


def build_manifest(camera_key: SigningKey, serial: str, entries: list[dict], camera_time: datetime,
                   request_nonce: str | None) -> dict:
    """The signed manifest. `request_nonce` echoes the nonce of the box's signed GET, so a recorded old
    manifest cannot be replayed to the box (it would hide newer recordings)."""
    manifest = {"proto": PROTOCOL_VERSION, "serial": serial, "camera_time": to_iso(camera_time),
                "request_nonce": request_nonce, "recordings": entries}
    _check_manifest(manifest)
    return {"manifest": manifest, "signature": sign(camera_key, signing.DOCK_MANIFEST, manifest)}


def _check_manifest(manifest: Any) -> None:
    what = "manifest"
    exact_keys(manifest, {"proto", "serial", "camera_time", "request_nonce", "recordings"}, what)
    if manifest["proto"] != PROTOCOL_VERSION:
        raise ProtocolError(f"manifest protocol {manifest['proto']!r} is not {PROTOCOL_VERSION}")
    string(manifest, "serial", what, SERIAL_RE)
    time_field(manifest, "camera_time", what)
    string(manifest, "request_nonce", what, NONCE_RE, nullable=True)
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
    exact_keys(obj, {"manifest", "signature"}, "manifest")
    manifest = obj["manifest"]
    _check_manifest(manifest)
    verify(camera_key, signing.DOCK_MANIFEST, manifest, obj["signature"])
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
    signature = sign(box_key, signing.DOCK_REQUEST, _request_payload(method, path, time, nonce, body))
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
    verify(box_key, signing.DOCK_REQUEST, _request_payload(method, path, time, nonce, body), signature)
    replay.check_and_add(nonce, time, now)  # after the signature: forged requests never fill the cache
    return nonce


# --- delete ------------------------------------------------------------------------------------------


def build_delete(recording_id: str, sha256: str) -> bytes:
    """The body of DELETE recordings/{id}: the box names the container hash it committed."""
    return canonical({"id": recording_id, "sha256": sha256})


def parse_delete(body: bytes, recording_id: str) -> str:
    obj = parse_json(body, what="delete request")
    exact_keys(obj, {"id", "sha256"}, "delete request")
    string(obj, "id", "delete request", RECORDING_ID_RE)
    sha256 = string(obj, "sha256", "delete request", SHA256_RE)
    if obj["id"] != recording_id:
        raise ProtocolError("delete request body names another recording than its path")
    return sha256


def build_deleted(camera_key: SigningKey, serial: str, recording_id: str, sha256: str, now: datetime,
                  request_nonce: str) -> dict:
    """The camera's signed confirmation that it erased a recording (the box keeps it for the audit)."""
    deleted = {"serial": serial, "id": recording_id, "sha256": sha256, "camera_time": to_iso(now),
               "request_nonce": request_nonce}
    return {"deleted": deleted, "signature": sign(camera_key, signing.DOCK_DELETED, deleted)}


def verify_deleted(body: bytes | dict, camera_key: VerifyKey | bytes | str, serial: str, recording_id: str,
                   sha256: str) -> dict:
    obj = parse_json(body, what="delete confirmation") if isinstance(body, (bytes, str)) else body
    what = "delete confirmation"
    exact_keys(obj, {"deleted", "signature"}, what)
    deleted = obj["deleted"]
    exact_keys(deleted, {"serial", "id", "sha256", "camera_time", "request_nonce"}, what)
    time_field(deleted, "camera_time", what)
    string(deleted, "request_nonce", what, NONCE_RE)
    verify(camera_key, signing.DOCK_DELETED, deleted, obj["signature"])
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

