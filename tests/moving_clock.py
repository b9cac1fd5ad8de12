"""The clock the backup and retention tests move by hand, and the moment it starts at. Imported as
`tests.moving_clock`; backup_helpers and retention_helpers pass both on to their tests."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


class Clock:
    """A clock that moves only when told to."""

    def __init__(self, now: datetime = T0):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def set(self, moment: datetime) -> None:
        self.now = moment

    def advance(self, **kw) -> None:
        self.now += timedelta(**kw)
