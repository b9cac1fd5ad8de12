"""A box for case tests (tests/handover_box.py: one user per role, two privacy officers for four eyes, a team
leader of team Noord): two recordings of team Noord and one of team Zuid, real H.264, on a fixed clock."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from appliance import access_requests, handover, retention
from appliance.box import Box

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


def request_case(box: Box, recording_ids: dict) -> str:
    """A request whose search finds the first Noord recording (linked and held), a hold by hand on the second,
    and a handover of the Zuid one: every kind of source under the request's reference. Returns it."""
    done = access_requests.register(box, requester="A. Burger", kind="inzage", received_on=date(2026, 11, 21),
                                    given_time=START + timedelta(minutes=5), window_minutes=10, actor="fg",
                                    camera="CAM001")
    ref = done.request["ref"]
    assert [m["id"] for m in done.matches] == [recording_ids["noord"]]
    retention.add_hold(box, recording_ids["noord2"], "access_request", ref, "tl")
    handover.prepare(box, "fg", [recording_ids["zuid"]], receiver=RECEIVER, basis=BASIS, case_ref=ref,
                     purpose="access_request", protection="passphrase")
    return ref
