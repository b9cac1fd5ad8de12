"""A box for the handover pages (tests/handover_box.py, as for tests/handover), served over real HTTPS with
real sessions (tests/web_helpers.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.handover_box import START, template_fixture
from tests.handover_box import age_key, opened_copy  # noqa: F401  (fixtures)
from tests.template_fixtures import ids, original, template_copy  # noqa: F401  (fixtures)
from tests.web_helpers import WebClient, https_client
from webui.site import create_app

box_template = template_fixture("handoverui", (  # (key, camera, officer, team, start, seconds)
    ("noord", "CAM001", "hh", "Noord", START, 10),
    ("zuid", "CAM002", "de Vries", "Zuid", START + timedelta(hours=2), 3),
))


@pytest.fixture
async def web(hbox) -> WebClient:
    async with https_client(hbox, create_app(hbox)) as client:
        yield WebClient(hbox, client)
