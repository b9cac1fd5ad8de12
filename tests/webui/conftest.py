"""A box with one user per role and real MP4 recordings, served over real HTTPS with real sessions.

The box is built once per test session (Argon2id and H.264 take time) and copied for every test, so
that tests do not see each other's lock-outs or audit entries.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import aiohttp
import pytest

from appliance import config, recordings, roles, statistics, users
from appliance.box import Box, init_box
from appliance.dock.footage import make_mp4
from tests.conftest import PASSWORD
from tests.template_fixtures import ids as rec_ids, original as clip_bytes, template_copy  # noqa: F401  (fixtures)
from tests.web_helpers import WebClient, https_client, log_in
from webui.site import create_app

# name -> (role, team); every one has PASSWORD
USERS = {
    "admin": (roles.KEEPER, None),
    "tl": (roles.TEAM_LEADER, "Noord"),
    "fg": (roles.PRIVACY_OFFICER, None),
    "jansen": (roles.OFFICER, "Noord"),
    "audit": (roles.AUDITOR, None),
}
ROLE_USER = {role: name for name, (role, _team) in USERS.items()}
START = datetime(2026, 11, 20, 13, 5, 0, tzinfo=timezone.utc)  # 14:05 in Amsterdam
# The boxes under test live at a fixed moment two days after the footage, so that no test depends on
# the real date (after 28 days a sweep would delete the fixtures).
NOW = START + timedelta(days=2)


def fixed_clock() -> datetime:
    return NOW


HOSTILE = '<script>alert("x")</script>'


CHUNK = 65536  # small chunks, so that a range read covers several of them


def _build(data: Path, workdir: Path) -> dict:
    box, _recovery = init_box(data, "admin", PASSWORD, kdf_profile="interactive")
    box.close()
    config.write_template(data, {"security": {"kdf_profile": "interactive"}, "storage": {"chunk_size": CHUNK}})
    with Box(data, clock=fixed_clock) as box:
        identity = box.unlock("admin", PASSWORD)
        for name, (role, team) in USERS.items():
            if name != "admin":
                users.add_user(box, "admin", name, role, PASSWORD, team=team, identity=identity)
        ids = {}
        # (key, camera, officer, team, start, seconds)
        clips = [
            ("noord", "CAM001", "jansen", "Noord", START, 20),
            ("zuid", "CAM002", "de Vries", "Zuid", START + timedelta(hours=3), 4),
            ("hostile", HOSTILE, HOSTILE, "Noord", START + timedelta(days=1), 2),
        ]
        for key, camera, officer, team, start, seconds in clips:
            clip = make_mp4(workdir / f"{key}.mp4", seconds, start, camera[:6])
            result = recordings.import_file(box, clip, camera=camera, officer=officer, start=start,
                                            pre_record_s=30, post_record_s=30)
            # An import takes the team of its officer's user (jansen: Noord); the others are no users.
            box.catalog.db.execute("UPDATE recordings SET team = ? WHERE id = ?", [team, result.recording_id])
            statistics.refresh(box.catalog, result.recording_id)  # counted as if stored with that team
            ids[key] = result.recording_id
    return ids


@pytest.fixture(scope="session")
def box_template(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("webbox")
    ids = _build(root / "data", root)
    return root / "data", ids


@pytest.fixture
def web_box(data) -> Box:
    with Box(data, clock=fixed_clock) as opened:
        yield opened


class Web(WebClient):
    """The web UI's client, with a login that returns the answer (tests/web_helpers.py)."""

    async def login(self, name: str, password: str = PASSWORD) -> aiohttp.ClientResponse:
        return await log_in(self.client, name, password)

    async def as_role(self, role: str) -> None:
        response = await self.login(ROLE_USER[role])
        assert response.status == 303, await response.text()


@pytest.fixture
async def web(web_box) -> Web:
    app = create_app(web_box)
    async with https_client(web_box, app) as client:
        yield Web(web_box, client, app)
