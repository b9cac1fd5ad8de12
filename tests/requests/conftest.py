"""Fixtures of the request tests: a box with a privacy officer, a team leader and an auditor and three
small recordings around the incident, built once and copied per test; a clock the test moves."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from appliance import roles, users
from appliance.box import Box, init_box
from verzoeken_helpers import HOSTILE, INCIDENT, PASSWORD, Clock, store

USERS = {"fg": (roles.PRIVACY_OFFICER, None), "tl": (roles.TEAM_LEADER, "Noord"), "au": (roles.AUDITOR, None)}


@pytest.fixture(scope="session")
def template(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("verzoeken")
    box, _ = init_box(root / "data", "admin", PASSWORD, kdf_profile="interactive", clock=Clock(INCIDENT))
    identity = box.unlock("admin", PASSWORD)
    for name, (role, team) in USERS.items():
        users.add_user(box, "admin", name, role, PASSWORD, team=team, identity=identity)
    ids = {
        "a": store(box, root, INCIDENT - timedelta(seconds=30)),
        "b": store(box, root, INCIDENT + timedelta(minutes=5), camera="CAM002", officer=HOSTILE),
        "c": store(box, root, INCIDENT + timedelta(hours=3), camera="CAM003"),
    }
    box.close()
    return root / "data", ids


@pytest.fixture
def clock() -> Clock:
    """Two days after the incident; the test moves it."""
    return Clock(INCIDENT + timedelta(days=2))


@pytest.fixture
def copied_box(template, clock, tmp_path) -> Box:
    """A copy of the template box for one test, on the test's clock."""
    data = tmp_path / "data"
    shutil.copytree(template[0], data)
    with Box(data, clock=clock) as box:
        yield box
