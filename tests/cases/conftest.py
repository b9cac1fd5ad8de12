"""A box for case tests (tests/handover_box.py: one user per role, two privacy officers for four eyes, a team
leader of team Noord): two recordings of team Noord and one of team Zuid, real H.264, on a fixed clock."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from tests.conftest import secret_file
from tests.handover_box import START, template_fixture
from tests.handover_box import opened_copy  # noqa: F401  (fixtures)
from tests.template_fixtures import ids, template_copy  # noqa: F401  (fixtures)
from tests.web_helpers import WebClient, https_client
from webui.site import create_app

box_template = template_fixture("casesbox", (  # (key, camera, officer, team, start, seconds)
    ("noord", "CAM001", "hh", "Noord", START, 3),
    ("noord2", "CAM003", "hh", "Noord", START + timedelta(minutes=10), 2),
    ("zuid", "CAM002", "de Vries", "Zuid", START + timedelta(hours=2), 2),
))

RECEIVER = "Politie Midden-Nederland, District Utrecht-Stad, R. de Boer (AB1234)"
BASIS = "vordering (art. 126nd Sv)"


@pytest.fixture
def pw(tmp_path) -> Path:
    return secret_file(tmp_path / "pw.txt")


@pytest.fixture
async def web(hbox) -> WebClient:
    async with https_client(hbox, create_app(hbox)) as client:
        yield WebClient(hbox, client)
