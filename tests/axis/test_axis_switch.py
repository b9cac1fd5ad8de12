"""The keeper switches the Axis content destination on, moves it and switches it off on the settings page.

Real parts only: the web UI over HTTPS with the real AxisSwitch of `kluis serve` in the same event loop,
real sockets (a TLS handshake and the Swift auth request on the Axis port after the change; a refused
connection after "off"), and `kluis serve` itself as a process for the wiring between the service and the
web UI. A bad address gets a Dutch field error and changes nothing; a change is one settings_change entry.
"""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import aiohttp
import pytest

from appliance import audit, config
from appliance.axis.server import AxisSwitch, CannotListen
from appliance.box import Box
from tests.conftest import PASSWORD
from tests.browser_helpers import needs_chromium
from tests.web_helpers import WebClient, csrf_of, https_client, log_in
from webui.site import create_app

KLUIS = [sys.executable, "-m", "appliance"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def axis_answers(port: int) -> int:
    """The status of a Swift request without a token on the port, over TLS (401 from the content
    destination); raises ConnectionRefusedError when nothing listens there."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw) as tls:
            tls.sendall(b"GET /v1/AUTH_probe HTTP/1.1\r\nHost: kluis\r\nConnection: close\r\n\r\n")
            head = b""
            while b"\r\n" not in head:
                piece = tls.recv(1024)
                if not piece:
                    break
                head += piece
    return int(head.split(b" ", 2)[1])


def form(page: str, on: bool, listen: str) -> dict:
    """The settings form as the page fills it, with the Axis switch and address set."""
    fields = dict(re.findall(r'<input id="([a-z_]+\.[a-z_]+)" name="[^"]+" type="(?:text|number|url)" value="([^"]*)"',
                             page))
    fields = {k: v for k, v in fields.items() if k != "axis.listen"}
    return {**fields, "csrf": csrf_of(page), "axis.listen": listen, **({"axis.on": "1"} if on else {})}


@pytest.fixture
async def keeper(box_dir):
    """The settings page over HTTPS with the Axis switch of a running service; the keeper logged in."""
    with Box(box_dir[0]) as box:
        switch = AxisSwitch(box)
        app = create_app(box, axis_switch=switch.apply)
        async with https_client(box, app) as client:
            web = WebClient(box, client, app)
            await web.login("admin", PASSWORD)
            web.switch = switch  # type: ignore[attr-defined]
            try:
                yield web
            finally:
                await switch.stop()


async def settings_page(web) -> str:
    return await (await web.client.get("/instellingen")).text()


async def test_keeper_switches_axis_on_moves_it_and_off_live(keeper):
    web, port = keeper, free_port()
    page = await settings_page(web)
    assert 'id="axis.on"' in page and "checked" not in page.split('id="axis.on"')[1].split(">")[0]
    assert 'value="0.0.0.0:8444"' in page, "off: the form offers the usual address"
    response = await web.client.post("/instellingen", data=form(page, True, f"127.0.0.1:{port}"), allow_redirects=False)
    assert response.status == 303, await response.text()
    shown = await settings_page(web)
    assert f"De ontvangst van Axis-opnames luistert nu op 127.0.0.1:{port}." in shown
    assert await asyncio.to_thread(axis_answers, port) == 401, "the destination answers on the new port"
    assert tomllib.loads((web.box.data_dir / config.FILENAME).read_text())["axis"]["listen"] == f"127.0.0.1:{port}"
    assert config.load(web.box.data_dir).axis.listen == f"127.0.0.1:{port}"
    change = audit.entries(web.box.catalog, action="settings_change")[-1]
    assert change["actor"] == "admin" and change["details"] == {"axis.listen": {"old": "", "new": f"127.0.0.1:{port}"}}
    assert 'checked' in shown.split('id="axis.on"')[1].split(">")[0]

    moved = free_port()  # moved to another port: the old one closes, the new one answers
    response = await web.client.post("/instellingen", data=form(shown, True, f"127.0.0.1:{moved}"),
                                     allow_redirects=False)
    assert response.status == 303
    assert await asyncio.to_thread(axis_answers, moved) == 401
    with pytest.raises(ConnectionRefusedError):
        await asyncio.to_thread(axis_answers, port)

    page = await settings_page(web)
    response = await web.client.post("/instellingen", data=form(page, False, f"127.0.0.1:{moved}"),
                                     allow_redirects=False)
    assert response.status == 303
    assert "De ontvangst van Axis-opnames staat uit" in await settings_page(web)
    with pytest.raises(ConnectionRefusedError):
        await asyncio.to_thread(axis_answers, moved)
    assert config.load(web.box.data_dir).axis.listen == "" and web.switch.address is None
    assert [e["details"]["axis.listen"]["new"] for e in audit.entries(web.box.catalog, action="settings_change")] \
        == [f"127.0.0.1:{port}", f"127.0.0.1:{moved}", ""]


async def test_a_bad_or_taken_address_gets_a_dutch_field_error_and_changes_nothing(keeper):
    web = keeper
    before = (web.box.data_dir / config.FILENAME).read_text()
    page = await settings_page(web)
    for listen, words in [("8444", "adres en poort zoals 0.0.0.0:8444"), ("127.0.0.1:99999", "adres en poort zoals"),
                          ("kluis local:8444", "adres en poort zoals"), ("<b>x</b>:1", "adres en poort zoals"),
                          ("", "Geef het adres en de poort")]:
        response = await web.client.post("/instellingen", data=form(page, True, listen))
        html = await response.text()
        assert response.status == 400, listen
        assert words in html and 'id="axis.listen-error"' in html and "<b>x" not in html, listen
    with socket.socket() as taken:  # another program holds the port
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        response = await web.client.post("/instellingen", data=form(page, True, f"127.0.0.1:{port}"))
        html = await response.text()
        assert response.status == 400 and "al in gebruik" in html and 'aria-invalid="true"' in html
        assert f'value="127.0.0.1:{port}"' in html, "the keeper's address stays in the field to correct"
    assert (web.box.data_dir / config.FILENAME).read_text() == before
    assert audit.entries(web.box.catalog, action="settings_change") == []
    assert web.switch.address is None
    # Off with a bad address in the field: off is off, the field is not looked at.
    response = await web.client.post("/instellingen", data=form(page, False, "onzin"), allow_redirects=False)
    assert response.status == 303 and (web.box.data_dir / config.FILENAME).read_text() == before


async def test_a_taken_port_on_a_running_destination_keeps_it_running(keeper):
    web, port = keeper, free_port()
    await web.switch.apply(f"127.0.0.1:{port}")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(CannotListen) as refused:
            await web.switch.apply(f"127.0.0.1:{taken.getsockname()[1]}")
        assert refused.value.reason == "in_use"
    assert await asyncio.to_thread(axis_answers, port) == 401 and web.switch.address == f"127.0.0.1:{port}"
    # The same port on another address of the box: the old site makes way, and comes back when refused.
    with pytest.raises(CannotListen):
        await web.switch.apply(f"192.0.2.1:{port}")  # TEST-NET-1: not an address of this box
    assert await asyncio.to_thread(axis_answers, port) == 401 and web.switch.listen == f"127.0.0.1:{port}"


async def test_without_the_service_the_page_says_a_restart_is_needed(box_dir):
    port = free_port()
    with Box(box_dir[0]) as box:
        async with https_client(box, create_app(box)) as client:
            assert (await log_in(client, "admin", PASSWORD)).status == 303
            page = await (await client.get("/instellingen")).text()
            assert "wanneer de dienst opnieuw start" in page
            response = await client.post("/instellingen", data=form(page, True, f"127.0.0.1:{port}"))
            html = await response.text()
            assert "verandert wanneer de dienst opnieuw start (systemctl restart kluis)" in html
        assert config.load(box.data_dir).axis.listen == f"127.0.0.1:{port}"
    with pytest.raises(ConnectionRefusedError):
        axis_answers(port)


def test_kluis_serve_switches_axis_from_its_settings_page(tmp_path, box_dir):
    """The wiring of the real service: its web UI switches its own Axis destination on and off."""
    data, web_port, port = box_dir[0], free_port(), free_port()
    log = tmp_path / "serve.log"
    serve = subprocess.Popen([*KLUIS, "serve", "--data", str(data), "--listen", f"127.0.0.1:{web_port}"],
                             stdout=open(log, "a"), stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while "web UI: listening" not in log.read_text():
            assert serve.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.05)

        async def switch(on: bool) -> None:
            async with aiohttp.ClientSession(f"https://127.0.0.1:{web_port}", cookie_jar=aiohttp.CookieJar(unsafe=True),
                                             connector=aiohttp.TCPConnector(ssl=False)) as client:
                page = await (await client.get("/login")).text()
                await client.post("/login", data={"username": "admin", "password": PASSWORD, "csrf": csrf_of(page)})
                page = await (await client.get("/instellingen")).text()
                response = await client.post("/instellingen", data=form(page, on, f"127.0.0.1:{port}"))
                assert response.status == 200 and "Instellingen opgeslagen." in await response.text()

        asyncio.run(switch(True))
        assert axis_answers(port) == 401
        assert f"Axis content destination: listening on 127.0.0.1:{port}" in log.read_text()
        asyncio.run(switch(False))
        with pytest.raises(ConnectionRefusedError):
            axis_answers(port)
    finally:
        serve.terminate()
        serve.wait(30)
    text = log.read_text()
    assert "Traceback" not in text and " ERROR " not in text, text[-3000:]
    assert config.load(Path(data)).axis.listen == ""


@needs_chromium
async def test_in_chromium_the_keeper_ticks_the_switch_and_the_port_answers(box_dir):
    """The switch as a keeper uses it: label, field, button, message; axe-core finds nothing serious."""
    from tests.browser_helpers import OUTPUT, chromium_page, layout_problems, login, press, shot, with_axe
    from webui.server import start_web

    port = free_port()
    with Box(box_dir[0]) as box:
        switch = AxisSwitch(box)
        runner = await start_web(box, "127.0.0.1", 0, axis_switch=switch.apply)
        shots = OUTPUT / "axis-switch"
        try:
            async with chromium_page(f"https://127.0.0.1:{runner.addresses[0][1]}", shots) as page:
                await with_axe(page.context)
                await login(page, "admin", PASSWORD)
                await page.goto("/instellingen")
                switch_box = page.get_by_label("Opnames ontvangen van Axis-systeemcontrollers (W800)")
                assert not await switch_box.is_checked()
                await switch_box.check()
                await page.get_by_label("Adres en poort").fill(f"127.0.0.1:{port}")
                await press(page, "Instellingen opslaan", "**/instellingen")
                await page.get_by_text(f"luistert nu op 127.0.0.1:{port}").wait_for()
                await shot(page, shots, "aan")
                assert await page.get_by_label("Opnames ontvangen van Axis-systeemcontrollers (W800)").is_checked()
                assert await asyncio.to_thread(axis_answers, port) == 401
                _width, problems = await layout_problems(page)
                assert problems == []
                await page.get_by_label("Adres en poort").fill("geen adres")
                await press(page, "Instellingen opslaan", "**/instellingen")
                error = page.locator("#axis\\.listen-error")
                assert "adres en poort zoals 0.0.0.0:8444" in await error.inner_text()
                assert await page.get_by_label("Adres en poort").get_attribute("aria-invalid") == "true"
                assert await asyncio.to_thread(axis_answers, port) == 401, "a refused change leaves it running"
        finally:
            await runner.cleanup()
            await switch.stop()
