"""A box for the handover pages: one user per role plus a second privacy officer (four eyes), real H.264
recordings, served over real HTTPS with real sessions (the tests/webui approach, copied so that these
tests do not depend on that fixture's internals). Built once per session (tests/handover_box.py, as for
tests/handover), copied per test."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from appliance import roles, tls
from appliance.box import Box
from tests.handover_box import build_template
from webui.site import create_app

PASSWORD = "correct horse battery staple"
USERS = {  # name -> (role, team); every one has PASSWORD
    "fg": (roles.PRIVACY_OFFICER, None),
    "fg2": (roles.PRIVACY_OFFICER, None),
    "tl": (roles.TEAM_LEADER, "Noord"),
    "jansen": (roles.OFFICER, "Noord"),
    "audit": (roles.AUDITOR, None),
}
START = datetime(2026, 11, 20, 13, 5, 0, tzinfo=timezone.utc)  # 14:05 in Amsterdam
NOW = START + timedelta(days=2)


def fixed_clock() -> datetime:
    return NOW


@pytest.fixture(scope="session")
def ui_template(tmp_path_factory) -> tuple[Path, dict]:
    clips = (  # (key, camera, officer, team, start, seconds)
        ("noord", "CAM001", "jansen", "Noord", START, 10),
        ("zuid", "CAM002", "de Vries", "Zuid", START + timedelta(hours=2), 3),
    )
    return build_template(tmp_path_factory.mktemp("handoverui"), PASSWORD, USERS, clips, fixed_clock)


@pytest.fixture
def ui_box(ui_template, tmp_path) -> Box:
    data = tmp_path / "data"
    shutil.copytree(ui_template[0], data)
    with Box(data, clock=fixed_clock) as opened:
        yield opened


@pytest.fixture
def ids(ui_template) -> dict:
    return ui_template[1]


@pytest.fixture
def original(ui_template):
    """The plaintext MP4 a recording was imported from (kept beside the template box), by key."""
    return lambda key: (ui_template[0].parent / f"{key}.mp4").read_bytes()


@pytest.fixture(scope="session")
def age_key(tmp_path_factory) -> tuple[Path, str]:
    """(identity file, public key) made by the real age-keygen."""
    if shutil.which("age-keygen") is None or shutil.which("age") is None:
        pytest.skip("the age CLI (Debian package age) is not installed")
    path = tmp_path_factory.mktemp("agekey") / "receiver.key"
    subprocess.run(["age-keygen", "-o", str(path)], check=True, capture_output=True)
    public = re.search(r"# public key: (age1\w+)", path.read_text()).group(1)
    return path, public


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


class Web:
    """A real HTTPS server on the box and a client that logs in like a browser."""

    def __init__(self, box: Box, client: TestClient):
        self.box, self.client = box, client

    async def login(self, name: str, password: str = PASSWORD) -> None:
        self.client.session.cookie_jar.clear()
        page = await self.client.get("/login")
        response = await self.client.post("/login", data={"username": name, "password": password,
                                                          "csrf": csrf_of(await page.text())},
                                          allow_redirects=False)
        assert response.status == 303, await response.text()

    async def get(self, path: str) -> tuple[int, str]:
        response = await self.client.get(path)
        return response.status, await response.text()

    async def post(self, path: str, data: dict, csrf_from: str = "/") -> aiohttp.ClientResponse:
        token = csrf_of(await (await self.client.get(csrf_from)).text())
        return await self.client.post(path, data={"csrf": token, **data}, allow_redirects=False)


@pytest.fixture
async def web(ui_box) -> Web:
    app = create_app(ui_box)
    server = TestServer(app)
    await server.start_server(ssl=tls.server_context(ui_box.data_dir))
    client = TestClient(server, cookie_jar=aiohttp.CookieJar(unsafe=True),
                        connector=aiohttp.TCPConnector(ssl=False))
    await client.start_server()
    yield Web(ui_box, client)
    await client.close()
