"""What the tests of the web UI over real HTTPS share: a box's app served with its own TLS certificate, a
client that keeps cookies like a browser and fills in the CSRF token of each form, and the login form.
Imported as `tests.web_helpers` (the tests import shared code through the `tests.` path)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from appliance import tls
from appliance.box import Box
from tests.conftest import PASSWORD


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


OWN_SCRIPT = re.compile(r'<script src="/static/[a-z]+\.js"( defer)?>')


def injected_scripts(html: str) -> list[str]:
    """The page's <script> tags other than the box's own static files (every page loads /static/kluis.js): an
    escaping test wants none."""
    return [tag for tag in re.findall(r"<script\b[^>]*>", html, re.IGNORECASE) if not OWN_SCRIPT.fullmatch(tag)]


@asynccontextmanager
async def https_client(box: Box, app: web.Application) -> AsyncIterator[TestClient]:
    """app on a free local port over HTTPS with the box's certificate, and a client of it that keeps cookies
    for the IP address and trusts the self-signed certificate (tests check the fingerprint elsewhere)."""
    server = TestServer(app)
    await server.start_server(ssl=tls.server_context(box.data_dir))
    client = TestClient(server, cookie_jar=aiohttp.CookieJar(unsafe=True),
                        connector=aiohttp.TCPConnector(ssl=False))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


async def log_in(client: TestClient, name: str, password: str = PASSWORD) -> aiohttp.ClientResponse:
    """Forget the client's session, then send the login form as name; the answer (303 when it worked)."""
    client.session.cookie_jar.clear()
    token = csrf_of(await (await client.get("/login")).text())
    return await client.post("/login", data={"username": name, "password": password, "csrf": token},
                             allow_redirects=False)


class WebClient:
    """A real HTTPS server on the box and a client that logs in like a browser."""

    def __init__(self, box: Box, client: TestClient, app: web.Application | None = None):
        self.box, self.client, self.app = box, client, app

    async def login(self, name: str, password: str = PASSWORD) -> None:
        response = await log_in(self.client, name, password)
        assert response.status == 303, await response.text()

    async def csrf(self, path: str = "/") -> str:
        return csrf_of(await (await self.client.get(path)).text())

    async def get(self, path: str) -> tuple[int, str]:
        response = await self.client.get(path)
        return response.status, await response.text()

    async def page(self, path: str) -> str:
        status, html = await self.get(path)
        assert status == 200, (path, status)
        return html

    async def post(self, path: str, data: dict, csrf_from: str = "/") -> aiohttp.ClientResponse:
        """Send data as a form, with the CSRF token of the page at csrf_from."""
        return await self.client.post(path, data={"csrf": await self.csrf(csrf_from), **data}, allow_redirects=False)
