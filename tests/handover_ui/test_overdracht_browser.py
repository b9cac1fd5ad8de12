"""A handover in real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright): one privacy
officer prepares it from the recording's page with a time window and a passphrase; a second one approves
it with the password, sees the passphrase once and downloads the package, which verifies (signature and
every hash) with that passphrase. Screenshots go to test-output/handover_ui/ for a person to look at."""

from __future__ import annotations

import re

import pytest

from appliance import audit, handover, package_verify
from tests.browser_helpers import OUTPUT, login, needs_chromium, press, shot
from tests.browser_helpers import browser_page as chromium_browser_page
from tests.conftest import PASSWORD

SHOTS = OUTPUT / "handover_ui"

pytestmark = needs_chromium


@pytest.fixture
async def browser_page(hbox):
    async with chromium_browser_page(hbox, SHOTS, accept_downloads=True) as page:
        yield page


async def test_prepare_and_approve_a_handover_in_chromium(browser_page, hbox, ids, tmp_path):
    page = browser_page
    await login(page, "fg", PASSWORD)
    await page.goto(f"/opnames/{ids['noord']}")
    await press(page, "Overdracht voorbereiden", "**/overdrachten/nieuw?opname=*")
    await page.get_by_label("Organisatie").fill("Politie Midden-Nederland")
    await page.get_by_label("Eenheid").fill("District Utrecht-Stad")
    await page.get_by_label("Naam", exact=True).fill("R. de Boer")
    await page.get_by_label("Dienstnummer").fill("AB1234")
    await page.get_by_label("Vordering", exact=True).check()
    await page.get_by_label("Artikel").fill("art. 126nd Sv")
    await page.get_by_label("Zaaknummer").fill("PV-2026-0815")
    await page.get_by_label("Doel").select_option("police_report")
    await page.locator(f"#from_{ids['noord']}").fill("3")
    await page.locator(f"#to_{ids['noord']}").fill("14:05:08")
    await page.get_by_label("Versleutelen met een wachtwoordzin", exact=False).check()
    await shot(page, SHOTS, "01-voorbereiden")
    await press(page, "Overdracht voorbereiden", re.compile(r".*/overdrachten/OV-\d{4}-\d{4}$"))
    handover_id = re.search(r"OV-\d{4}-\d{4}", page.url).group(0)
    main = await page.inner_text("main")
    assert "tweede persoon" in main and "wacht op goedkeuring" in main
    assert await page.get_by_role("button", name="Goedkeuren en pakket maken").count() == 0
    await shot(page, SHOTS, "02-voorbereid")
    await press(page, "Uitloggen", "**/login")

    await login(page, "fg2", PASSWORD)
    await page.get_by_role("link", name="Overdrachten", exact=True).click()
    # The handover waits for this privacy officer's approval: the register says so above the list.
    waiting = page.locator("#wachtend")
    assert "Wacht op uw goedkeuring" in await waiting.inner_text()
    await shot(page, SHOTS, "02b-wacht-op-goedkeuring")
    await waiting.get_by_role("link", name=handover_id).click()
    assert "Deze overdracht wacht op uw goedkeuring." in await page.inner_text("main")
    await page.get_by_label("Uw wachtwoord").fill(PASSWORD)
    await shot(page, SHOTS, "03-goedkeuren")
    await page.get_by_role("button", name="Goedkeuren en pakket maken").click()
    passphrase = (await page.locator("#passphrase").inner_text(timeout=60000)).strip()
    assert len(passphrase) >= 20
    await shot(page, SHOTS, "04-goedgekeurd")
    async with page.expect_download() as info:
        await page.get_by_role("link", name="Download het pakket").click()
    download = await info.value
    assert download.suggested_filename == f"{handover_id}.zip.age"
    saved = tmp_path / download.suggested_filename
    await download.save_as(saved)

    report = package_verify.verify(saved, passphrase=passphrase)
    assert report.ok, report.problems
    assert report.manifest["case_ref"] == "PV-2026-0815" and report.manifest["approved_by"] == "fg2"
    assert report.manifest["files"][0]["clip"]["from_s"] == 3.0
    assert "Politie Midden-Nederland, District Utrecht-Stad, R. de Boer" in report.manifest["receiver"]
    assert handover.get(hbox, handover_id)["state"] == handover.APPROVED
    assert [e["actor"] for e in audit.entries(hbox.catalog, action="handover_approve")] == ["fg2"]
    # The passphrase is shown once: the handover's page does not show it again. The package, though, is
    # still offered there after a reload, and a second download is on record as well.
    await page.reload()
    await page.goto(f"/overdrachten/{handover_id}")
    assert passphrase not in await page.content()
    async with page.expect_download() as info:
        await page.get_by_role("link", name="Download het pakket").click()
    again = await info.value
    await again.save_as(tmp_path / "again.zip.age")
    assert (tmp_path / "again.zip.age").read_bytes() == saved.read_bytes()
    downloads = audit.entries(hbox.catalog, action="handover_download")
    assert [(e["actor"], e["details"]["download"]) for e in downloads] == [("fg2", 1), ("fg2", 2)]
    await shot(page, SHOTS, "05-overdracht")
