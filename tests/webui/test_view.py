"""Viewing: the purpose first, the audit entry committed before the first byte, then HTTP Range streaming."""

from __future__ import annotations

import re
from datetime import timedelta

from appliance import audit, retention, sweep
from tests.web_helpers import csrf_of
from tests.webui.conftest import CHUNK


async def _grant(web, recording_id: str, purpose: str = "complaint", case_ref: str = "KL-2026-017") -> str:
    token = csrf_of(await (await web.client.get(f"/opnames/{recording_id}")).text())
    response = await web.client.post(f"/opnames/{recording_id}/bekijken",
                                     data={"purpose": purpose, "case_ref": case_ref, "csrf": token},
                                     allow_redirects=False)
    assert response.status == 303, await response.text()
    return re.search(r"bekijk=([\w-]+)", response.headers["Location"]).group(1)


def _views(box) -> list[dict]:
    return audit.entries(box.catalog, action="view")


async def test_no_purpose_no_audit_no_bytes(web, rec_ids):
    await web.as_role("team_leader")
    rid = rec_ids["noord"]
    page = await (await web.client.get(f"/opnames/{rid}")).text()
    token = csrf_of(page)
    missing = await web.client.post(f"/opnames/{rid}/bekijken", data={"csrf": token, "case_ref": "X"})
    assert missing.status == 400 and "Kies het doel" in await missing.text()
    no_case = await web.client.post(f"/opnames/{rid}/bekijken", data={"csrf": token, "purpose": "complaint"})
    assert no_case.status == 400 and "zaaknummer" in await no_case.text()
    assert _views(web.box) == []
    guessed = await web.client.get(f"/opnames/{rid}/video/anything", headers={"Range": "bytes=0-"})
    body = await guessed.read()
    assert guessed.status == 403 and b"ftyp" not in body and "<video" not in body.decode()


async def test_audit_entry_is_committed_before_the_first_byte(web, rec_ids, clip_bytes):
    await web.as_role("privacy_officer")
    rid = rec_ids["noord"]
    grant = await _grant(web, rid, "access_request", "IV-88")
    # The entry is there, committed (read through a second connection) before any byte was asked for.
    from appliance.catalog import Catalog

    other = Catalog(web.box.catalog.path)
    try:
        entry = audit.entries(other, action="view")[-1]
    finally:
        other.close()
    assert (entry["actor"], entry["recording_id"], entry["purpose"], entry["case_ref"]) == \
        ("fg", rid, "access_request", "IV-88")
    response = await web.client.get(f"/opnames/{rid}/video/{grant}")
    first = await response.content.read(16)
    assert response.status == 200 and first == clip_bytes("noord")[:16]
    assert len(_views(web.box)) == 1  # streaming adds no second entry; the grant carries the first


async def test_when_the_audit_log_cannot_be_written_nothing_is_shown(web, rec_ids):
    await web.as_role("team_leader")
    rid = rec_ids["noord"]
    web.box.catalog.db.execute(
        "CREATE TRIGGER no_audit BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'audit disk gone'); END")
    token = csrf_of(await (await web.client.get(f"/opnames/{rid}")).text())
    response = await web.client.post(f"/opnames/{rid}/bekijken", allow_redirects=False,
                                     data={"purpose": "complaint", "case_ref": "K-1", "csrf": token})
    assert response.status == 500 and "Traceback" not in await response.text()
    web.box.catalog.db.execute("DROP TRIGGER no_audit")
    from webui.app import SESSIONS

    assert all(not s.grants for s in web.app[SESSIONS]._by_id.values())
    assert _views(web.box) == []


async def test_range_requests_return_exactly_the_bytes_asked(web, rec_ids, clip_bytes):
    await web.as_role("team_leader")
    rid = rec_ids["noord"]
    plain = clip_bytes("noord")
    size = len(plain)
    assert size > 2 * CHUNK, "the clip should span several chunks"
    grant = await _grant(web, rid)
    url = f"/opnames/{rid}/video/{grant}"
    whole = await web.client.get(url)
    assert whole.status == 200 and whole.headers["Accept-Ranges"] == "bytes"
    assert await whole.read() == plain
    for header, start, stop in [("bytes=0-99", 0, 100),
                                (f"bytes={CHUNK - 10}-{CHUNK + 9}", CHUNK - 10, CHUNK + 10),  # across a chunk edge
                                (f"bytes={size - 1000}-", size - 1000, size),
                                ("bytes=-500", size - 500, size),
                                (f"bytes=100-{size * 2}", 100, size)]:
        part = await web.client.get(url, headers={"Range": header})
        assert part.status == 206, header
        assert part.headers["Content-Range"] == f"bytes {start}-{stop - 1}/{size}", header
        assert int(part.headers["Content-Length"]) == stop - start
        assert await part.read() == plain[start:stop], header
    for bad in (f"bytes={size}-", "bytes=-0", "bytes=200-100", "bytes=0-1,5-6", "lines=0-5", "bytes=x-"):
        beyond = await web.client.get(url, headers={"Range": bad})
        assert beyond.status == 416 and beyond.headers["Content-Range"] == f"bytes */{size}", bad
    other = await web.client.get(f"/opnames/{rec_ids['zuid']}/video/{grant}")
    assert other.status == 403, "a grant is for one recording only"


async def test_officer_sees_only_own_recordings_and_views_only_for_training(web, rec_ids):
    await web.as_role("officer")
    listing = await (await web.client.get("/opnames")).text()
    assert rec_ids["noord"] in listing and rec_ids["zuid"] not in listing
    assert (await web.client.get(f"/opnames/{rec_ids['zuid']}")).status == 404
    page = await (await web.client.get(f"/opnames/{rec_ids['noord']}")).text()
    assert 'value="training"' in page and 'value="complaint"' not in page
    token = csrf_of(page)
    refused = await web.client.post(f"/opnames/{rec_ids['noord']}/bekijken",
                                    data={"purpose": "complaint", "case_ref": "K", "csrf": token})
    assert refused.status == 400 and "mag opnames niet voor dit doel" in await refused.text()
    grant = await _grant(web, rec_ids["noord"], "training", "")
    assert (await web.client.get(f"/opnames/{rec_ids['noord']}/video/{grant}")).status == 200


async def test_team_leader_sees_own_team_only(web, rec_ids):
    await web.as_role("team_leader")
    listing = await (await web.client.get("/opnames")).text()
    assert rec_ids["noord"] in listing and rec_ids["zuid"] not in listing
    assert (await web.client.get(f"/opnames/{rec_ids['zuid']}")).status == 404


async def test_hold_place_and_release_with_clear_errors(web, rec_ids):
    await web.as_role("team_leader")
    rid = rec_ids["noord"]
    token = csrf_of(await (await web.client.get(f"/opnames/{rid}")).text())
    no_case = await web.client.post(f"/opnames/{rid}/bewaren", data={"purpose": "complaint", "csrf": token})
    assert no_case.status == 400 and "Een bewaring heeft een zaaknummer nodig." in await no_case.text()
    placed = await web.client.post(f"/opnames/{rid}/bewaren",
                                   data={"purpose": "complaint", "case_ref": "KL-9", "csrf": token})
    assert placed.status == 200
    page = await placed.text()
    assert "KL-9" in page and "niet zolang er een bewaring loopt" in page
    hold = retention.active_holds(web.box.catalog, rid)[0]
    listing = await (await web.client.get("/opnames?purpose=complaint")).text()
    assert rid in listing and "1 opname gevonden" in listing
    no_reason = await web.client.post(f"/opnames/{rid}/vrijgeven", data={"hold": str(hold["id"]), "csrf": token})
    assert no_reason.status == 400 and retention.active_holds(web.box.catalog, rid)
    released = await web.client.post(f"/opnames/{rid}/vrijgeven",
                                     data={"hold": str(hold["id"]), "reason": "klacht afgehandeld", "csrf": token})
    assert released.status == 200 and not retention.active_holds(web.box.catalog, rid)
    actions = [(e["action"], e["case_ref"]) for e in audit.entries(web.box.catalog, recording_id=rid)]
    assert ("hold_add", "KL-9") in actions and ("hold_release", "KL-9") in actions


async def test_an_expired_recording_gives_a_clear_page(web, rec_ids):
    await web.as_role("privacy_officer")
    page = await (await web.client.get(f"/opnames/{rec_ids['zuid']}")).text()
    later = web.box.clock() + timedelta(days=400)
    web.box.clock = lambda: later
    sweep.sweep(web.box)
    gone = await web.client.get(f"/opnames/{rec_ids['zuid']}")
    assert gone.status == 404 and "Dat bestaat niet (meer)." in await gone.text()
    late = await web.client.post(f"/opnames/{rec_ids['zuid']}/bekijken",
                                 data={"purpose": "complaint", "case_ref": "K", "csrf": csrf_of(page)})
    assert late.status == 404 and "Traceback" not in await late.text()


async def test_privacy_officer_exports_the_whole_file_after_the_audit_entry(web, rec_ids, clip_bytes):
    await web.as_role("privacy_officer")
    rid = rec_ids["zuid"]
    token = csrf_of(await (await web.client.get(f"/opnames/{rid}")).text())
    missing = await web.client.post(f"/opnames/{rid}/exporteren", data={"purpose": "access_request", "csrf": token})
    assert missing.status == 400 and audit.entries(web.box.catalog, action="export") == []
    response = await web.client.post(f"/opnames/{rid}/exporteren",
                                     data={"purpose": "access_request", "case_ref": "IV-2026-3", "csrf": token})
    assert response.status == 200 and "attachment" in response.headers["Content-Disposition"]
    assert await response.read() == clip_bytes("zuid")
    entry = audit.entries(web.box.catalog, action="export")[0]
    assert (entry["actor"], entry["purpose"], entry["case_ref"]) == ("fg", "access_request", "IV-2026-3")


async def test_the_audit_trail_of_a_recording_shows_a_team_leader_only_own_actions(web, rec_ids):
    """Who else opened a recording, and for what case, is the privacy officer's to see (the same rule as the
    player's view markers): a team leader's page lists their own entries, not the privacy officer's."""
    rid = rec_ids["noord"]
    await web.as_role("privacy_officer")
    await _grant(web, rid, case_ref="IV-SECRET-77")
    await web.as_role("team_leader")
    await _grant(web, rid, case_ref="KL-OWN-12")
    page = await (await web.client.get(f"/opnames/{rid}")).text()
    assert "KL-OWN-12" in page and "IV-SECRET-77" not in page
    assert "Alleen uw eigen handelingen" in page
    await web.as_role("privacy_officer")
    page = await (await web.client.get(f"/opnames/{rid}")).text()
    assert "KL-OWN-12" in page and "IV-SECRET-77" in page
    assert "Alleen uw eigen handelingen" not in page
