"""In real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright): the privacy officer
registers an access request through the form, sees the recording found and held with the deadline, and
closes it. Screenshots go to test-output/requests/."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from appliance import retention
from appliance.box import Box
from verzoeken_helpers import INCIDENT, PASSWORD, Clock
from webui.server import start_web

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parents[2] / "test-output" / "requests"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium not installed (make debs)")


@pytest.fixture
async def browser(template, tmp_path):
    from playwright.async_api import async_playwright

    data = tmp_path / "data"
    shutil.copytree(template[0], data)
    with Box(data, clock=Clock(INCIDENT + timedelta(days=2))) as box:
        runner = await start_web(box, "127.0.0.1", 0)
        port = runner.addresses[0][1]
        SHOTS.mkdir(parents=True, exist_ok=True)
        async with async_playwright() as p:
            chromium = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            context = await chromium.new_context(ignore_https_errors=True, base_url=f"https://127.0.0.1:{port}",
                                                 viewport={"width": 1280, "height": 900})
            page = await context.new_page()
            try:
                yield page, box
            finally:
                await context.close()
                await chromium.close()
                await runner.cleanup()


async def test_register_an_access_request_through_the_form(browser, template):
    page, box = browser
    ids = template[1]
    await page.goto("/login")
    await page.get_by_label("Gebruikersnaam").fill("fg")
    await page.get_by_label("Wachtwoord").fill(PASSWORD)
    await page.get_by_role("button", name="Inloggen").click()
    await page.wait_for_url("**/")
    await page.get_by_role("link", name="Verzoeken", exact=True).click()
    await page.get_by_role("link", name="Verzoek registreren").click()
    await page.wait_for_url("**/verzoeken/nieuw")
    await page.get_by_label("Verzoeker", exact=True).fill("P. de Boer")
    await page.get_by_label("Soort", exact=True).select_option(label="inzageverzoek")
    await page.get_by_label("Ontvangen op").fill("2026-11-21")
    await page.get_by_label("Datum en tijd die de verzoeker noemt").fill("2026-11-20T14:05")
    await page.get_by_label("Plaats die de verzoeker noemt").fill("Oudegracht, bij de Bakkerbrug")
    await page.get_by_label("Camera (optioneel)").fill("CAM001")
    await page.screenshot(path=str(SHOTS / "01-verzoek-nieuw.png"), full_page=True)
    await page.get_by_role("button", name="Registreren en zoeken").click()
    await page.wait_for_url("**/verzoeken/1?nieuw=1")
    await page.screenshot(path=str(SHOTS / "02-verzoek.png"), full_page=True)
    main = await page.inner_text("main")
    assert "Geregistreerd. 1 opnames gevonden en bewaard voor dit verzoek." in main
    assert "21-12-2026 (nog 29 dagen)" in await page.inner_text("#deadline")
    assert await page.get_by_role("link", name=ids["a"]).count() == 1
    (hold,) = retention.active_holds(box.catalog, ids["a"])
    assert (hold["purpose"], hold["case_ref"]) == ("access_request", "VZ-2026-0001")

    await page.get_by_label("Uitkomst", exact=True).select_option(label="beantwoord")
    await page.get_by_label("Kenmerk van het besluit").fill("AVG-2026-12")
    await page.get_by_role("button", name="Verzoek afsluiten").click()
    await page.wait_for_url("**/verzoeken/1#opnames")
    assert "afgesloten: beantwoord (besluit AVG-2026-12)" in await page.inner_text("#status")
    await page.screenshot(path=str(SHOTS / "03-verzoek-afgesloten.png"), full_page=True)
    assert retention.active_holds(box.catalog, ids["a"]) == []
