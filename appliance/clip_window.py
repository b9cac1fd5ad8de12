"""A time window cut out of a recording for a handover: reading its ends as people write them, and
checking it against the recording. The CLI (`kluis export prepare --from/--to`) and the web UI's handover
form read them with the same rules."""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from .clock import from_iso, parse_time
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
    """Seconds into a recording: a number of seconds ('75', '75.5', '75,5'), a time of day on the recording's
    date in the box's time zone ('14:05:30', the box's corrected time, as the recording's page shows it), or
    a full date and time. None for empty; KluisError when it is none of these."""
    text = text.strip()[:MAX_TEXT]
    if not text:
        return None
    if re.fullmatch(r"\d+([.,]\d+)?", text):
        return float(text.replace(",", "."))
    start = from_iso(recording["start_time"])
    zone = ZoneInfo(tz_name)
    if re.fullmatch(r"\d{1,2}:\d{2}(:\d{2}([.,]\d+)?)?", text):
        clock = time.fromisoformat(text.replace(",", ".").zfill(len(text) + (text.index(":") == 1)))
        moment = datetime.combine(start.astimezone(zone).date(), clock, zone)
        if moment < start - timedelta(hours=12):
            moment += timedelta(days=1)  # a recording over midnight
    else:
        moment = parse_time(text, tz_name)
    return (moment - start).total_seconds()


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
