"""The first-boot wizard in real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright) against a
real `kluis serve` on an empty directory: the keeper fills in the Dutch forms, writes the recovery key down,
types two groups back, skips the archive, and then logs in on the normal login page of the same process (and,
as a new box requires of its keeper, sets up the second factor first). At a
desktop and at a phone width: every step fits the window and axe-core finds no serious or critical violation.
Screenshots go to test-output/setup/ (and with KLUIS_UI_SHOTS=<dir>, `make screenshots`, there too)."""

from __future__ import annotations

import os
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest

from appliance import users
from appliance.box import Box
from tests.browser_helpers import (OUTPUT, chromium_page, layout_problems, needs_chromium, press, save_small,
                                   with_axe)

SHOTS = OUTPUT / "setup"
PASSWORD = "een goed wachtwoord voor de kluis"

pytestmark = needs_chromium


@pytest.mark.parametrize("width", [1280, 390])
async def test_keeper_sets_up_the_box_in_chromium_and_logs_in(serve, tmp_path, width):
    data = tmp_path / "data"
    box = serve(data)
    box.find(r"setup wizard is at")
    problems: list[str] = []
    async with chromium_page(box.url, SHOTS, viewport={"width": width, "height": 900}) as page:
        await with_axe(page.context)

        async def shot(page, _shots, name: str) -> None:
            """The step's screenshot, and what is wrong with its layout (see layout_problems)."""
            problems.extend(f"{name}: {p}" for p in (await layout_problems(page))[1])
            await page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)
            if os.environ.get("KLUIS_UI_SHOTS"):
                # the documentation's copy hides the recovery key: a key in a repository's picture reads as real
                save_small(await page.screenshot(full_page=True, mask=[page.locator("#recovery-key code")]),
                           Path(os.environ["KLUIS_UI_SHOTS"]) / f"setup-{name}-{width}.png")

        await page.goto("/")  # whatever the address, the wizard
        await page.wait_for_url("**/setup")
        await shot(page, SHOTS, "01-start")
        await page.get_by_label("Naam van de vestiging").fill("Handhaving Noord")
        await page.get_by_label("Naam van de gemeente").fill("Gemeente Noorderveld")
        await page.get_by_label("Gebruikersnaam van de beheerder").fill("els")
        await page.get_by_label("Wachtwoord", exact=True).fill(PASSWORD)
        await page.get_by_label("Wachtwoord nogmaals").fill(PASSWORD)
        await page.get_by_role("button", name="Volgende").click()

        key_text = page.locator("#recovery-key")
        await key_text.wait_for()
        recovery = (await key_text.inner_text()).strip()
        assert re.fullmatch(r"KLUIS(-[A-Z2-7]{1,5}){11}", recovery)
        await shot(page, SHOTS, "02-herstelsleutel")
        await page.get_by_role("button", name="Ik heb hem opgeschreven").click()

        await page.get_by_role("button", name="Bevestigen").wait_for()
        assert recovery not in await page.content()
        await shot(page, SHOTS, "03-bevestigen")
        labels = await page.locator("label[for^=group]").all_inner_texts()
        parts = recovery.split("-")
        for label in labels:
            number = int(label.split()[-1])
            await page.get_by_label(label, exact=True).fill(parts[number])
        await page.get_by_role("button", name="Bevestigen").click()

        await page.get_by_role("button", name="Overslaan").wait_for()
        await shot(page, SHOTS, "04-archief")
        await page.get_by_role("button", name="Overslaan").click()
        await page.get_by_text("Kluis is ingericht en start nu").wait_for()
        await shot(page, SHOTS, "05-klaar")

        box.find(r"Kluis is serving")  # the same process, now the box
        await page.get_by_role("link", name="Naar de inlogpagina").click()
        await page.get_by_label("Gebruikersnaam").fill("els")
        await page.get_by_label("Wachtwoord").fill(PASSWORD)
        # A new box requires a second factor of its keeper ([security] totp_required): set it up first.
        await press(page, "Inloggen", box.url + "/account")
        await page.get_by_text("Voor uw rol is op deze kluis een tweede factor verplicht").wait_for()
        await shot(page, SHOTS, "05-tweede-factor")
        await press(page, "Instellen", "**/account/tweestaps")
        secret = (await page.locator("code.details").inner_text()).strip()
        step = int(datetime.now(timezone.utc).timestamp()) // users.TOTP_STEP_S  # the box runs on the real clock
        await page.get_by_label("Code uit uw authenticator-app").fill(users.totp_code(secret, step))
        await press(page, "Aanzetten", box.url + "/account")
        await page.goto("/")
        main = await page.inner_text("main")
        assert "Overzicht" in main and "Klok en gegevensbescherming" in main, "\n".join(box.lines)
        assert "Handhaving Noord" in await page.inner_text("header")
        await shot(page, SHOTS, "06-overzicht")

        response = await page.goto("/setup")
        assert response.status == 404
    assert not problems, "\n".join(problems)
    assert box.stop() == 0
    with Box(data) as made:
        assert bytes(made.unlock_recovery(recovery).public_key) == bytes(made.public_key)
        assert made.settings.box.municipality == "Gemeente Noorderveld"
        assert made.settings.security.totp_required == ["keeper", "privacy_officer"]  # what a new box requires
        assert made.catalog.get_user("els")["totp_secret"]
