"""The clock the backup and retention tests move by hand, the moment it starts at, and their fixtures of it
(their conftests import them). Imported as `tests.moving_clock`; backup_helpers and retention_helpers pass
the clock and T0 on to their tests."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from appliance.box import Box

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


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def clocked_box(box_dir, clock) -> Box:
    """The box_dir box (tests/conftest.py), opened on `clock`."""
    with Box(box_dir[0], clock=clock) as opened:
        yield opened
