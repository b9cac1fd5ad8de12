"""The redaction pages over real HTTPS: the privacy officer starts a redaction from a recording's page,
follows the job's progress page until it is done, and finds the derivative linked on both recordings'
pages; other roles cannot reach the pages."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import pytest

from appliance import audit, recordings, retention
from appliance.dock.footage import make_mp4
from tests.web_helpers import csrf_of


async def wait_done(web, job_path: str, timeout: float = 90) -> dict:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        response = await web.client.get(job_path + ".json")
        assert response.status == 200
        status = await response.json()
        if status["state"] in ("done", "failed"):
            return status
        assert loop.time() < deadline, status
        await asyncio.sleep(0.2)


async def test_privacy_officer_redacts_from_the_recording_page(web, rec_ids):
    await web.as_role("privacy_officer")
    rid = rec_ids["zuid"]
    page = await (await web.client.get(f"/opnames/{rid}")).text()
    assert f'href="/opnames/{rid}/redigeren"' in page
    form = await web.client.get(f"/opnames/{rid}/redigeren")
    assert form.status == 200
    token = csrf_of(await form.text())
    started = await web.client.post(f"/opnames/{rid}/redigeren", allow_redirects=False, data={
        "csrf": token, "purpose": "access_request", "case_ref": "VZ-2026-0042", "reason": "inzage",
        "keep": "0,0,60,60", "boxes": "0:100,100,40,40\nb:1:10,200,30,30\nb:2:60,200,30,30", "mute": "1-2"})
    assert started.status == 303, await started.text()
    job_path = started.headers["Location"]
    assert job_path.startswith("/redactie/")
    progress = await web.client.get(job_path)
    assert progress.status == 200 and "<progress" in await progress.text()
    status = await wait_done(web, job_path)
    assert status["state"] == "done", status["error"]
    assert status["done"] == status["total"] > 0
    derivative = status["result"]["recording_id"]
    done_page = await web.client.get(job_path)
    text = await done_page.text()
    assert f'href="/opnames/{derivative}"' in text and "Refresh" not in done_page.headers
    original_page = await (await web.client.get(f"/opnames/{rid}")).text()
    assert f'href="/opnames/{derivative}"' in original_page
    derived_page = await (await web.client.get(f"/opnames/{derivative}")).text()
    assert f'href="/opnames/{rid}"' in derived_page
    box = web.box
    assert box.catalog.get_recording(derivative)["derived_from"] == rid
    holds = retention.active_holds(box.catalog, derivative)
    assert [(h["purpose"], h["case_ref"]) for h in holds] == [("access_request", "VZ-2026-0042")]
    logged = audit.entries(box.catalog, recording_id=rid, action="redact")
    assert logged and logged[0]["actor"] == "fg" and logged[0]["client"].startswith("web")
    assert logged[0]["details"]["plan"]["mute"] == [[1.0, 2.0]]
    assert len(logged[0]["details"]["plan"]["boxes"]) == 3


async def test_a_bad_region_is_shown_on_the_form(web, rec_ids):
    await web.as_role("privacy_officer")
    rid = rec_ids["zuid"]
    token = csrf_of(await (await web.client.get(f"/opnames/{rid}/redigeren")).text())
    response = await web.client.post(f"/opnames/{rid}/redigeren", data={
        "csrf": token, "purpose": "access_request", "keep": "1,2,3", "faces": "1"})
    assert response.status == 400
    text = await response.text()
    assert "1,2,3" in text and 'role="alert"' in text
    assert audit.entries(web.box.catalog, action="redact_start") == []


@pytest.mark.parametrize("role", ["team_leader", "officer", "auditor", "keeper"])
async def test_other_roles_cannot_redact(web, rec_ids, role):
    await web.as_role(role)
    rid = rec_ids["noord"]
    assert (await web.client.get(f"/opnames/{rid}/redigeren")).status == 403
    page = await web.client.get(f"/opnames/{rid}")
    if page.status == 200:
        assert "/redigeren" not in await page.text()


async def test_a_still_frame_to_draw_on_is_audited_as_a_view(web, rec_ids):
    await web.as_role("privacy_officer")
    rid = rec_ids["zuid"]
    refused = await web.client.get(f"/opnames/{rid}/redigeren/beeld?t=1")
    assert refused.status == 400 and audit.entries(web.box.catalog, action="view") == []
    still = await web.client.get(f"/opnames/{rid}/redigeren/beeld?t=1.5&purpose=access_request&case_ref=VZ-7")
    assert still.status == 200 and still.content_type == "image/jpeg"
    body = await still.read()
    assert body[:3] == b"\xff\xd8\xff" and len(body) > 1000
    import cv2
    import numpy as np

    image = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape[:2] == (240, 320)
    views = audit.entries(web.box.catalog, action="view", recording_id=rid)
    assert len(views) == 1 and views[0]["purpose"] == "access_request" and views[0]["details"]["still_at_s"] == 1.5
    assert views[0]["case_ref"] == "VZ-7" and views[0]["details"]["for"] == "redaction"
    # without a case of its own the view carries the one the redacted copy would be held for
    await web.client.get(f"/opnames/{rid}/redigeren/beeld?t=0&purpose=access_request")
    assert audit.entries(web.box.catalog, action="view", recording_id=rid)[-1]["case_ref"] == f"redactie-{rid}"


async def test_the_progress_page_stops_a_running_job(web, tmp_path):
    # Two minutes of footage (1200 frames): the job is seen running and is still far from done when the stop
    # arrives, also on a loaded machine (the fixtures' 20 s clip sometimes finished first).
    clip = make_mp4(tmp_path / "long.mp4", 120, datetime(2026, 11, 20, 13, 0, tzinfo=timezone.utc), "LONG")
    rid = recordings.import_file(web.box, clip, camera="CAM001", officer="jansen",
                                 start=datetime(2026, 11, 20, 13, 0, tzinfo=timezone.utc)).recording_id
    web.box.catalog.db.execute("UPDATE recordings SET team = 'Noord' WHERE id = ?", [rid])
    await web.as_role("privacy_officer")
    token = csrf_of(await (await web.client.get(f"/opnames/{rid}/redigeren")).text())
    started = await web.client.post(f"/opnames/{rid}/redigeren", allow_redirects=False, data={
        "csrf": token, "purpose": "complaint", "case_ref": "KL-1", "faces": "1"})
    job_path = started.headers["Location"]
    for _ in range(300):  # until the worker has started it: this stops a running job, not a queued one
        if (await (await web.client.get(job_path + ".json")).json())["state"] == "running":
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the redaction job did not start running")
    page = await web.client.get(job_path)
    assert page.headers.get("Refresh") == "2" and f'action="{job_path}/stoppen"' in await page.text()
    stopped = await web.client.post(job_path + "/stoppen", data={"csrf": token}, allow_redirects=False)
    assert stopped.status == 303
    status = await wait_done(web, job_path)
    assert status["state"] == "failed" and "cancelled" in status["error"]
    assert web.box.catalog.db.execute("SELECT COUNT(*) FROM recordings WHERE derived_from = ?", [rid]).fetchone()[0] == 0
