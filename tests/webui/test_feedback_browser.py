"""Feedback as a person gets it in real Chromium: the confirmation after placing a hold is a status message
(read out by a screen reader), and a second identical hold is refused with the message at the case
reference field, which the browser exposes as that field's accessible description."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import expect

from tests.browser_helpers import browser_page as chromium_browser_page
from tests.browser_helpers import login, needs_chromium, shot, OUTPUT
from tests.webui.conftest import PASSWORD

SHOTS = OUTPUT / "webui-feedback"
pytestmark = needs_chromium


@pytest.fixture
async def browser_page(web_box):
    async with chromium_browser_page(web_box, SHOTS) as page:
        yield page


async def place_hold(page, case_ref: str) -> None:
    await page.get_by_label("Doel", exact=True).last.select_option("complaint")
    await page.locator("#hold_case_ref").fill(case_ref)
    await page.get_by_role("button", name="Bewaren").click()
    await page.wait_for_load_state()


async def test_hold_confirmed_then_duplicate_flagged_at_its_field(browser_page, rec_ids):
    page = browser_page
    await page.goto("/login")
    await login(page, "tl", PASSWORD)
    await page.goto(f"/opnames/{rec_ids['noord']}")
    await place_hold(page, "KL-2026-77")
    await expect(page.get_by_role("status").filter(has_text="Bewaring geplaatst")).to_have_text(
        "Bewaring geplaatst voor zaak KL-2026-77.")
    await expect(page.locator("dd", has_text="bewaard")).to_have_count(1)  # the state says held at once
    await shot(page, SHOTS, "01-bewaring-bevestigd")

    await place_hold(page, "KL-2026-77")
    field = page.locator("#hold_case_ref")
    await expect(field).to_have_attribute("aria-invalid", "true")
    await expect(field).to_have_accessible_description(
        re.compile(r"^Deze opname heeft al een lopende bewaring voor dit doel en zaaknummer \(geplaatst op \d+ "
                   r"\w+ 2026 om \d\d:\d\d door tl\)\.$"))
    await expect(page.get_by_role("alert").first).to_contain_text("De bewaring is niet geplaatst")
    await shot(page, SHOTS, "02-dubbele-bewaring")


async def test_a_refused_field_and_a_confirmation_on_a_phone_pass_axe(web_box):
    """The users page at 390 px: a team leader without a team is refused at the team field (its accessible
    description is the message), then added with a confirmation said once; a stale update's English is folded.
    Every one of these states fits the phone and axe-core finds nothing serious or critical."""
    from appliance import maintenance, update
    from tests.browser_helpers import layout_problems, with_axe

    staged = maintenance.update_dir(web_box) / update.STAGED
    staged.write_bytes(b"not a signed bundle")
    async with chromium_browser_page(web_box, SHOTS, viewport={"width": 390, "height": 844}) as page:
        await with_axe(page.context)
        await page.goto("/login")
        await login(page, "admin", PASSWORD)
        await page.goto("/gebruikers")
        await page.locator("#new-name").fill("teamleider2")
        await page.locator("#new-role").select_option("team_leader")
        await page.locator("#new-password").fill("een goed lang wachtwoord")
        await page.locator('form[action="/gebruikers"] button[type=submit]').click()
        await page.wait_for_load_state()
        team = page.locator("#new-team")
        await expect(team).to_have_attribute("aria-invalid", "true")
        await expect(team).to_have_accessible_description(re.compile(r"team", re.I))
        await expect(page.locator("#new-team-error")).to_be_visible()
        await shot(page, SHOTS, "03-veld-gemarkeerd-telefoon")
        assert await layout_problems(page) == (390, [])

        await team.fill("Zuid")
        await page.locator("#new-password").fill("een goed lang wachtwoord")
        await page.locator('form[action="/gebruikers"] button[type=submit]').click()
        await page.wait_for_load_state()
        status = page.get_by_role("status").filter(has_text="toegevoegd")
        await expect(status).to_have_text("Gebruiker teamleider2 toegevoegd.")
        await shot(page, SHOTS, "04-bevestiging-telefoon")
        assert await layout_problems(page) == (390, [])
        await page.reload()
        await expect(page.get_by_role("status").filter(has_text="toegevoegd")).to_have_count(0)

        await page.goto("/onderhoud")
        await expect(page.get_by_role("alert").first).to_contain_text("De klaargezette update klopt niet meer")
        details = page.locator("details.technical").first
        await expect(details.locator("span[lang=en]")).to_be_hidden()  # folded until asked for
        await details.locator("summary").click()
        await expect(details.locator("span[lang=en]")).to_be_visible()
        await shot(page, SHOTS, "05-update-technisch-telefoon")
        assert await layout_problems(page) == (390, [])


async def test_the_handover_form_with_every_field_refused_passes_axe_on_a_phone(web_box, rec_ids):
    """The handover form sent empty (the browser's own checks switched off, as an old browser would): every
    refused field is marked, the radio groups too, and the page still fits 390 px with no serious or critical
    axe-core finding (aria-invalid on radio buttons, descriptions pointing at present elements)."""
    from tests.browser_helpers import layout_problems, with_axe

    rid = rec_ids["noord"]
    async with chromium_browser_page(web_box, SHOTS, viewport={"width": 390, "height": 844}) as page:
        await with_axe(page.context)
        await page.goto("/login")
        await login(page, "tl", PASSWORD)
        await page.goto(f"/overdrachten/nieuw?opname={rid}")
        await page.locator(f"#from_{rid}").fill("morgen")
        await page.evaluate("document.querySelector('form[action=\"/overdrachten/nieuw\"]').noValidate = true")
        await page.get_by_role("button", name="Overdracht voorbereiden").click()
        await page.wait_for_load_state()
        for field in ("#receiver_org", "#receiver_name", "#case_ref", "#purpose", f"#from_{rid}"):
            await expect(page.locator(field)).to_have_attribute("aria-invalid", "true")
        await expect(page.locator("#receiver_org")).to_have_accessible_description(re.compile("ontvangende organisatie"))
        radios = page.locator('input[name="protection"]')
        await expect(radios.first).to_have_attribute("aria-invalid", "true")
        await expect(radios.first).to_have_accessible_description(re.compile(r"\w"))
        await shot(page, SHOTS, "06-overdracht-velden-telefoon")
        assert await layout_problems(page) == (390, [])
