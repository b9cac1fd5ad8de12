"""The TXT record a dock or camera advertises over mDNS (docs/dock-protocol.md, "Discovery"): built by a
camera, parsed strictly by the box (a malformed advert is refused, never half-read)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping

from nacl.signing import SigningKey, VerifyKey

from .wire import (FP_RE, MAX_TXT_KEYS, MAX_TXT_SIZE, MAX_TXT_VALUE, PRINTABLE_RE, PROTOCOL_VERSION, SERIAL_RE,
                   ProtocolError, key_fingerprint)


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


def parse_txt(properties: Mapping[bytes, bytes | None] | Mapping[str, str], raw_size: int | None = None) -> TxtRecord:
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
