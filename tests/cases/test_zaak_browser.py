"""A case's page in real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright): the team leader
finds the case in the menu, sees the own team's recordings on the time line (one bar each, in order) and what
was done, prepares the case's handover through the form; the privacy officer closes the case, and its page
still tells its history. axe-core checks the page. Screenshots go to test-output/cases/."""

from __future__ import annotations

import re

import pytest

from appliance import cases, handover, retention
from tests.browser_helpers import OUTPUT, layout_problems, login, needs_chromium, press, shot, with_axe
from tests.browser_helpers import chromium_page
from tests.cases.conftest import RECEIVER
from tests.conftest import PASSWORD

SHOTS = OUTPUT / "cases"

pytestmark = needs_chromium


@pytest.fixture
async def browser_page(hbox):
    from webui.server import start_web

    runner = await start_web(hbox, "127.0.0.1", 0)
    try:
        async with chromium_page(f"https://127.0.0.1:{runner.addresses[0][1]}", SHOTS) as page:
            await with_axe(page.context)
            yield page
    finally:
        await runner.cleanup()


async def test_a_case_page_in_chromium(browser_page, hbox, ids):
    page = browser_page
    cases.open_case(hbox, "PV-2026-118", "police_report", "fg", title="Mishandeling Oudegracht")
    for key in ("noord", "noord2", "zuid"):
        retention.add_hold(hbox, ids[key], "police_report", "PV-2026-118", "fg")

    await login(page, "tl", PASSWORD)
    await page.get_by_role("link", name="Zaken", exact=True).click()
    await page.get_by_role("link", name="PV-2026-118").click()
    await page.wait_for_url("**/zaken/PV-2026-118")
    assert await page.get_by_role("heading", level=1).inner_text() == "Zaak PV-2026-118: Mishandeling Oudegracht"
    rows = page.locator("table.timeline tbody tr")
    assert await rows.count() == 2  # team Noord's two recordings; team Zuid's is outside the scope
    bars = page.locator("table.timeline rect[fill='#01689b']")
    xs = [float(await bars.nth(i).get_attribute("x")) for i in range(2)]
    assert xs[0] == 0 and xs[1] > xs[0]  # the first starts the time line, the second comes later
    box_first, box_second = await bars.nth(0).bounding_box(), await bars.nth(1).bounding_box()
    assert box_first["width"] > 0 and box_second["x"] > box_first["x"]  # drawn where it says
    main = await page.inner_text("main")
    assert "Nog 1 opname van deze zaak valt buiten uw bereik." in main
    assert "opende zaak PV-2026-118" in main and ids["zuid"] not in main
    _width, problems = await layout_problems(page)
    assert not problems, problems
    await shot(page, SHOTS, "01-zaak-teamleider")

    await page.get_by_label("Ontvanger (organisatie, eenheid, naam, dienstnummer)").fill(RECEIVER)
    await page.get_by_label("Grondslag").select_option("vrijwillig")
    await page.get_by_label("Bescherming").select_option("passphrase")
    await press(page, "Overdracht van de zaak voorbereiden", re.compile(r".*/overdrachten/OV-\d{4}-\d{4}$"))
    handover_id = re.search(r"OV-\d{4}-\d{4}", page.url).group(0)
    prepared = handover.get(hbox, handover_id)
    assert prepared["recording_ids"] == [ids["noord"], ids["noord2"]] and prepared["case_ref"] == "PV-2026-118"
    await shot(page, SHOTS, "02-overdracht-voorbereid")
    await press(page, "Uitloggen", "**/login")

    await login(page, "fg", PASSWORD)
    await page.goto("/zaken/PV-2026-118")
    await page.get_by_label("Reden (niet verplicht)").fill("vonnis onherroepelijk")
    await press(page, "Zaak sluiten", "**/zaken/PV-2026-118")
    status = await page.locator("#case-status").inner_text()
    assert "gesloten" in status and "vonnis onherroepelijk" in status
    assert await page.locator("table.timeline tbody tr").count() == 3  # its history stays
    assert "sloot zaak PV-2026-118" in await page.inner_text("main")
    assert not retention.active_holds(hbox.catalog)
    _width, problems = await layout_problems(page)
    assert not problems, problems
    await shot(page, SHOTS, "03-zaak-gesloten")
