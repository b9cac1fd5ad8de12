"""The camera page against the real thing: `kluis serve` (with its web UI over HTTPS) and a simulated
camera (`kluis camera-sim`) on loopback mDNS. The keeper pairs the camera in the browser's forms with the
code it shows; its recording is offloaded, the overview's progress stream reports it, and the privacy
officer finds it under Opnames."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import shutil

import aiohttp

from tests.dock.dock_helpers import BoxServer, Camera, configure_box
from tests.web_helpers import csrf_of
from tests.webui.conftest import PASSWORD

SERIAL = f"WEBCAM-{secrets.token_hex(2).upper()}"  # loopback mDNS is shared with other test runs


class Browserish:
    def __init__(self, base: str):
        self.base = base
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True),
                                          connector=aiohttp.TCPConnector(ssl=False))

    async def get(self, path: str, **kw) -> tuple[int, str]:
        async with self.http.get(self.base + path, **kw) as r:
            return r.status, await r.text()

    async def post(self, path: str, data: dict) -> aiohttp.ClientResponse:
        async with self.http.post(self.base + path, data=data, allow_redirects=False) as r:
            await r.read()
            return r

    async def login(self, name: str) -> None:
        self.http.cookie_jar.clear()
        _, page = await self.get("/login")
        response = await self.post("/login", {"username": name, "password": PASSWORD, "csrf": csrf_of(page)})
        assert response.status == 303


async def poll(check, timeout: float, what: str):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.3)


async def test_pair_in_the_web_ui_then_offload_shows_progress_and_the_recording(box_template, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(box_template[0], data)
    configure_box(data, ["127.0.0.1"])
    camera = Camera(tmp_path / "cam", SERIAL)
    server = BoxServer(data)
    web = None
    try:
        port = int(server.find(r"web UI: listening on 127\.0\.0\.1:(\d+)").group(1))
        web = Browserish(f"https://127.0.0.1:{port}")
        await web.login("admin")

        async def discovered():
            status, page = await web.get("/cameras")
            return status == 200 and SERIAL in page and page
        page = await poll(discovered, 20, "the camera on /cameras")
        wrong = await web.post("/cameras/koppelen", {"serial": SERIAL, "code": "00000000", "csrf": csrf_of(page)})
        assert wrong.status == 400
        response = await web.post("/cameras/koppelen", {"serial": SERIAL, "code": camera.code, "officer": "jansen",
                                                        "csrf": csrf_of(page)})
        assert response.status == 303 and response.headers["Location"] == "/cameras"
        _, page = await web.get(response.headers["Location"])
        assert f"Camera {SERIAL} is gekoppeld." in page
        # the wrong code left an alert, said in Dutch (the code itself is not shown)
        assert f"Koppelen van camera {SERIAL} is geweigerd: de code was verkeerd." in page
        assert "wrong_code" not in page and "pair_refused" not in page

        entry = camera.record(2)

        async def offloaded():
            _, events = await web.get("/overzicht/voortgang?once=1")
            match = re.search(r"^data: (.*)$", events, re.M)
            progress = json.loads(match.group(1)) if match else {}
            mine = progress.get(SERIAL)
            return mine and mine["state"] == "done" and mine["recordings_done"] >= 1 and mine
        mine = await poll(offloaded, 60, "the offload to be reported done")
        assert mine["bytes_done"] >= entry["size"]
        _, cameras_page = await web.get("/cameras")
        row = re.search(re.escape(SERIAL) + r"<br>(.*?)</tr>", cameras_page, re.S).group(1)
        assert re.search(r"<td>\d\d-\d\d-\d{4} \d\d:\d\d:\d\d</td>", row), "when it last docked"
        _, overview = await web.get("/")
        assert SERIAL in overview and "<progress" in overview and "voortgang.js" in overview

        await web.login("fg")
        _, listing = await web.get("/opnames", params={"camera": SERIAL})
        assert "1 opname gevonden" in listing and "jansen" in listing
        # The offload names the officer only; the team leader of jansen's team sees it all the same.
        await web.login("tl")
        _, listing = await web.get("/opnames", params={"camera": SERIAL})
        assert "1 opname gevonden" in listing
        rid = re.search(r'href="/opnames/([0-9a-f]+)"', listing).group(1)
        status, _page = await web.get(f"/opnames/{rid}")
        assert status == 200
        await web.login("audit")
        _, log = await web.get("/logboek", params={"action": "pair"})
        assert "admin" in log and SERIAL in log
    finally:
        if web is not None:
            await web.http.close()
        server.stop()
        camera.stop()
