"""The player on /opnames/{id} in real Chromium, on a real recording: the timeline in clock time (the corrected
start), earlier views as markers (whose: appliance.timeline), speed, frame step, keys, and the report of what
was played. Bookmark markers are shown with an Axis recording in test_axis_ui.py."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta

from appliance import audit, footage, timeline
from appliance.clock import to_iso
from tests.browser_helpers import ARGS, OUTPUT, needs_chromium, press, shot
from tests.web_helpers import csrf_of
from tests.webui.conftest import PASSWORD, START

VIDEO = "document.getElementById('video')"


def _earlier_view(box, name: str, recording: dict, played: str, purpose: str = "complaint") -> int:
    """`name` watched the recording before (through the gate), and its player reported `played`."""
    opened = footage.open_for_viewing(box, box.catalog.get_user(name), recording["id"], purpose, "KL-7",
                                      identity=box.unlock(name, PASSWORD), client="web 127.0.0.1")
    assert timeline.record_played(box, name, recording, opened.audit_seq, purpose, "KL-7", played)
    return opened.audit_seq


def _shift_camera_clock(box, recording_id: str, offset_s: float) -> None:
    """The camera ran `offset_s` behind the box: the catalog keeps its own time and the corrected one."""
    recording = box.catalog.get_recording(recording_id)
    box.catalog.db.execute("UPDATE recordings SET clock_offset_s = ?, camera_start_time = ? WHERE id = ?",
                           [offset_s, to_iso(START - timedelta(seconds=offset_s)), recording["id"]])


async def _open_player(page, recording_id: str) -> None:
    await page.goto(f"/opnames/{recording_id}")
    await page.get_by_label("Doel", exact=True).first.select_option("complaint")
    await page.get_by_label("Zaaknummer").first.fill("KL-2026-044")
    await press(page, "Bekijken", f"**/opnames/{recording_id}?bekijk=*")
    await page.locator("#tijdlijn").wait_for(state="visible")
    await page.wait_for_function(f"() => {VIDEO}.readyState >= 1 && isFinite({VIDEO}.duration)")


async def _left(locator) -> float:
    return float((await locator.evaluate("m => m.style.left")).rstrip("%"))


async def _time(page) -> float:
    return await page.evaluate(f"() => {VIDEO}.currentTime")


async def _seek_to(page, seconds: float) -> None:
    await page.evaluate(f"""s => new Promise(done => {{ const v = {VIDEO}; v.pause();
        v.addEventListener('seeked', () => done(), {{once: true}}); v.currentTime = s; }})""", seconds)


async def _wait_for_time(page, predicate: str) -> None:
    await page.wait_for_function(f"() => {{ const t = {VIDEO}.currentTime; return {predicate}; }}", timeout=5000)


@needs_chromium
async def test_clock_time_markers_speed_frame_step_and_keys(web, rec_ids):
    from tests.browser_helpers import browser_page, login  # playwright: imported only where Chromium is

    box = web.box
    rid = rec_ids["noord"]  # 20 s at 10 fps from START, 14:05:00 in Amsterdam
    _shift_camera_clock(box, rid, 42.0)
    recording = box.catalog.get_recording(rid)
    _earlier_view(box, "tl", recording, "10-12")            # the team leader watched 14:05:10-14:05:12
    _earlier_view(box, "jansen", recording, "2-4", "training")  # the officer, for training
    shots = OUTPUT / "webui-speler"
    async with browser_page(box, shots, [*ARGS, "--autoplay-policy=no-user-gesture-required"]) as page:
        await login(page, "fg", PASSWORD)
        await _open_player(page, rid)
        await page.evaluate(f"() => {{ {VIDEO}.muted = true; }}")
        # clock time: the corrected start (14:05:00), not the camera's own (14:04:18), nor 0:00
        assert await page.inner_text("#schaal span:first-child") == "14:05:00"
        assert await page.inner_text("#schaal span:last-child") == "14:05:20"
        labels = await page.locator("#schaal span").all_inner_texts()
        assert all(re.fullmatch(r"14:05:\d\d", label) for label in labels) and len(labels) >= 3, labels
        assert await page.inner_text("#klok") == "14:05:00" and await page.inner_text("#klok-einde") == "14:05:20"
        assert "42" in await page.inner_text("#klok-uitleg")  # the correction is said, with its size
        assert not await page.evaluate(f"() => {VIDEO}.controls")  # its own controls, not two timelines
        # hovering the timeline: the clock time under the pointer
        track = page.locator("#positie")
        box_ = await track.bounding_box()
        await page.mouse.move(box_["x"] + box_["width"] * 0.25, box_["y"] + box_["height"] / 2)
        tip = await page.inner_text("#tijd-tip")
        assert tip in ("14:05:04", "14:05:05"), tip  # a quarter of 20 s (the thumb's inset makes it about)
        # the privacy officer sees both earlier views, placed where they were watched
        viewed = page.locator("#bekeken button")
        assert await viewed.count() == 2
        by_tl = page.locator("#bekeken button[title*='door tl ']")
        assert abs(await _left(by_tl) - 50) < 0.5
        assert abs(float((await by_tl.evaluate("m => m.style.width")).rstrip("%")) - 10) < 0.5
        assert "klacht" in await by_tl.get_attribute("title") and "KL-7" in await by_tl.get_attribute("title")
        assert abs(await _left(page.locator("#bekeken button[title*='jansen']")) - 10) < 0.5
        table = await page.inner_text("#eerder-bekeken")
        assert "tl" in table and "jansen" in table and "14:05:10–14:05:12" in table
        legend = await page.inner_text("#legenda")
        assert "bekeken door een ander" in legend and "door u" not in legend and "bladwijzer" not in legend
        await shot(page, shots, "01-speler")
        await by_tl.click()
        assert abs(await _time(page) - 10) < 0.05
        assert await page.inner_text("#klok") == "14:05:10"
        assert await track.get_attribute("aria-valuetext") == "14:05:10"

        # speed
        await page.get_by_role("button", name="Snelheid 2×").click()
        assert await page.evaluate(f"() => {VIDEO}.playbackRate") == 2
        assert await page.get_by_role("button", name="Snelheid 2×").get_attribute("aria-pressed") == "true"
        assert await page.get_by_role("button", name="Snelheid 1×").get_attribute("aria-pressed") == "false"
        await page.get_by_role("button", name="Snelheid 0,5×").click()
        assert await page.evaluate(f"() => {VIDEO}.playbackRate") == 0.5

        # frame step: one frame of this 10 fps file (the rate read from the file) is 0.1 s
        assert await page.get_attribute("#tijdlijn", "data-fps") == "10.0"
        await _seek_to(page, 5.0)
        await page.get_by_role("button", name="Eén beeld verder").click()
        assert abs(await _time(page) - 5.1) < 0.01
        await page.get_by_role("button", name="Eén beeld terug").click()
        await page.get_by_role("button", name="Eén beeld terug").click()
        assert abs(await _time(page) - 4.9) < 0.01

        # keys, with the focus on the page (not in a field)
        await page.evaluate("() => document.activeElement && document.activeElement.blur()")
        await page.keyboard.press(".")
        assert abs(await _time(page) - 5.0) < 0.01
        await page.keyboard.press(",")
        assert abs(await _time(page) - 4.9) < 0.01
        await page.keyboard.press("ArrowRight")
        assert abs(await _time(page) - 9.9) < 0.01
        await page.keyboard.press("ArrowLeft")
        await page.keyboard.press("ArrowLeft")
        assert abs(await _time(page) - 0) < 0.01
        await page.get_by_role("button", name="Snelheid 1×").click()
        await page.evaluate("() => document.activeElement.blur()")
        await page.keyboard.press("Space")
        await page.wait_for_function(f"() => !{VIDEO}.paused && {VIDEO}.currentTime > 1.2")
        assert await page.get_by_role("button", name="Pauzeren").count() == 1
        await page.keyboard.press("Space")
        assert await page.evaluate(f"() => {VIDEO}.paused")
        # the arrows on the timeline itself seek 5 s too (not the slider's own small step)
        at = await _time(page)
        await track.focus()
        await page.keyboard.press("ArrowRight")
        assert abs(await _time(page) - (at + 5)) < 0.01
        # a key typed in a field is the field's
        await page.evaluate(f"() => {{ {VIDEO}.currentTime = 3; }}")
        await page.get_by_label("Zaaknummer").last.press("ArrowRight")
        assert abs(await _time(page) - 3) < 0.01
        assert "spatie" in await page.inner_text("#sneltoetsen")
        await shot(page, shots, "02-speler-gepauzeerd")
        # what was played is on record for the next viewer (sent on pause)
        for _ in range(50):
            played = [e for e in audit.entries(box.catalog, action=timeline.PLAYED) if e["actor"] == "fg"]
            if played:
                break
            await asyncio.sleep(0.1)
        assert played and played[-1]["purpose"] == "complaint" and played[-1]["case_ref"] == "KL-2026-044"
        assert played[-1]["details"]["ranges"][0][0] < 1.0  # it started playing at the start

        # the team leader sees the own earlier view only, not the privacy officer's nor the officer's
        await press(page, "Uitloggen", "**/login")
        await login(page, "tl", PASSWORD)
        await _open_player(page, rid)
        assert await page.locator("#bekeken button").count() == 1
        own = page.locator("#bekeken button.own")
        assert abs(await _left(own) - 50) < 0.5
        assert "eerder door u bekeken" in await page.inner_text("#legenda")
        assert "een ander" not in await page.inner_text("#legenda")
        table = await page.inner_text("#eerder-bekeken")
        assert "fg" not in table and "jansen" not in table and "Alleen uw eigen" in table
        html = await page.content()
        assert "KL-2026-044" not in html.split('id="eerder-bekeken"')[1].split("</details>")[0]
        await shot(page, shots, "03-speler-teamleider")


async def test_the_played_report_needs_the_grant_and_the_token(web, rec_ids):
    """The report is no way around the gate: no grant, another recording's grant or no CSRF token, no entry."""
    await web.as_role("team_leader")
    rid = rec_ids["noord"]
    token = csrf_of(await (await web.client.get(f"/opnames/{rid}")).text())
    response = await web.client.post(f"/opnames/{rid}/bekijken", allow_redirects=False,
                                     data={"purpose": "complaint", "case_ref": "K-1", "csrf": token})
    grant = re.search(r"bekijk=([\w-]+)", response.headers["Location"]).group(1)
    url = f"/opnames/{rid}/video/{grant}/afgespeeld"
    assert (await web.client.post(url, data={"ranges": "1-2"})).status == 403  # no token
    assert (await web.client.post(f"/opnames/{rid}/video/guess/afgespeeld",
                                  data={"ranges": "1-2", "csrf": token})).status == 403
    assert audit.entries(web.box.catalog, action=timeline.PLAYED) == []
    assert (await web.client.post(url, data={"ranges": "1-2", "csrf": token})).status == 204
    [entry] = audit.entries(web.box.catalog, action=timeline.PLAYED)
    view = audit.entries(web.box.catalog, action="view")[-1]
    assert (entry["actor"], entry["recording_id"], entry["details"]) == ("tl", rid, {"view": view["seq"],
                                                                                   "ranges": [[1.0, 2.0]]})
    # the page of the opened player lists the own view with where it was watched
    page = await (await web.client.get(f"/opnames/{rid}?bekijk={grant}")).text()
    assert 'id="tijdlijn"' in page and "0:01–0:02" not in page  # the current view is not an earlier one
    assert (await web.client.get(f"/opnames/{rec_ids['zuid']}?bekijk={grant}")).status == 404


@needs_chromium
async def test_the_player_fits_a_phone(web, rec_ids):
    from tests.browser_helpers import browser_page, login

    box = web.box
    recording = box.catalog.get_recording(rec_ids["noord"])
    _earlier_view(box, "tl", recording, "10-12")
    shots = OUTPUT / "webui-speler"
    async with browser_page(box, shots, viewport={"width": 390, "height": 844}) as page:
        await login(page, "fg", PASSWORD)
        await _open_player(page, rec_ids["noord"])
        await shot(page, shots, "04-speler-telefoon")
        widest = await page.evaluate("""() => Math.max(...[...document.querySelectorAll(
            '#speler video, #tijdlijn, #tijdlijn button, #tijdlijn input, #schaal span, #eerder-bekeken')]
            .map(e => e.getBoundingClientRect().right))""")
        assert widest <= 390, widest
        # the controls can be touched: no button smaller than 44 px (WCAG 2.5.5)
        small = await page.evaluate("""() => [...document.querySelectorAll('.player-controls button')]
            .filter(b => !b.hidden).map(b => b.getBoundingClientRect()).filter(r => r.width < 44 || r.height < 44).length""")
        assert small == 0
