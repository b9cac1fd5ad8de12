"""Fixtures of the backup tests: a box on a real catalog whose clock the test moves."""

from __future__ import annotations

import pytest

from appliance.box import Box
from backup_helpers import Clock


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cbox(box_dir, clock) -> Box:
    with Box(box_dir[0], clock=clock) as opened:
        yield opened
