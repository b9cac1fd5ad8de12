"""The web UI's side of Axis body-worn systems (appliance/axis/): the Axis section of /cameras, the connection file
(the keeper only, the password again, a download), and an Axis recording's page (trigger reasons, location
and map link, GNSS track, bookmarks as list and as markers under the player, its parts one after another,
each with its own 'view' entry).

The recordings come in the real way: the real Axis server (appliance.axis.server.start_axis, HTTPS with the
box's certificate) on a free port, and python-swiftclient as the W800, using the connection file the keeper
downloaded from the web UI (its key, its URL, its pinned certificate)."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import ssl
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import quote

import aiohttp
import pytest
import swiftclient.client

from appliance import audit, footage, timeline
from appliance.axis import overview
from appliance.axis.server import start_axis
from appliance.dock.footage import make_mp4
from tests.browser_helpers import ARGS, OUTPUT, needs_chromium, press, shot
from tests.web_helpers import csrf_of
from tests.webui.conftest import PASSWORD, START

ROLE_REFUSAL = "Uw rol staat dit niet toe."
SITE = "Stadhuis Utrecht"
ACCOUNT = "stadhuis-utrecht"
SYSTEM_ID = "8f2c61d0-5b1e-4c55-9a53-02f1c0ffee00"
SYSTEM_NAME = "W800 Stadhuis"
USER_UUID = "3b1d2a44-1c52-4a7e-b9a7-5be1d4a0c001"
SERIAL = "B8A44F3C2D1E"
ON = START + timedelta(hours=5)  # 2026-11-20 18:05:00 UTC, 19:05 in Amsterdam
CLIP_S = 3  # two clips of 3 s: part 1 from ON, part 2 right after it
BOOKMARK_AT = ON + timedelta(seconds=2)  # 2 s into part 1
HOSTILE = '<script>alert("bm")</script>'
TRACK = [(52.090737, 5.121420), (52.091000, 5.122000), (52.091514, 5.123105)]


def _epoch(moment: datetime) -> str:
    return str(int(moment.timestamp()))


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _meta(kind: str, values: dict) -> dict:
    """Metadata headers as a W800 sends them: every value URL-encoded."""
    return {f"X-{kind}-Meta-{key}": quote(str(value), safe="") for key, value in values.items()}


def _location(lat: float, lon: float, moment: datetime) -> str:
    return f"{lat:+08.4f}{lon:+09.4f}+10/{_epoch(moment)}"


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> list[bytes]:
    """Two short real MP4 clips (made once: H.264 takes a moment)."""
    folder = tmp_path_factory.mktemp("axisclips")
    return [make_mp4(folder / f"part{n}.mp4", CLIP_S, ON + timedelta(seconds=CLIP_S * n), f"AX{n}").read_bytes()
            for n in range(2)]


@pytest.fixture
async def axis_port(web):
    """The real Axis content destination on a free port, with `[axis] listen` pointing at it (so that the
    connection file's default address is this server)."""
    runner = await start_axis(web.box, "127.0.0.1", 0)
    port = runner.addresses[0][1]
    web.box.settings.axis.listen = f"127.0.0.1:{port}"
    yield port
    await runner.cleanup()


async def _connection_file(web, site: str = SITE, password: str = PASSWORD, **extra) -> aiohttp.ClientResponse:
    token = csrf_of(await (await web.client.get("/cameras")).text())
    return await web.client.post("/cameras/axis/verbindingsbestand", allow_redirects=False,
                                 data={"csrf": token, "site": site, "password": password, **extra})


def _w800(doc: dict, cafile: Path, clips: list[bytes], *, complete: bool = True) -> str:
    """What a W800 does with the connection file (blocking: run it on a worker thread): system, user and
    device, then one recording in two clips with a GNSS track and two bookmarks; returns the container."""
    conn = swiftclient.client.Connection(authurl=doc["AuthenticationTokenURI"][0], user=doc["BlobAPIUserName"],
                                         key=doc["BlobAPIKey"], auth_version="1", cacert=str(cafile), retries=0)
    conn.put_object("System", SYSTEM_ID, contents=b"",
                    headers=_meta("Object", {"Systemname": SYSTEM_NAME, "Connectionid": "conn-1"}))
    conn.put_object("Users", USER_UUID, contents=b"",
                    headers=_meta("Object", {"Name": "Jan Jansen", "Userid": "JJ01", "Active": "true"}))
    conn.put_object("Devices", SERIAL, contents=b"",
                    headers=_meta("Object", {"Name": "Camera 7", "Model": "AXIS W110", "Active": "true"}))
    on = ON if complete else ON + timedelta(hours=1)
    container = f"{USER_UUID}_{SERIAL}_{on:%Y%m%dT%H%M%SZ}"
    stop = on + timedelta(seconds=CLIP_S * len(clips))
    conn.put_container(container)
    recording = {"ContainerName": container, "BWCSerialNumber": SERIAL, "SCUSerialNumber": "SCU-0042",
                 "FirmwareVersion": "11.4.2", "UserID": USER_UUID, "BWCModel": "AXIS W110",
                 "TriggerOn": "Button", "TriggerOff": "Holster",
                 "TriggerOnTime": _epoch(on), "TriggerOnTimeISO": _iso(on),
                 "TriggerOnLocation": _location(*TRACK[0], on),
                 "TriggerOffTime": _epoch(stop), "TriggerOffTimeISO": _iso(stop),
                 "TriggerOffLocation": _location(*TRACK[-1], stop),
                 "StartTime": _epoch(on), "StartTimeISO": _iso(on), "StopTime": _epoch(stop), "StopTimeISO": _iso(stop),
                 "TimeZone": "Europe/Amsterdam", "Status": "Transferring"}
    conn.post_container(container, headers=_meta("Container", recording))
    for n, data in enumerate(clips):
        begin = on + timedelta(seconds=CLIP_S * n)
        end = begin + timedelta(seconds=CLIP_S)
        conn.put_object(container, f"{begin:%Y%m%d_%H%M%S}_ab12.mp4", contents=data, content_type="video/mp4",
                        headers=_meta("Object", {"StartTime": _epoch(begin), "StartTimeISO": _iso(begin),
                                                 "StopTime": _epoch(end), "StopTimeISO": _iso(end),
                                                 "ContainerType": "mp4"}))
    if not complete:
        return container
    track = {"CoordinateEntries": [
        {"LocationWKT": f"POINT({lon:.6f} {lat:.6f})", "SecondsFromStart": float(i * CLIP_S),
         "Timestamp": _iso(on + timedelta(seconds=i * CLIP_S))} for i, (lat, lon) in enumerate(TRACK)]}
    conn.put_object(container, f"{on:%Y%m%d_%H%M%S}_ab12_{SERIAL}_gpstrail.json",
                    contents=json.dumps(track).encode(), content_type="application/json",
                    headers=_meta("Object", {"FileType": "json"}))
    for number, (moment, category, text) in enumerate(
            ((BOOKMARK_AT, "Incident", "Omstander bemoeit zich ermee"),
             (on + timedelta(seconds=CLIP_S + 1), "Geweld", HOSTILE)), start=1):
        conn.put_object(container, f"bookmark_{_iso(moment)}_{number}", contents=text.encode(),
                        content_type="text/plain; charset=utf-8",
                        headers=_meta("Object", {"CategoryName": category, "Tags": "TriggerOn:Button",
                                                 "StartTime": _iso(moment)}))
    conn.post_container(container, headers=_meta("Container", {"Status": "Complete"}))
    return container


def _cafile(doc: dict, folder: Path) -> Path:
    """The certificate the connection file pins, as a PEM file for the W800's TLS."""
    der = base64.b64decode(doc["HTTPSCertificate"][0])
    path = folder / "w800-ca.pem"
    path.write_text(ssl.DER_cert_to_PEM_cert(der))
    return path


async def _axis_recording(web, clips, tmp_path) -> tuple[dict, list[str]]:
    """The keeper makes a connection file on /cameras; the W800 uses it to deliver a two-clip recording.
    Returns the connection file and the recording ids of the parts, in order."""
    await web.login("admin")
    response = await _connection_file(web)
    assert response.status == 200, await response.text()
    doc = json.loads(await response.read())
    container = await asyncio.to_thread(_w800, doc, _cafile(doc, tmp_path), clips)
    parts = [o["recording_id"] for o in web.box.catalog.db.query(
        "SELECT recording_id FROM axis_objects WHERE container = ? AND kind = 'clip' ORDER BY part", [container])]
    assert len(parts) == 2 and all(parts)
    return doc, parts


# --- /cameras and the connection file --------------------------------------------------------------------

async def test_keeper_downloads_a_connection_file_and_sees_the_w800_that_used_it(web, axis_port, clips, tmp_path):
    await web.login("admin")
    page = await (await web.client.get("/cameras")).text()
    assert "Axis-systemen" in page and "Nog geen Axis-systeem verbonden." in page
    assert "Verbindingsbestand maken" in page and "Axis Body Worn Manager" in page
    assert 'name="password" type="password"' in page

    response = await _connection_file(web, encrypt="yes")
    assert response.status == 200, await response.text()
    assert response.headers["Content-Disposition"] == f'attachment; filename="kluis-{ACCOUNT}.json"'
    assert response.headers["Cache-Control"] == "no-store"
    assert response.content_type == "application/json"
    doc = json.loads(await response.read())
    assert doc["SiteName"] == SITE and doc["BlobAPIUserName"] == ACCOUNT
    assert doc["AuthenticationTokenURI"] == [f"https://127.0.0.1:{axis_port}/auth/v1.0"]
    assert doc["ConnectionFileVersion"] == "1.0" and doc["ApplicationName"] == "Kluis"
    assert doc["ContainerType"] == "mp4" and doc["FullStoreAndReadSupport"] is False
    assert doc["WantEncryption"] is True and doc["PublicKey"] and doc["PublicKeyId"].startswith("kluis-")
    assert len(doc["BlobAPIKey"]) >= 40 and len(doc["HTTPSCertificate"]) == 1
    # the key is in the file only; the audit entry names the account, not the key
    entry = audit.entries(web.box.catalog, action="axis_connection_file")[-1]
    assert entry["actor"] == "admin" and entry["details"]["account"] == ACCOUNT
    assert doc["BlobAPIKey"] not in json.dumps(audit.entries(web.box.catalog))
    # the password was asked again: a successful login entry just before it
    assert audit.entries(web.box.catalog, action="login", actor="admin")[-1]["seq"] < entry["seq"]

    # the account's key authenticates anew, over the file's own URL and pinned certificate
    context = ssl.create_default_context(cafile=str(_cafile(doc, tmp_path)))
    async with aiohttp.ClientSession() as w800:
        async with w800.get(doc["AuthenticationTokenURI"][0], ssl=context, headers={
                "X-Auth-User": doc["BlobAPIUserName"], "X-Auth-Key": doc["BlobAPIKey"]}) as reply:
            assert reply.status == 200 and reply.headers["X-Auth-Token"].startswith(f"kluis_{ACCOUNT}_")
        async with w800.get(doc["AuthenticationTokenURI"][0], ssl=context, headers={
                "X-Auth-User": doc["BlobAPIUserName"], "X-Auth-Key": "not the key"}) as reply:
            assert reply.status == 401

    # a W800 with the file (plain, without its encryption: only the listing is looked at here) ...
    unencrypted = await _connection_file(web, site="Wijkpost Noord")
    plain = json.loads(await unencrypted.read())
    await asyncio.to_thread(_w800, plain, _cafile(plain, tmp_path), clips[:1], complete=False)
    page = await (await web.client.get("/cameras")).text()
    # ... shows up: the system, its user as "Name (UserID)", its camera, the recording still arriving
    for text in ("Wijkpost Noord", SYSTEM_NAME, SYSTEM_ID, "Jan Jansen (JJ01)", SERIAL, "AXIS W110", "Camera 7",
                 "Opnames die nog binnenkomen", f"{USER_UUID}_{SERIAL}_"):
        assert text in page, text
    system_rows = re.findall(r"<tr>\s*<td>(Stadhuis Utrecht|Wijkpost Noord)<br>.*?</tr>", page, re.S)
    assert system_rows == ["Stadhuis Utrecht", "Wijkpost Noord"]
    stadhuis = re.search(r"<td>Stadhuis Utrecht<br>.*?</tr>", page, re.S).group(0)
    assert "<td>ja</td>" in stadhuis and "(nog niet verbonden)" in stadhuis  # encrypted; authenticated only
    noord = re.search(r"<td>Wijkpost Noord<br>.*?</tr>", page, re.S).group(0)
    assert "<td>nee</td>" in noord and SYSTEM_ID in noord and SYSTEM_NAME in noord and "127.0.0.1" in noord
    assert "22-11-2026 14:05:00" in noord  # last contact, in the box's time zone


async def test_wrong_password_makes_no_file_and_is_audited_like_a_login(web, axis_port):
    await web.login("admin")
    response = await _connection_file(web, password="not my password")
    page = await response.text()
    assert response.status == 400 and "Verkeerd wachtwoord" in page
    assert response.headers.get("Content-Disposition") is None and "BlobAPIKey" not in page
    assert SITE in page  # the form keeps what was typed, except the password
    assert "not my password" not in page
    failed = audit.entries(web.box.catalog, action="login_failed", actor="admin")[-1]
    assert failed["details"]["reason"] == "wrong password" and failed["client"].startswith("web ")
    assert audit.entries(web.box.catalog, action="axis_connection_file") == []
    assert web.box.catalog.db.execute("SELECT count(*) FROM axis_accounts").fetchone()[0] == 0
    missing = await _connection_file(web, password="")
    assert missing.status == 400 and "Geef uw wachtwoord" in await missing.text()


async def test_without_axis_listen_the_form_asks_for_the_address(web):
    await web.login("admin")
    page = await (await web.client.get("/cameras")).text()
    assert "De Axis-koppeling staat uit op deze kluis" in page
    response = await _connection_file(web)
    assert response.status == 400 and "De Axis-koppeling staat uit" in await response.text()
    bad = await _connection_file(web, url="ftp://kluis.local/auth")
    assert bad.status == 400 and "https://HOST:POORT/auth/v1.0" in await bad.text()
    given = await _connection_file(web, url="https://kluis.example:8444/auth/v1.0")
    assert given.status == 200
    assert json.loads(await given.read())["AuthenticationTokenURI"] == ["https://kluis.example:8444/auth/v1.0"]


async def test_team_leader_sees_no_form_and_is_refused_the_file(web, axis_port):
    await web.as_role("team_leader")
    page = await web.client.get("/cameras")
    text = await page.text()
    assert page.status == 403 and "Verbindingsbestand maken" not in text and "Axis-systemen" not in text
    token = await web.csrf("/")
    response = await web.client.post("/cameras/axis/verbindingsbestand", allow_redirects=False,
                                     data={"csrf": token, "site": SITE, "password": PASSWORD})
    body = await response.read()
    assert response.status == 403 and ROLE_REFUSAL in body.decode()
    assert b"BlobAPIKey" not in body and response.headers.get("Content-Disposition") is None
    assert audit.entries(web.box.catalog, action="axis_connection_file") == []
    assert web.box.catalog.db.execute("SELECT count(*) FROM axis_accounts").fetchone()[0] == 0


# --- an Axis recording's page -----------------------------------------------------------------------------

async def test_recording_page_shows_triggers_location_track_bookmarks_and_parts(web, axis_port, clips, tmp_path):
    _doc, (first, second) = await _axis_recording(web, clips, tmp_path)
    await web.as_role("privacy_officer")
    page = await (await web.client.get(f"/opnames/{first}")).text()
    axis = re.search(r'<section id="axis".*?</section>', page, re.S).group(0)
    assert "Gestart door</dt><dd>Button, 20-11-2026 19:05:00" in axis
    assert "Gestopt door</dt><dd>Holster, 20-11-2026 19:05:06" in axis
    assert '<span class="coordinates">52,0907; 5,1214</span>' in axis  # the start location, decimal comma
    assert ('<a href="https://www.openstreetmap.org/?mlat=52.090700&amp;mlon=5.121400#map=17/52.090700/5.121400" '
            'rel="noopener noreferrer" target="_blank">op de kaart') in axis
    assert "<td>52,091514</td><td>5,123105" in axis and "<td>52,091000</td>" in axis  # the GNSS track
    assert "Incident" in axis and "Omstander bemoeit zich ermee" in axis and "20-11-2026 19:05:02" in axis
    assert HOSTILE not in page and "&lt;script&gt;alert(&#34;bm&#34;)&lt;/script&gt;" in axis
    assert "Deel 1 van 2" in axis and f'<a href="/opnames/{second}">Deel 2 van 2</a>' in axis
    assert "AXIS W110" in axis and "SCU-0042" in axis and "Europe/Amsterdam" in axis
    assert "Jan Jansen (JJ01)" in page  # the officer of the recording
    # no player, no markers: the markers exist only in a player opened with a purpose
    assert 'id="bladwijzers"' not in page and "<video" not in page
    assert 'name="vervolg"' in page  # offered: watch the following parts too

    page2 = await (await web.client.get(f"/opnames/{second}")).text()
    axis2 = re.search(r'<section id="axis".*?</section>', page2, re.S).group(0)
    assert "Deel 2 van 2" in axis2 and f'<a href="/opnames/{first}">Deel 1 van 2</a>' in axis2
    assert 'name="vervolg"' not in page2  # the last part: nothing follows

    details = overview.recording_details(web.box, first)
    assert [p["id"] for p in details["parts"]] == [first, second]
    # English: the same block through the catalog's fallback to the ids
    await web.client.get(f"/taal/en?next=/opnames/{first}")
    english = await (await web.client.get(f"/opnames/{first}")).text()
    assert "Started by</dt><dd>Button" in english and "Part 1 of 2" in english
    assert '<span class="coordinates">52.0907, 5.1214</span>' in english and "on the map" in english


async def test_map_link_follows_the_setting_and_never_becomes_script(web, axis_port, clips, tmp_path):
    _doc, (first, _second) = await _axis_recording(web, clips, tmp_path)
    await web.as_role("privacy_officer")
    web.box.settings.web.map_url = ""
    page = await (await web.client.get(f"/opnames/{first}")).text()
    assert "op de kaart" not in page and "52,0907; 5,1214" in page
    web.box.settings.web.map_url = "javascript:alert(1)//{lat}"
    page = await (await web.client.get(f"/opnames/{first}")).text()
    assert "javascript:" not in page and "op de kaart" not in page
    web.box.settings.web.map_url = 'https://kaart.example/?q={lat},{lon}&x="><b>'
    page = await (await web.client.get(f"/opnames/{first}")).text()
    assert 'href="https://kaart.example/?q=52.090700,5.121400&amp;x=&#34;&gt;&lt;b&gt;"' in page
    assert '"><b>' not in page


async def test_parts_play_one_after_another_each_with_its_own_view_entry(web, axis_port, clips, tmp_path):
    _doc, (first, second) = await _axis_recording(web, clips, tmp_path)
    await web.as_role("privacy_officer")
    token = csrf_of(await (await web.client.get(f"/opnames/{first}")).text())
    response = await web.client.post(f"/opnames/{first}/bekijken", allow_redirects=False, data={
        "csrf": token, "purpose": "complaint", "case_ref": "KL-2026-031", "vervolg": "1"})
    assert response.status == 303
    location = response.headers["Location"]
    assert location.startswith(f"/opnames/{first}?bekijk=") and "&vervolg=1" in location
    page = await (await web.client.get(location)).text()
    grant = re.search(r"bekijk=([\w-]+)", location).group(1)
    assert f'src="/opnames/{first}/video/{grant}" data-autoplay="1"' in page
    # the bookmark 2 s into this part is a marker; the one in part 2 is not on this part's timeline
    markers = re.findall(r'<button type="button" class="bookmark" data-seconds="([\d.]+)"', page)
    assert markers == ["2.0"] and 'data-duration="3.0"' in page
    assert '<script src="/static/speler.js" defer></script>' in page
    # the next part: a form naming the same purpose and case reference again, sent on by itself
    form = re.search(r'<form id="volgend-deel".*?</form>', page, re.S).group(0)
    assert f'action="/opnames/{second}/bekijken"' in form and 'data-auto="1"' in form
    assert 'name="purpose" value="complaint"' in form and 'name="case_ref" value="KL-2026-031"' in form
    assert 'name="vervolg" value="1"' in form and "Volgend deel" in form

    # part 1's grant does not open part 2: it needs its own 'view' entry first
    refused = await web.client.get(f"/opnames/{second}/video/{grant}", headers={"Range": "bytes=0-"})
    assert refused.status == 403 and b"ftyp" not in await refused.read()
    views = audit.entries(web.box.catalog, action="view")
    assert [(v["recording_id"], v["purpose"], v["case_ref"]) for v in views] == [(first, "complaint", "KL-2026-031")]

    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form))
    response = await web.client.post(f"/opnames/{second}/bekijken", data=fields, allow_redirects=False)
    assert response.status == 303 and "&vervolg=1" in response.headers["Location"]
    views = audit.entries(web.box.catalog, action="view")
    assert [(v["recording_id"], v["purpose"], v["case_ref"], v["actor"]) for v in views] == [
        (first, "complaint", "KL-2026-031", "fg"), (second, "complaint", "KL-2026-031", "fg")]
    page2 = await (await web.client.get(response.headers["Location"])).text()
    grant2 = re.search(r"bekijk=([\w-]+)", response.headers["Location"]).group(1)
    video = await web.client.get(f"/opnames/{second}/video/{grant2}")
    assert video.status == 200 and await video.read() == clips[1]
    assert 'id="volgend-deel"' not in page2  # the last part
    assert re.findall(r'<button type="button" class="bookmark" data-seconds="([\d.]+)"', page2) == ["1.0"]

    # without asking to go on: the next part is offered, not sent by itself, and the video does not autoplay
    token = csrf_of(page2)
    response = await web.client.post(f"/opnames/{first}/bekijken", allow_redirects=False, data={
        "csrf": token, "purpose": "complaint", "case_ref": "KL-2026-031"})
    page = await (await web.client.get(response.headers["Location"])).text()
    assert "data-autoplay" not in page and 'data-auto="0"' in page
    assert 'name="vervolg"' not in re.search(r'<form id="volgend-deel".*?</form>', page, re.S).group(0)


async def test_the_next_part_form_is_checked_like_any_view_form(web, axis_port, clips, tmp_path):
    """The next-part form is the ordinary view form: what it carries is checked again (here: no case)."""
    _doc, (first, second) = await _axis_recording(web, clips, tmp_path)
    await web.as_role("privacy_officer")
    token = await web.csrf(f"/opnames/{second}")
    response = await web.client.post(f"/opnames/{second}/bekijken", allow_redirects=False,
                                     data={"csrf": token, "purpose": "complaint", "vervolg": "1"})
    assert response.status == 400 and "zaaknummer" in await response.text()
    assert audit.entries(web.box.catalog, action="view") == []


# --- in a real browser: the markers seek, and the next part follows by itself ------------------------------


@needs_chromium
async def test_in_chromium_markers_seek_and_the_next_part_follows(web, axis_port, clips, tmp_path):
    from tests.browser_helpers import browser_page, login  # playwright: imported only where Chromium is

    _doc, (first, second) = await _axis_recording(web, clips, tmp_path)
    # the privacy officer watched 0.75-1.5 s of part 1 before
    earlier = footage.open_for_viewing(web.box, web.box.catalog.get_user("fg"), first, "access_request", "IV-3",
                                       identity=web.box.unlock("fg", PASSWORD))
    assert timeline.record_played(web.box, "fg", web.box.catalog.get_recording(first), earlier.audit_seq,
                                  "access_request", "IV-3", "0.75-1.5")
    shots = OUTPUT / "webui-axis"
    async with browser_page(web.box, shots, [*ARGS, "--autoplay-policy=no-user-gesture-required"]) as page:
        await login(page, "fg", PASSWORD)
        await page.goto(f"/opnames/{first}")
        await shot(page, shots, "01-axis-opname")
        await page.get_by_label("Doel", exact=True).first.select_option("complaint")
        await page.get_by_label("Zaaknummer").first.fill("KL-2026-031")
        await page.get_by_label("Speel daarna ook de volgende delen af", exact=False).check()
        await press(page, "Bekijken", f"**/opnames/{first}?bekijk=*")
        marker = page.locator("#bladwijzers button")
        await marker.wait_for(state="visible")
        left = await marker.evaluate("m => m.style.left")
        assert abs(float(left.rstrip("%")) - 100 * 2 / CLIP_S) < 5, left
        # the earlier view on the same timeline, a quarter in for a quarter of it
        viewed = page.locator("#bekeken button")
        assert await viewed.count() == 1
        assert abs(float((await viewed.evaluate("m => m.style.left")).rstrip("%")) - 25) < 1
        assert abs(float((await viewed.evaluate("m => m.style.width")).rstrip("%")) - 25) < 1
        # the scale in clock time: part 1 starts at 19:05:00 in Amsterdam
        assert await page.inner_text("#schaal span:first-child") == "19:05:00"
        await shot(page, shots, "02-speler-met-bladwijzer")
        await page.evaluate("() => document.getElementById('video').pause()")
        await marker.click()
        assert abs(await page.evaluate("() => document.getElementById('video').currentTime") - 2.0) < 0.5
        # played to its end, part 1 hands over to part 2, which names the purpose again and plays (at the speed
        # chosen for part 1)
        await page.get_by_role("button", name="Snelheid 2×").click()
        await page.evaluate("() => document.getElementById('video').play()")
        await page.wait_for_url(f"**/opnames/{second}?bekijk=*", timeout=20000)
        await shot(page, shots, "03-deel-2")
        await page.wait_for_function("() => document.getElementById('video').currentTime > 0", timeout=10000)
        assert await page.evaluate("() => document.getElementById('video').playbackRate") == 2
        assert await page.get_by_role("button", name="Snelheid 2×").get_attribute("aria-pressed") == "true"
        # the keeper's view of the same W800 on /cameras (a screenshot for a person to look at)
        await press(page, "Uitloggen", "**/login")
        await login(page, "admin", PASSWORD)
        await page.goto("/cameras#axis")
        assert SYSTEM_NAME in await page.inner_text("#axis")
        await shot(page, shots, "04-cameras-axis")
    views = audit.entries(web.box.catalog, action="view")
    assert [(v["recording_id"], v["purpose"], v["case_ref"]) for v in views] == [
        (first, "access_request", "IV-3"), (first, "complaint", "KL-2026-031"), (second, "complaint", "KL-2026-031")]
