"""In real Chromium at phone width (390 px): the logboek, the holds table of a recording and a request's page
stay inside the viewport, and a row with a 100-character case reference wraps instead of growing hugely tall
or pushing the table off-screen (issue 18, item 1). Screenshots go to test-output/logboek/."""

from __future__ import annotations

import pytest

from appliance import access_requests, audit, retention
from tests.browser_helpers import OUTPUT, browser_page, login, needs_chromium, press, shot
from tests.webui.conftest import PASSWORD, START

SHOTS = OUTPUT / "logboek"
PHONE = {"width": 390, "height": 844}
REFERENCE = "K-2026-" + "1234567890" * 9 + "abc"  # 100 characters without a space
assert len(REFERENCE) == 100

pytestmark = needs_chromium


async def _page_width(page) -> int:
    return await page.evaluate("Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)")


@pytest.fixture
async def phone(web_box):
    async with browser_page(web_box, SHOTS, viewport=PHONE) as page:
        yield page


async def test_long_values_wrap_at_phone_width(phone, web_box, rec_ids):
    page = phone
    retention.add_hold(web_box, rec_ids["noord"], "complaint", REFERENCE, "fg")
    with web_box.catalog.transaction():
        audit.record(web_box.catalog, actor="fg", action="request_unlink", recording_id=rec_ids["zuid"],
                     details={"request": REFERENCE, "reason": "verkeerde opname " * 12})
    request = access_requests.register(web_box, requester="Mevrouw " + "Achternaamzonderspatie" * 4, kind="inzage",
                                       received_on=START.date(), given_time=START, actor="fg",
                                       notes="https://example.org/" + "x" * 120).request

    await login(page, "audit", PASSWORD)
    await page.goto("/logboek")
    await shot(page, SHOTS, "logboek-390")
    assert await _page_width(page) <= PHONE["width"]
    row = page.locator("tbody tr", has_text="plaatste een bewaring").filter(has_text="K-2026-1234567890")
    assert REFERENCE in " ".join((await row.inner_text()).split()).replace(" ", "")  # all of it is there, wrapped
    box = await row.bounding_box()
    assert box["height"] < 200 and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    # The raw entry is behind the toggle: closed it takes no room, opened it shows the stored entry.
    raw = row.locator("details.raw pre")
    assert not await raw.is_visible()
    await row.locator("summary").click()
    assert '"case_ref": "' + REFERENCE in await raw.inner_text()
    assert await _page_width(page) <= PHONE["width"]
    await shot(page, SHOTS, "logboek-390-details")

    await press(page, "Uitloggen", "**/login")
    await login(page, "fg", PASSWORD)
    await page.goto(f"/opnames/{rec_ids['noord']}")
    holds = page.locator("#bewaringen table")
    await holds.scroll_into_view_if_needed()
    await shot(page, SHOTS, "opname-390")
    hold_row = holds.locator("tbody tr", has_text="K-2026-")
    hold_box = await hold_row.bounding_box()
    assert hold_box["x"] + hold_box["width"] <= PHONE["width"] and hold_box["height"] < 400
    assert (await holds.bounding_box())["width"] <= PHONE["width"]

    await page.goto(f"/verzoeken/{request['id']}")
    await shot(page, SHOTS, "verzoek-390")
    recordings = page.locator("#opnames table")
    assert (await recordings.bounding_box())["width"] <= PHONE["width"]
    assert await page.locator("dl.meta").evaluate("e => e.scrollWidth <= e.clientWidth")
