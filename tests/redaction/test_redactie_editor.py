"""The redaction editor in real Chromium, on a real short clip with faces (redactie_media): from an access
request's page the privacy officer opens the editor (the view is audited with the request's reference),
scrubs, draws a box to blur and a region to keep with the mouse, keeps a detected face by clicking it,
previews the result (a server-side preview, audited, that shows the blur) and starts the job. The same
regions typed into the advanced text fields give the same job parameters and the same derivative. Roles
without recordings.redact reach none of the editor's pages."""

from __future__ import annotations

import io
import json
import re
from datetime import timedelta

import av
import numpy as np
import pytest

from appliance import access_requests, audit, jobs, recordings, redaction
from tests.browser_helpers import login, needs_chromium, press, shot
from tests.conftest import PASSWORD, plaintext
from tests.web_helpers import csrf_of
from tests.webui.conftest import NOW, START
from tests.webui.test_browser import SHOTS

import redactie_media as media

CLIP_START = START + timedelta(hours=5)
T = 1.0                               # the moment the operator draws at
BOX = (60, 30, 90, 100)               # around the moving face at T (video pixels)
T2, BOX2 = 2.0, (110, 30, 100, 100)   # and a second later
MUTE = "1-1.1"
BOXES = f"kader1:1:{','.join(map(str, BOX))}\nkader1:2:{','.join(map(str, BOX2))}"
KEEP = (226, 80, 92, 100)             # around the standing face (the requester)


@pytest.fixture
def face_clip(web_box, tmp_path):
    """A 2.5 s 320x240 clip with a moving and a standing face, imported into the web test box, and an access
    request registered around its time (which links and holds it)."""
    clip = media.make_footage(tmp_path / "gezichten.mp4")
    rid = recordings.import_file(web_box, clip.path, camera="CAM009", officer="jansen", start=CLIP_START).recording_id
    web_box.catalog.db.execute("UPDATE recordings SET team = 'Noord' WHERE id = ?", [rid])
    done = access_requests.register(web_box, requester="mevr. Verzoeker", kind="access_request",
                                    received_on=NOW.date(), given_time=CLIP_START, actor="fg", window_minutes=5)
    return clip, rid, done.request


def sharpness(plane, rect) -> float:
    x, y, w, h = rect
    return redaction.laplacian_variance(plane[y:y + h, x:x + w])


def luma_frames(data: bytes) -> list:
    with av.open(io.BytesIO(data)) as m:
        return [f.to_ndarray(format="gray") for f in m.decode(m.streams.video[0])]


def inner(rect, margin=12):
    x, y, w, h = rect
    return x + margin, y + margin, w - 2 * margin, h - 2 * margin


async def editor_ready(page) -> None:
    """Until the video can show a frame and the editor has read its length (the slider's end)."""
    await page.wait_for_function("() => document.getElementById('video').readyState >= 2 && "
                                 "parseFloat(document.getElementById('scrub').max) > 0", timeout=60_000)


async def scrub_to(page, t: float) -> None:
    """Move the editor's slider to t seconds and wait until the video is there (decrypted through the grant)."""
    await page.locator("#scrub").fill(str(t))
    await arrived(page, t)


async def arrived(page, t: float) -> None:
    """Until the video has finished seeking to t and the editor has taken the moment (into the form's t)."""
    await page.wait_for_function(
        f"() => !document.getElementById('video').seeking && "
        f"Math.abs(parseFloat(document.getElementById('form_t').value) - {t}) < 0.01", timeout=60_000)


async def drag_video(page, rect) -> None:
    """Drag from one corner of `rect` (video pixels) to the other, on the picture as displayed."""
    await page.locator("#overlay").scroll_into_view_if_needed()
    shown = await page.locator("#overlay").bounding_box()
    size = await page.evaluate("[document.getElementById('video').videoWidth, document.getElementById('video').videoHeight]")
    sx, sy = shown["width"] / size[0], shown["height"] / size[1]
    x, y, w, h = rect
    await page.mouse.move(shown["x"] + x * sx, shown["y"] + y * sy)
    await page.mouse.down()
    await page.mouse.move(shown["x"] + (x + w / 2) * sx, shown["y"] + (y + h / 2) * sy, steps=3)
    await page.mouse.move(shown["x"] + (x + w) * sx, shown["y"] + (y + h) * sy, steps=3)
    await page.mouse.up()


async def wait_for_derivative(page) -> str:
    await page.wait_for_selector("#derivative", timeout=180_000)  # the progress page reloads until done
    return (await page.locator("#derivative").inner_text()).strip()


def params_of(box, derivative: str) -> dict:
    [job] = [j for j in jobs.list_jobs(box.catalog, kind="redact")
             if (j.get("result") if isinstance(j.get("result"), dict) else json.loads(j.get("result") or "{}"))
             .get("recording_id") == derivative]
    return job["params"] if isinstance(job["params"], dict) else json.loads(job["params"])


@needs_chromium
async def test_draw_preview_and_redact_as_typed(browser_page, web_box, face_clip):
    page = browser_page
    clip, rid, req = face_clip
    ref = req["ref"]
    await login(page, "fg", PASSWORD)

    # From the request's page to the editor, carrying the request.
    await page.goto(f"/verzoeken/{req['id']}")
    await page.locator(f"a[href^='/opnames/{rid}/redigeren']").click()
    await page.wait_for_url(f"**/opnames/{rid}/redigeren?verzoek={ref}")
    assert ref in await page.locator("#verzoek").inner_text()
    assert await page.locator("#open_purpose").input_value() == "access_request"
    assert audit.entries(web_box.catalog, action="view", recording_id=rid) == []  # nothing shown yet
    await press(page, "Openen in de editor", "**/redigeren?bekijk=*")
    [opened] = audit.entries(web_box.catalog, action="view", recording_id=rid)
    assert opened["case_ref"] == ref and opened["purpose"] == "access_request"
    assert opened["details"]["for"] == "redaction" and opened["details"]["request"] == ref

    # Scrub to T through the gate's stream.
    await editor_ready(page)
    await scrub_to(page, T)
    assert (await page.locator("#now").inner_text()).startswith("1,00")

    # A box to blur, drawn with the mouse: a new track at this moment, in the video's pixels.
    await drag_video(page, BOX)
    boxes = (await page.locator("#boxes").input_value()).strip()
    assert boxes == "kader1:1:" + ",".join(map(str, BOX)), boxes
    assert await page.locator("#timeline .keyframe").count() == 1
    assert await page.locator("#overlay .box").count() == 1
    # the sound muted from T for one step (0.1 s), with the player's buttons
    await page.get_by_role("button", name="Geluid dempen vanaf hier").click()
    await page.get_by_role("button", name="Een stap vooruit").click()
    await arrived(page, 1.1)
    await page.get_by_role("button", name="Dempen tot hier").click()
    assert (await page.locator("#mute").input_value()).strip() == MUTE
    # a second keyframe of the same track, a second later: the box moves evenly between the two
    await scrub_to(page, T2)
    await drag_video(page, BOX2)
    boxes = (await page.locator("#boxes").input_value()).strip()
    assert boxes == BOXES, boxes
    assert await page.locator("#timeline .keyframe").count() == 2
    await page.get_by_role("button", name="kader1 1,00 s").click()  # a keyframe on the timeline seeks to it
    await arrived(page, 1.0)

    # Click a detected face to keep it; then take it away again (it is one line of the keep field).
    await page.get_by_role("button", name="Gezichten zoeken in dit beeld").click()
    faces = page.locator("#overlay .face")
    await faces.first.wait_for(timeout=30_000)
    standing = None
    for n in range(await faces.count()):
        b = await faces.nth(n).bounding_box()
        shown = await page.locator("#overlay").bounding_box()
        if b["x"] - shown["x"] > shown["width"] / 2:
            standing = faces.nth(n)
    assert standing is not None, "the standing face was not found"
    await standing.click()
    kx, ky, kw, kh = map(int, (await page.locator("#keep").input_value()).strip().split(","))
    cx, cy = clip.keep[0] + clip.keep[2] / 2, clip.keep[1] + clip.keep[3] / 2
    assert kx <= cx < kx + kw and ky <= cy < ky + kh
    await shot(page, SHOTS, "redactie-editor-gezicht")
    await page.locator("#regions li", has_text="zichtbaar houden").get_by_role("button", name="Verwijderen").click()
    assert (await page.locator("#keep").input_value()).strip() == ""

    # A region to keep, drawn with the mouse.
    await page.locator("input[name=draw_as][value=keep]").check()
    await drag_video(page, KEEP)
    assert (await page.locator("#keep").input_value()).strip() == ",".join(map(str, KEEP))
    await shot(page, SHOTS, "redactie-editor")

    # The preview: made on the server through the gate, audited with the request's reference; it shows the blur.
    await press(page, "Voorbeeld", f"**/opnames/{rid}/redigeren/voorbeeld#voorbeeld")
    src = await page.locator("#preview").get_attribute("src")
    await page.wait_for_function("() => document.getElementById('preview').readyState >= 2", timeout=20_000)
    await shot(page, SHOTS, "redactie-voorbeeld")
    preview = await page.context.request.get(src)
    assert preview.status == 200 and preview.headers["content-type"] == "video/mp4"
    shown_frames = luma_frames(await preview.body())
    with av.open(str(clip.path)) as m:
        original = [f.to_ndarray(format="gray") for f in m.decode(m.streams.video[0])]
    first, at_t = shown_frames[0], original[round(T * media.FPS)]
    assert first.shape == at_t.shape  # the clip is no wider than a preview
    assert sharpness(first, inner(BOX)) < 0.3 * sharpness(at_t, inner(BOX))       # the box is blurred
    assert sharpness(first, inner(KEEP, 20)) > 0.4 * sharpness(at_t, inner(KEEP, 20))  # the requester is not
    views = audit.entries(web_box.catalog, action="view", recording_id=rid)
    assert len(views) == 2 and views[-1]["case_ref"] == ref and views[-1]["details"]["preview_from_s"] == T
    assert views[-1]["details"]["plan"]["keep"][0]["rect"] == list(KEEP)
    # the page came back with the regions and the moment, and the editor on it
    assert (await page.locator("#boxes").input_value()).strip() == boxes
    await editor_ready(page)
    await page.wait_for_function("() => Math.abs(document.getElementById('video').currentTime - 1) < 0.01",
                                 timeout=60_000)

    # Start: the job is for the request.
    await press(page, "Redigeren starten", "**/redactie/*")
    drawn = await wait_for_derivative(page)

    # The same regions typed into the advanced fields, without the editor.
    await page.goto(f"/opnames/{rid}/redigeren")
    await page.locator("#purpose").select_option("access_request")
    await page.locator("#request_ref").fill(ref)
    await page.locator("#keep").fill(",".join(map(str, KEEP)))
    await page.locator("#boxes").fill(BOXES)
    await page.locator("#mute").fill(MUTE)
    await press(page, "Redigeren starten", "**/redactie/*")
    typed = await wait_for_derivative(page)

    assert typed != drawn
    drawn_params, typed_params = params_of(web_box, drawn), params_of(web_box, typed)
    assert drawn_params == typed_params and drawn_params["case_ref"] == ref and drawn_params["request"] == ref
    # The encoder's threads make two runs of one plan differ by a few grey levels, so the derivatives are
    # compared by their redaction logs and frame by frame rather than by hash.
    logs = {e["details"]["derivative"]: e["details"] for e in audit.entries(web_box.catalog, action="redact")}
    counts = [{k: v for k, v in logs[d]["counts"].items() if k != "seconds"} for d in (drawn, typed)]
    assert counts[0] == counts[1] and counts[0]["operator_boxes"] > 0 and counts[0]["faces_kept"] > 0
    assert counts[0]["audio_muted_s"] > 0
    assert logs[drawn]["plan"] == logs[typed]["plan"]
    identity = web_box.unlock("fg", PASSWORD)
    a, b = (luma_frames(plaintext(web_box, identity, d)) for d in (drawn, typed))
    assert len(a) == len(b) == clip.frames
    assert max(float(np.abs(x.astype(float) - y).mean()) for x, y in zip(a, b)) < 2.0
    n = round(T * media.FPS)
    assert sharpness(a[n], inner(BOX)) < 0.3 * sharpness(original[n], inner(BOX))


async def test_the_request_page_links_the_editor_with_the_request(web, face_clip):
    _clip, rid, req = face_clip
    await web.as_role("privacy_officer")
    page = await (await web.client.get(f"/verzoeken/{req['id']}")).text()
    assert f'href="/opnames/{rid}/redigeren?verzoek={req["ref"]}"' in page
    editor = await (await web.client.get(f"/opnames/{rid}/redigeren?verzoek={req['ref']}")).text()
    assert 'name="request_ref" value="' + req["ref"] + '"' in editor


async def test_faces_and_previews_need_the_editor_and_a_purpose(web, face_clip):
    _clip, rid, _req = face_clip
    await web.as_role("privacy_officer")
    assert (await web.client.get(f"/opnames/{rid}/redigeren/gezichten?bekijk=nope&t=1")).status == 403
    assert (await web.client.get(f"/opnames/{rid}/redigeren/voorbeeld/nope")).status == 404
    token = csrf_of(await (await web.client.get(f"/opnames/{rid}/redigeren")).text())
    refused = await web.client.post(f"/opnames/{rid}/redigeren/voorbeeld", data={"csrf": token, "t": "1"})
    assert refused.status == 400 and audit.entries(web.box.catalog, action="view", recording_id=rid) == []
    unknown = await web.client.post(f"/opnames/{rid}/redigeren/openen", data={
        "csrf": token, "purpose": "access_request", "request_ref": "VZ-1999-0001"})
    assert unknown.status == 400 and "Dat verzoek staat niet in het register." in await unknown.text()
    assert audit.entries(web.box.catalog, action="view", recording_id=rid) == []


@pytest.mark.parametrize("role", ["team_leader", "officer", "auditor", "keeper"])
async def test_other_roles_reach_no_page_of_the_editor(web, face_clip, role):
    _clip, rid, req = face_clip
    await web.as_role(role)
    token = csrf_of(await (await web.client.get("/")).text())
    assert (await web.client.get(f"/opnames/{rid}/redigeren")).status == 403
    assert (await web.client.get(f"/opnames/{rid}/redigeren?verzoek={req['ref']}")).status == 403
    for path in ("openen", "voorbeeld"):
        answer = await web.client.post(f"/opnames/{rid}/redigeren/{path}", data={
            "csrf": token, "purpose": "access_request", "case_ref": req["ref"], "t": "1", "keep": "", "boxes": "",
            "mute": "", "faces": "1"})
        assert answer.status == 403, path
    assert (await web.client.get(f"/opnames/{rid}/redigeren/gezichten?bekijk=x&t=1")).status == 403
    assert (await web.client.get(f"/opnames/{rid}/redigeren/beeld?t=1&purpose=access_request")).status == 403
    assert audit.entries(web.box.catalog, action="view", recording_id=rid) == []


async def test_a_preview_is_served_only_under_its_own_recording(web, face_clip, rec_ids):
    """A preview is kept in the session with the recording it was made of: its id under another recording's
    address finds nothing."""
    _clip, rid, req = face_clip
    await web.as_role("privacy_officer")
    token = csrf_of(await (await web.client.get(f"/opnames/{rid}/redigeren")).text())
    made = await web.client.post(f"/opnames/{rid}/redigeren/voorbeeld", data={
        "csrf": token, "purpose": "access_request", "case_ref": req["ref"], "request_ref": req["ref"], "t": "0",
        "keep": "", "boxes": "0:10,10,50,50", "mute": ""})
    page = await made.text()
    assert made.status == 200, page
    preview = re.search(rf"/opnames/{rid}/redigeren/voorbeeld/([\w-]+)", page).group(1)
    assert (await web.client.get(f"/opnames/{rid}/redigeren/voorbeeld/{preview}")).status == 200
    other = rec_ids["noord"]
    assert (await web.client.get(f"/opnames/{other}/redigeren/voorbeeld/{preview}")).status == 404
