"""The dock protocol's wire basics: its constants and limits, the forms of its fields, the strict JSON
parser for what a peer sends, the field checks every message kind is built from, and Ed25519 keys and
signatures in the protocol's hex form. The messages themselves are in appliance/dock/protocol.py.
Pure: no sockets, no files.
"""

from __future__ import annotations

import json
import math
import re
import secrets
from datetime import timedelta
from typing import Any, Literal, Mapping, overload

import nacl.exceptions
from nacl.signing import SigningKey, VerifyKey

from .. import errors, signing
from ..canonical import canonical
from ..clock import from_iso
from ..keys import fingerprint

__all__ = ["canonical"]  # re-exported: both ends encode with it

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

# Domain strings: the first line of every signed or MACed message. The signed kinds are registered in
# appliance/signing.py with these labels; the pair request is only MACed.
D_MANIFEST = signing.DOCK_MANIFEST.label
D_REQUEST = signing.DOCK_REQUEST.label
D_PAIR_REQUEST = "kluis-dock/1 pair-request"
D_PAIR_RESPONSE = signing.DOCK_PAIR_RESPONSE.label
D_DELETED = signing.DOCK_DELETED.label


class ProtocolError(errors.ProtocolError):
    """A peer sent something the dock protocol does not allow. `status` is the HTTP status a camera
    answers with, `code` a short machine-readable reason (see docs/dock-protocol.md, "Errors")."""

    def body(self) -> dict:
        return {"error": {"code": self.code, "message": str(self)}}


# --- JSON from a peer ------------------------------------------------------------------------------


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    result = {}
    for key, value in pairs:
        if key in result:
            raise ProtocolError(f"duplicate JSON key {key!r}")
        result[key] = value
    return result


def _no_constant(name: str):
    raise ProtocolError(f"JSON constant {name} is not allowed")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400: JSON allows it, but it reads as Infinity, which has no canonical form
        raise ProtocolError(f"JSON number {text[:40]} is out of range")
    return value


def _scalar_values(value: Any) -> bool:
    """Whether every string holds Unicode scalar values only (a lone surrogate escape, "\\ud800", does
    not: it has no UTF-8 form, so what holds one can be neither signed nor echoed)."""
    if isinstance(value, str):
        return not any("\ud800" <= c <= "\udfff" for c in value)
    if isinstance(value, dict):
        return all(_scalar_values(k) and _scalar_values(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_scalar_values(v) for v in value)
    return True


def parse_json(body: bytes | str, limit: int = MAX_JSON_BODY, what: str = "message") -> dict:
    """A JSON object from a peer: size-limited, UTF-8, no duplicate keys, no NaN/Infinity, nothing out of
    a float's range, no lone surrogates. What it accepts has a canonical form that parses back to it."""
    if isinstance(body, str):
        body = body.encode("utf-8", "surrogatepass")  # a lone surrogate is then refused as not UTF-8
    if len(body) > limit:
        raise ProtocolError(f"{what} too large ({len(body)} bytes, limit {limit})", 413, "too_large")
    try:
        text = body.decode("utf-8")
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant,
                           parse_float=_finite)
        surrogates = "\\u" in text and not _scalar_values(value)  # only an escape can make one
    except UnicodeDecodeError:
        raise ProtocolError(f"{what} is not UTF-8") from None
    except RecursionError:
        raise ProtocolError(f"{what} is nested too deeply") from None
    except ValueError as exc:
        raise ProtocolError(f"{what} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ProtocolError(f"{what} is not a JSON object")
    if surrogates:
        raise ProtocolError(f"{what} holds a lone surrogate (not Unicode text)")
    return value


# --- field checks (a tiny schema language: enough for our few message kinds) ------------------------


def field(obj: Mapping, name: str, what: str) -> Any:
    if name not in obj:
        raise ProtocolError(f"{what}: missing field {name!r}")
    return obj[name]


def exact_keys(obj: Any, required: set[str], what: str, optional: frozenset[str] | set[str] = frozenset()) -> None:
    if not isinstance(obj, dict):
        raise ProtocolError(f"{what} is not a JSON object")
    missing = required - obj.keys()
    if missing:
        raise ProtocolError(f"{what}: missing field(s) {', '.join(sorted(missing))}")
    extra = obj.keys() - required - optional
    if extra:
        raise ProtocolError(f"{what}: unknown field(s) {', '.join(sorted(extra))}")


@overload
def string(obj: Mapping, name: str, what: str, pattern: re.Pattern | None = None, max_len: int = 256,
           nullable: Literal[False] = False) -> str: ...
@overload
def string(obj: Mapping, name: str, what: str, pattern: re.Pattern | None = None, max_len: int = 256,
           nullable: bool = False) -> str | None: ...
def string(obj: Mapping, name: str, what: str, pattern: re.Pattern | None = None, max_len: int = 256,
           nullable: bool = False) -> str | None:
    value = field(obj, name, what)
    if value is None and nullable:
        return None
    if not isinstance(value, str):
        raise ProtocolError(f"{what}: {name} must be a string")
    if len(value) > max_len:
        raise ProtocolError(f"{what}: {name} longer than {max_len} characters")
    if pattern is not None and not pattern.match(value):
        raise ProtocolError(f"{what}: {name} has an invalid form: {value[:80]!r}")
    return value


def integer(obj: Mapping, name: str, what: str, low: int, high: int) -> int:
    value = field(obj, name, what)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ProtocolError(f"{what}: {name} must be an integer")
    if not low <= value <= high:
        raise ProtocolError(f"{what}: {name} out of range ({low}..{high})")
    return value


def time_field(obj: Mapping, name: str, what: str) -> str:
    value = string(obj, name, what, TIME_RE, 24)
    try:
        from_iso(value)
    except ValueError:
        raise ProtocolError(f"{what}: {name} is not a valid time") from None
    return value


def officer_field(obj: Mapping, name: str, what: str) -> str | None:
    value = string(obj, name, what, max_len=64, nullable=True)
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


def verify_key_of(value: VerifyKey | bytes | str) -> VerifyKey:
    if isinstance(value, VerifyKey):
        return value
    try:
        return VerifyKey(bytes.fromhex(value) if isinstance(value, str) else bytes(value))
    except (ValueError, TypeError, nacl.exceptions.CryptoError):
        raise ProtocolError("not an Ed25519 public key", 400, "bad_key") from None


def sign(key: SigningKey, kind: signing.Kind, payload: Any) -> str:
    """Ed25519 over the kind's label, a newline and the canonical JSON of `payload`; hex."""
    return signing.sign(key, kind, payload)


def verify(public_key: VerifyKey | bytes | str, kind: signing.Kind, payload: Any, signature: str) -> None:
    if not isinstance(signature, str) or not SIG_RE.match(signature):
        raise ProtocolError("malformed signature", 401, "bad_signature")
    if not signing.is_valid(verify_key_of(public_key), kind, payload, signature):
        raise ProtocolError(f"bad signature on the {kind.label.split()[-1]}", 401, "bad_signature")
