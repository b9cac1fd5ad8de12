"""Moments in a recording as people type them, in the web forms and on the command line alike.

Seconds take a decimal point or a Dutch decimal comma ('75.5', '75,5'). Two readings, for two
questions:
- `parse_seconds`: how far into the recording, as a stopwatch reads: '75', '1:15' (minutes:seconds),
  '0:01:15'. The redaction's boxes, keep regions and muted ranges, and the still to draw them on.
- `parse_offset`: a handover's time window: seconds into the recording ('75,5'), a time of day on the
  recording's date in the box's time zone ('14:05:30', the corrected time the recording's page shows),
  or a full date and time.
"""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .clock import parse_time
from .errors import KluisError

NUMBER = r"\d+(?:[.,]\d+)?"
_STOPWATCH = re.compile(rf"{NUMBER}(?::{NUMBER}){{0,2}}")
_TIME_OF_DAY = re.compile(r"\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?")


def _number(text: str) -> float:
    return float(text.replace(",", "."))


def parse_seconds(text: str | None) -> float:
    """'12.5', '12,5', '1:02.5' (minutes:seconds) or '0:01:02' (hours:minutes:seconds) to seconds."""
    text = (text or "").strip()
    if not _STOPWATCH.fullmatch(text):
        raise KluisError(f"not a time {text!r}: give seconds (12.5) or minutes:seconds (1:02.5)")
    value = 0.0
    for part in text.split(":"):
        value = value * 60 + _number(part)
    return value


def parse_offset(text: str, recording_start: datetime, tz_name: str) -> float:
    """Seconds from `recording_start` (aware) to the moment `text` names (see the module's doc)."""
    text = (text or "").strip()[:40]
    if re.fullmatch(NUMBER, text):
        return _number(text)
    if _TIME_OF_DAY.fullmatch(text):
        try:
            zone = ZoneInfo(tz_name)
        except ZoneInfoNotFoundError:
            raise KluisError(f"unknown time zone {tz_name!r} in the configuration") from None
        hours, _, rest = text.replace(",", ".").partition(":")
        try:
            clock = time.fromisoformat(f"{int(hours):02d}:{rest}")
        except ValueError:
            raise KluisError(f"not a time of day {text!r} (for example 14:05:30)") from None
        moment = datetime.combine(recording_start.astimezone(zone).date(), clock, zone)
        if moment < recording_start - timedelta(hours=12):
            moment += timedelta(days=1)  # a recording over midnight
    else:
        moment = parse_time(text, tz_name)
    return (moment - recording_start).total_seconds()
