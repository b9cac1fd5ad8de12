"""A time window cut out of a recording for a handover: reading its ends as people write them, and
checking it against the recording. The CLI (`kluis export prepare --from/--to`) and the web UI's handover
form read them with the same rules."""

from __future__ import annotations


from . import time_offsets
from .clock import from_iso
from .errors import KluisError

MAX_TEXT = 40
SLACK_S = 0.05  # an end this little past the recording's last frame still counts as its end


class BadWindow(KluisError):
    """A window that does not fit its recording; `reason` says how: 'before' (starts before the
    recording), 'order' (does not end after it starts) or 'outside' (lies past the recording's end)."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def parse_offset(text: str, recording: dict, tz_name: str) -> float | None:
    """Seconds into a recording by appliance.time_offsets' rules ('75,5', '14:05:30', a full date and time);
    None for empty, KluisError when it is none of these."""
    text = text.strip()[:MAX_TEXT]
    if not text:
        return None
    return time_offsets.parse_offset(text, from_iso(recording["start_time"]), tz_name)


def duration_s(recording: dict) -> float | None:
    """The recording's length in seconds by its catalog times; None when they are missing or unreadable."""
    try:
        return (from_iso(recording["end_time"]) - from_iso(recording["start_time"])).total_seconds()
    except (TypeError, ValueError, KeyError):
        return None


def window(start: float | None, end: float | None, duration: float | None) -> tuple[float, float] | None:
    """The window to cut from `start` to `end` seconds (either may be left out: the recording's start or end);
    None when neither is given (the whole recording). BadWindow when it does not fit the recording."""
    if start is None and end is None:
        return None
    start = 0.0 if start is None else start
    if end is None:
        end = duration
    if start < 0:
        raise BadWindow("before", "the time window starts before the recording")
    if end is None or end <= start:
        raise BadWindow("order", "the time window must end after it starts")
    if duration is not None and (start >= duration or end > duration + SLACK_S):
        raise BadWindow("outside", f"the time window lies outside the recording ({duration} s long)")
    return start, end
