"""In real headless Chromium, from a recording's page without a request: the privacy officer opens the
editor (naming purpose and case), draws a keep region and a box on the video (the form gets the video's
pixels), starts the redaction and watches the progress page reload until done."""

from __future__ import annotations

from tests.browser_helpers import login, needs_chromium, press, shot
from tests.webui.conftest import PASSWORD
from tests.webui.test_browser import SHOTS

from test_redactie_editor import drag_video, editor_ready, scrub_to  # a sibling module: the editor's helpers

pytestmark = needs_chromium


async def test_draw_regions_on_the_video_and_redact(browser_page, rec_ids, web_box):
    from appliance import audit

    page = browser_page
    rid = rec_ids["zuid"]
    await login(page, "fg", PASSWORD)
    await page.goto(f"/opnames/{rid}")
    await page.get_by_role("link", name="Redigeren").click()
    await page.wait_for_url(f"**/opnames/{rid}/redigeren")
    await page.locator("#open_purpose").select_option("complaint")
    await page.locator("#open_case_ref").fill("KL-2026-0099")
    await press(page, "Openen in de editor", "**/redigeren?bekijk=*")
    [view] = audit.entries(web_box.catalog, action="view", recording_id=rid)
    assert (view["purpose"], view["case_ref"], view["details"]["request"]) == ("complaint", "KL-2026-0099", None)
    await editor_ready(page)
    size = await page.evaluate("[document.getElementById('video').videoWidth, document.getElementById('video').videoHeight]")
    await page.locator("input[name=draw_as][value=keep]").check()
    await drag_video(page, (0, 0, size[0] // 2, size[1] // 2))      # keep: the top-left quarter
    assert (await page.locator("#keep").input_value()).strip() == f"0,0,{size[0] // 2},{size[1] // 2}"
    await scrub_to(page, 1.0)
    await page.locator("input[name=draw_as][value=box]").check()
    await drag_video(page, (size[0] // 2, size[1] // 2, size[0] // 4, size[1] // 2))
    assert (await page.locator("#boxes").input_value()).strip() == \
        f"kader1:1:{size[0] // 2},{size[1] // 2},{size[0] // 4},{size[1] // 2}"
    # At phone width the editor fits the screen, and the picture still maps to the video's pixels.
    await page.set_viewport_size({"width": 390, "height": 844})
    assert await page.evaluate("document.documentElement.scrollWidth") <= 390
    await shot(page, SHOTS, "redactie-editor-390")
    await page.locator("input[name=draw_as][value=keep]").check()
    await drag_video(page, (size[0] // 4, size[1] // 4, size[0] // 2, size[1] // 2))
    keep = (await page.locator("#keep").input_value()).strip().splitlines()
    wanted = (size[0] // 4, size[1] // 4, size[0] // 2, size[1] // 2)
    # the mouse moves in whole screen pixels, here about 1.1 video pixels: one off is the screen's rounding
    assert len(keep) == 2 and all(abs(int(a) - b) <= 1 for a, b in zip(keep[1].split(","), wanted)), keep
    await page.locator("#regions li", has_text=keep[1]).get_by_role("button", name="Verwijderen").click()
    await page.set_viewport_size({"width": 1280, "height": 900})
    assert await page.locator("#purpose").input_value() == "complaint"
    assert await page.locator("#case_ref").input_value() == "KL-2026-0099"
    await page.locator("#geavanceerd summary").click()
    await page.locator("#mute").fill("0-1")
    await shot(page, SHOTS, "redactie-form")
    await press(page, "Redigeren starten", "**/redactie/*")
    await page.wait_for_selector("#derivative", timeout=90_000)  # the page reloads itself until the job is done
    await shot(page, SHOTS, "redactie-done")
    derivative = (await page.locator("#derivative").inner_text()).strip()
    await page.locator("#derivative").click()
    await page.wait_for_url(f"**/opnames/{derivative}")
    assert rid in await page.locator("#redactie").inner_text()
