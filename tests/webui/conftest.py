"""A box with one user per role and real MP4 recordings, served over real HTTPS with real sessions.

The box is built once per test session (Argon2id and H.264 take time) and copied for every test, so
that tests do not see each other's lock-outs or audit entries.
"""

from __future__ import annotations

import re
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from appliance import config, recordings, roles, tls, users
from appliance.box import Box, init_box
from appliance.dock.footage import make_mp4
from webui.site import create_app

PASSWORD = "correct horse battery staple"
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
            # The team comes with the camera's assignment on offload; an import names none.
            box.catalog.db.execute("UPDATE recordings SET team = ? WHERE id = ?", [team, result.recording_id])
            ids[key] = result.recording_id
    return ids


@pytest.fixture(scope="session")
def web_template(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("webbox")
    ids = _build(root / "data", root)
    return root / "data", ids


@pytest.fixture
def web_box(web_template, tmp_path) -> Box:
    template, _ids = web_template
    data = tmp_path / "data"
    shutil.copytree(template, data)
    with Box(data, clock=fixed_clock) as opened:
        yield opened


@pytest.fixture
def rec_ids(web_template) -> dict:
    return web_template[1]


@pytest.fixture
def clip_bytes(web_template):
    """The plaintext MP4 of a recording (kept beside the template box), by key."""
    return lambda key: (web_template[0].parent / f"{key}.mp4").read_bytes()


class Web:
    """A real HTTPS server on the box and a client that logs in like a browser."""

    def __init__(self, box: Box, client: TestClient, app):
        self.box, self.client, self.app = box, client, app

    async def login(self, name: str, password: str = PASSWORD) -> aiohttp.ClientResponse:
        self.client.session.cookie_jar.clear()
        page = await self.client.get("/login")
        token = csrf_of(await page.text())
        return await self.client.post("/login", data={"username": name, "password": password, "csrf": token},
                                      allow_redirects=False)

    async def as_role(self, role: str) -> None:
        response = await self.login(ROLE_USER[role])
        assert response.status == 303, await response.text()

    async def csrf(self, path: str = "/") -> str:
        return csrf_of(await (await self.client.get(path)).text())


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


@pytest.fixture
async def web(web_box) -> Web:
    app = create_app(web_box)
    server = TestServer(app)
    await server.start_server(ssl=tls.server_context(web_box.data_dir))
    connector = aiohttp.TCPConnector(ssl=False)  # self-signed: tests check the fingerprint elsewhere
    client = TestClient(server, cookie_jar=aiohttp.CookieJar(unsafe=True), connector=connector)
    await client.start_server()
    yield Web(web_box, client, app)
    await client.close()
