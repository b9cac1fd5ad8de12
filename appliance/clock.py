"""Time: one injectable source, and the one text form the catalog stores (UTC ISO 8601, seconds, 'Z').

Domain code takes a `clock` (a callable returning an aware UTC datetime) so tests control time without
sleeping; `system_clock` is the default.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import KluisError

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(timezone.utc)


def to_iso(moment: datetime) -> str:
    """UTC with a Z and always milliseconds: a fixed width keeps text order equal to time order."""
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def from_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)


def parse_time(text: str, tz_name: str = "Europe/Amsterdam") -> datetime:
    """An ISO 8601 time from a person or a script; without a zone it is read in the box's time zone."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise KluisError(f"not an ISO 8601 time: {text!r} (for example 2026-11-22T14:30:00+01:00)") from None
    if moment.tzinfo is None:
        try:
            moment = moment.replace(tzinfo=ZoneInfo(tz_name))
        except ZoneInfoNotFoundError:
            raise KluisError(f"unknown time zone {tz_name!r} in the configuration") from None
    return moment.astimezone(timezone.utc)
