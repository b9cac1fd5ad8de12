"""In real headless Chromium: the privacy officer shows a frame, drags a keep region and a box on it (the
form gets the video's pixels), starts the redaction and watches the progress page reload until done."""

from __future__ import annotations

import re

from tests.browser_helpers import login, needs_chromium, press, shot
from tests.webui.conftest import PASSWORD
from tests.webui.test_browser import SHOTS

pytestmark = needs_chromium


async def drag(page, x0: float, y0: float, x1: float, y1: float) -> None:
    box = await page.locator("#still").bounding_box()
    await page.mouse.move(box["x"] + x0 * box["width"], box["y"] + y0 * box["height"])
    await page.mouse.down()
    await page.mouse.move(box["x"] + x1 * box["width"], box["y"] + y1 * box["height"], steps=4)
    await page.mouse.up()


async def test_draw_regions_on_a_frame_and_redact(browser_page, rec_ids):
    page = browser_page
    rid = rec_ids["zuid"]
    await login(page, "fg", PASSWORD)
    await page.goto(f"/opnames/{rid}")
    await page.get_by_role("link", name="Redigeren").click()
    await page.wait_for_url(f"**/opnames/{rid}/redigeren")
    await page.locator("#still_purpose").select_option("access_request")
    await page.locator("#still_t").fill("1")
    async with page.expect_response(lambda r: "/redigeren/beeld" in r.url and r.status == 200):
        await page.get_by_role("button", name="Beeld tonen").click()
    await page.wait_for_timeout(300)  # the image is decoded and laid out (the page's CSP forbids eval here)
    await drag(page, 0.0, 0.0, 0.5, 0.5)               # keep: the top-left quarter of 320x240
    keep = await page.locator("#keep").input_value()
    x, y, w, h = map(int, keep.strip().split(","))
    assert abs(x) <= 2 and abs(y) <= 2 and abs(w - 160) <= 4 and abs(h - 120) <= 4, keep
    await page.locator("input[name=draw_as][value=box]").check()
    await page.locator("#draw_label").fill("fiets")
    await drag(page, 0.5, 0.5, 0.75, 1.0)
    boxes = await page.locator("#boxes").input_value()
    assert re.fullmatch(r"fiets:1(\.0)?:\d+,\d+,\d+,\d+", boxes.strip()), boxes
    await page.locator("#purpose").select_option("access_request")
    await page.locator("#case_ref").fill("VZ-2026-0099")
    await page.locator("#mute").fill("0-1")
    await shot(page, SHOTS, "redactie-form")
    await press(page, "Redigeren starten", "**/redactie/*")
    await page.wait_for_selector("#derivative", timeout=90_000)  # the page reloads itself until the job is done
    await shot(page, SHOTS, "redactie-done")
    derivative = (await page.locator("#derivative").inner_text()).strip()
    await page.locator("#derivative").click()
    await page.wait_for_url(f"**/opnames/{derivative}")
    assert rid in await page.locator("#redactie").inner_text()
