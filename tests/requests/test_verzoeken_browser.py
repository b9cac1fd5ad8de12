"""In real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright): the privacy officer
registers an access request through the form, sees the recording found and held with the deadline, and
closes it. Screenshots go to test-output/requests/."""

from __future__ import annotations

import pytest

from appliance import retention
from tests.browser_helpers import OUTPUT, browser_page, login, needs_chromium, press, shot
from verzoeken_helpers import PASSWORD

SHOTS = OUTPUT / "requests"

pytestmark = needs_chromium


@pytest.fixture
async def browser(copied_box):
    async with browser_page(copied_box, SHOTS) as page:
        yield page, copied_box


async def test_register_an_access_request_through_the_form(browser, template):
    page, box = browser
    ids = template[1]
    await login(page, "fg", PASSWORD)
    await page.get_by_role("link", name="Verzoeken", exact=True).click()
    await page.get_by_role("link", name="Verzoek registreren").click()
    await page.wait_for_url("**/verzoeken/nieuw")
    await page.get_by_label("Verzoeker", exact=True).fill("P. de Boer")
    await page.get_by_label("Soort", exact=True).select_option(label="inzageverzoek")
    await page.get_by_label("Ontvangen op").fill("2026-11-21")
    await page.get_by_label("Datum en tijd die de verzoeker noemt").fill("2026-11-20T14:05")
    await page.get_by_label("Plaats die de verzoeker noemt").fill("Oudegracht, bij de Bakkerbrug")
    await page.get_by_label("Camera (optioneel)").fill("CAM001")
    await shot(page, SHOTS, "01-verzoek-nieuw")
    await press(page, "Registreren en zoeken", "**/verzoeken/1")
    await shot(page, SHOTS, "02-verzoek")
    main = await page.inner_text("main")
    assert "Geregistreerd. 1 opname gevonden en bewaard voor dit verzoek." in main
    assert "21-12-2026 (nog 29 dagen)" in await page.inner_text("#deadline")
    assert await page.get_by_role("link", name=ids["a"]).count() == 1
    (hold,) = retention.active_holds(box.catalog, ids["a"])
    assert (hold["purpose"], hold["case_ref"]) == ("access_request", "VZ-2026-0001")

    await page.get_by_label("Uitkomst", exact=True).select_option(label="beantwoord")
    await page.get_by_label("Kenmerk van het besluit").fill("AVG-2026-12")
    await press(page, "Verzoek afsluiten", "**/verzoeken/1#opnames")
    assert "afgesloten: beantwoord (besluit AVG-2026-12)" in await page.inner_text("#status")
    await shot(page, SHOTS, "03-verzoek-afgesloten")
    assert retention.active_holds(box.catalog, ids["a"]) == []
