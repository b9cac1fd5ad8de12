"""Canonical JSON: the one encoding of a value that is hashed, signed or MACed, on every end.

Sorted keys, no whitespace, UTF-8 (not ASCII escapes), and no NaN or Infinity: those are not JSON, and a
peer's parser may read them differently or refuse them, so a value holding one has no canonical form.
"""

from __future__ import annotations

import json
from typing import Any


def canonical(value: Any) -> bytes:
    """One byte string per value. ValueError for NaN/Infinity, TypeError for what JSON cannot hold."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")
