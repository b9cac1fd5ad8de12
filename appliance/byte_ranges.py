"""Byte ranges of a recording, as HTTP's Range header and `kluis cat --range` write them.

One parser for both, so that the player in the browser and the command line agree on what a range
means: 'bytes=START-END' or 'START-END' (END inclusive, as in HTTP), 'START-' (to the end) and '-N'
(the last N bytes). A single range only: the player never asks for several, and answering several would
need a multipart body.
"""

from __future__ import annotations

import re

from .errors import KluisError

_RANGE = re.compile(r"(\d*)-(\d*)")


class Unsatisfiable(KluisError):
    """A range that is malformed or lies outside the recording (HTTP 416)."""


def parse(text: str | None, size: int) -> tuple[int, int]:
    """The half-open [start, stop) a range asks for within `size` bytes; (0, size) for no range.
    An END past the size is cut to it (HTTP does the same); a range that holds no byte is Unsatisfiable."""
    if text is None or not text.strip():
        return 0, size
    spec = text.strip()
    unit, equals, rest = spec.partition("=")
    if equals:
        if unit.strip().lower() != "bytes":
            raise Unsatisfiable(f"bad range {text!r}: only bytes ranges are served")
        spec = rest.strip()
    match = _RANGE.fullmatch(spec)
    if not match or match.group(1) == match.group(2) == "":
        raise Unsatisfiable(f"bad range {text!r}: use START-END (bytes, inclusive), START- or -LAST")
    first, last = match.groups()
    if first == "":
        start, stop = max(size - int(last), 0), size
        if int(last) == 0:
            raise Unsatisfiable(f"bad range {text!r}: empty")
    else:
        start = int(first)
        stop = min(int(last) + 1, size) if last else size
        if last and int(last) < start:
            raise Unsatisfiable(f"bad range {text!r}: empty")
    if not 0 <= start < stop:
        raise Unsatisfiable(f"bad range {text!r}: empty, or past the end of {size} bytes")
    return start, stop


def content_range(start: int, stop: int, size: int) -> str:
    """The Content-Range header of a partial answer."""
    return f"bytes {start}-{stop - 1}/{size}"
