"""End to end in real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright): log in, find a
recording by date and time, view it with a purpose (the video plays and seeks), place a hold, see it in
the log. Screenshots of every page go to test-output/webui/ for a person to look at."""

from __future__ import annotations

import pytest

from appliance import audit
from tests.browser_helpers import ARGS, OUTPUT, login, needs_chromium, press, shot
from tests.browser_helpers import browser_page as chromium_browser_page
from tests.webui.conftest import PASSWORD

SHOTS = OUTPUT / "webui"
# the video plays without a click
AUTOPLAY_ARGS = [*ARGS, "--autoplay-policy=no-user-gesture-required"]

pytestmark = needs_chromium


@pytest.fixture
async def browser_page(web_box):
    async with chromium_browser_page(web_box, SHOTS, AUTOPLAY_ARGS) as page:
        yield page


async def logout(page) -> None:
    await press(page, "Uitloggen", "**/login")


async def test_find_view_seek_hold_and_see_it_in_the_log(browser_page, web_box, rec_ids):
    page = browser_page
    await page.goto("/login")
    await shot(page, SHOTS, "01-login")
    await login(page, "tl", PASSWORD)
    await shot(page, SHOTS, "02-overzicht")

    # Find the recording by the date and time a complaint names (14:05:12 local, within the 20 s recording).
    await page.get_by_role("link", name="Opnames").click()
    await page.get_by_label("Van (datum en tijd)").fill("2026-11-20T14:05:12")
    await page.get_by_label("Tot (datum en tijd)").fill("2026-11-20T14:05:12")
    await press(page, "Zoeken", "**/opnames?*")
    await shot(page, SHOTS, "03-opnames-gevonden")
    assert "1 opname gevonden" in await page.inner_text("main")
    await page.get_by_role("link", name="20-11-2026 14:05:00").click()
    await page.wait_for_url(f"**/opnames/{rec_ids['noord']}")

    # View it: the purpose first.
    await page.get_by_role("button", name="Bekijken").click()  # without a purpose: the browser asks
    assert await page.locator("video").count() == 0
    await page.get_by_label("Doel", exact=True).first.select_option("complaint")
    await page.get_by_label("Zaaknummer").first.fill("KL-2026-042")
    await page.get_by_role("button", name="Bekijken").click()
    video = page.locator("video#video")
    await video.wait_for()
    assert await page.evaluate("document.createElement('video').canPlayType('video/mp4; codecs=\"avc1.42E01E\"')")
    await page.wait_for_function("() => document.getElementById('video').readyState >= 1", timeout=15000)
    duration = await page.evaluate("document.getElementById('video').duration")
    assert 19 < duration < 21
    await page.evaluate("document.getElementById('video').muted = true; document.getElementById('video').play()")
    await page.wait_for_function("() => document.getElementById('video').currentTime > 1.0", timeout=15000)
    # Seek near the end: the browser asks for a range, the box decrypts only the chunks covering it.
    await page.evaluate("""() => new Promise(resolve => { const v = document.getElementById('video');
        v.addEventListener('seeked', resolve, {once: true}); v.currentTime = 15; })""")
    seeked = await page.evaluate("document.getElementById('video').currentTime")
    assert 14.5 <= seeked <= 16
    await page.wait_for_function("() => document.getElementById('video').currentTime > 15.5", timeout=15000)
    await page.evaluate("document.getElementById('video').pause()")
    await shot(page, SHOTS, "04-opname-bekijken")
    view = audit.entries(web_box.catalog, action="view")[-1]
    assert (view["actor"], view["purpose"], view["case_ref"]) == ("tl", "complaint", "KL-2026-042")

    # Place a hold.
    await page.get_by_label("Doel", exact=True).last.select_option("complaint")
    await page.locator("#hold_case_ref").fill("KL-2026-042")
    await page.get_by_role("button", name="Bewaren").click()
    await page.wait_for_selector("text=niet zolang er een bewaring loopt")
    await shot(page, SHOTS, "05-opname-bewaard")
    await page.goto("/statistieken")
    await shot(page, SHOTS, "06-statistieken")
    await logout(page)

    # The privacy officer logs in with the keyboard only (the name field has focus; Tab, Enter), sees the
    # view and the hold in the log, and verifies the chain.
    await page.goto("/login")
    # Type only once the name field has focus (autofocus), as a person would: under load it can come late.
    await page.wait_for_function("() => document.activeElement && document.activeElement.name === 'username'")
    await page.keyboard.type("fg")
    await page.keyboard.press("Tab")
    await page.keyboard.type(PASSWORD)
    await page.keyboard.press("Enter")
    await page.wait_for_url("**/")
    await page.get_by_role("link", name="Logboek").click()
    log = await page.inner_text("main")
    assert "plaatste een bewaring op opname" in log and "KL-2026-042" in log and "tl bekeek opname" in log
    await page.get_by_role("button", name="Controleer keten").click()
    await page.wait_for_selector("text=De keten is intact")
    await shot(page, SHOTS, "07-logboek")
    await page.get_by_role("link", name="fg (privacybeheerder)").click()
    await page.get_by_role("button", name="Instellen").click()
    assert "otpauth://totp/" in await page.inner_text("main")
    await shot(page, SHOTS, "07b-account")
    await logout(page)

    # The keeper's pages.
    await login(page, "admin", PASSWORD)
    await page.get_by_role("link", name="Gebruikers").click()
    await shot(page, SHOTS, "08-gebruikers")
    await page.get_by_role("link", name="Camera's").click()
    assert "Camera koppelen" in await page.inner_text("main")
    await shot(page, SHOTS, "11-cameras")
    await page.get_by_role("link", name="Instellingen").click()
    await page.get_by_label("Venster voor synchronisatie").fill("22:00-06:00")
    await page.get_by_role("button", name="Instellingen opslaan").click()
    await page.wait_for_selector("text=Instellingen opgeslagen.")
    assert web_box.settings.sync.window == "22:00-06:00"
    await shot(page, SHOTS, "12-instellingen")
    await page.goto("/opnames")
    assert "Geen toegang" in await page.inner_text("main")
    await shot(page, SHOTS, "09-geen-toegang")
    await page.goto("/taal/en?next=/gebruikers")
    assert "Add a user" in await page.inner_text("main")
    await shot(page, SHOTS, "10-users-english")
