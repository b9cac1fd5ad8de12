"""The web UI's side of USB mass-storage bodycams (appliance/usb/): the keeper registers a found camera on /cameras
(personal or pooled, audited as 'pair'), registered ones are listed with the dock cameras marked USB, files
Kluis left on a camera and USB volumes that are no camera are listed; the overview shows each camera's
ingest like a dock camera's offload.

The state comes from the domain: appliance.usb.ingest.ingest on a plain directory used as the mount point
of a Novatek camera (DCIM/MOVIE/YYYY_MMDD_HHMMSS_NNN.MP4, its serial from the volume label)."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest

from appliance import audit
from appliance.dock.footage import make_mp4
from appliance.usb import ingest
from appliance.usb.volume import Volume
from tests.web_helpers import csrf_of
from tests.webui.conftest import HOSTILE, NOW, START

ROLE_REFUSAL = "Uw rol staat dit niet toe."
SERIAL = "NVTCAM01"
CLIP = "DCIM/MOVIE/2026_1207_101530_001.MP4"
NOT_VIDEO = "DCIM/MOVIE/2026_1207_102000_002.MP4"
FOUND = "Gevonden USB-camera's"
LEFT = "Bestanden op de camera gelaten"
UNKNOWN = "Onbekende USB-apparaten"
DONE = "klaar, u kunt de camera eruit halen"
REGISTER_URL = f"/cameras/usb/{SERIAL}/registreren"


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> bytes:
    """A short real MP4 (made once: H.264 takes a moment)."""
    return make_mp4(tmp_path_factory.mktemp("usbclip") / "clip.mp4", 2, START, "USB").read_bytes()


@pytest.fixture
def camera(tmp_path, clip) -> Volume:
    """A Novatek camera's volume as mounted: one recording in DCIM/MOVIE, its serial in the label."""
    root = tmp_path / "camera"
    (root / "DCIM" / "MOVIE").mkdir(parents=True)
    (root / CLIP).write_bytes(clip)
    return Volume(root=root, label=SERIAL)


def _found(web, camera: Volume) -> None:
    report = ingest.ingest(web.box, camera)
    assert report.state == "found", report
    device = web.box.catalog.db["devices"].get(SERIAL)
    assert device["proto"] == "usb" and not device["paired"] and device["model"] == "novatek"


async def _register(web, **fields) -> object:
    token = csrf_of(await (await web.client.get("/cameras")).text())
    return await web.client.post(REGISTER_URL, data={"csrf": token, **fields}, allow_redirects=False)


def _section(page: str, title: str) -> str:
    """The part of the USB section from the heading `title` to the next heading (or the section's end);
    apostrophes as they are shown (the page escapes them)."""
    match = re.search(rf">{re.escape(title)}</h3>(.*?)(?=<h3|</section>)", page.replace("&#39;", "'"), re.S)
    assert match, f"no section {title!r} on the page"
    return match.group(1)


def _overview_row(page: str, serial: str) -> str:
    match = re.search(rf'<tr data-serial="{serial}">.*?</tr>', page, re.S)
    assert match, f"no row for {serial} on the overview"
    return match.group(0)


# --- registering a found camera --------------------------------------------------------------------------

async def test_keeper_sees_the_found_camera_and_registers_it_as_personal(web, camera):
    _found(web, camera)
    await web.login("admin")
    page = await (await web.client.get("/cameras")).text()
    found = _section(page, FOUND)
    assert SERIAL in found and "novatek" in found and "22-11-2026 14:05:00" in found  # first seen, box's zone
    assert f'action="{REGISTER_URL}"' in found and 'name="csrf"' in found
    assert 'value="personal"' in found and 'value="pooled"' in found and 'name="officer"' in found
    # found, not registered: not among the paired cameras (whose rows have a change form)
    assert f"/cameras/{SERIAL}/toewijzen" not in page

    # no CSRF token: refused, nothing registered
    refused = await web.client.post(REGISTER_URL, data={"mode": "pooled"}, allow_redirects=False)
    assert refused.status == 403 and not web.box.catalog.db["devices"].get(SERIAL)["paired"]
    # personal without a name: the form says so, nothing registered
    nameless = await _register(web, mode="personal", officer="  ")
    refused = await nameless.text()
    assert nameless.status == 400 and "naam van de handhaver" in refused
    officer = re.search(r'<input id="usb-officer-1"[^>]*>', refused).group(0)  # said at the officer field
    assert 'aria-invalid="true" aria-describedby="usb-officer-1-error"' in officer
    assert '<span id="usb-officer-1-error" class="error field-error">' in refused
    assert not web.box.catalog.db["devices"].get(SERIAL)["paired"]
    assert audit.entries(web.box.catalog, action="pair") == []

    response = await _register(web, mode="personal", officer="J. Jansen")
    assert response.status == 303, await response.text()
    assert response.headers["Location"] == "/cameras#usb"
    device = web.box.catalog.db["devices"].get(SERIAL)
    assert device["paired"] == 1 and device["paired_by"] == "admin"
    assert device["mode"] == "personal" and device["officer"] == "J. Jansen"
    pair = audit.entries(web.box.catalog, action="pair")
    assert len(pair) == 1 and pair[0]["actor"] == "admin"
    assert pair[0]["details"] == {"camera": SERIAL, "usb": True, "profile": "novatek"}

    page = await (await web.client.get(response.headers["Location"])).text()
    assert f"USB-camera {SERIAL} geregistreerd." in page
    assert f"USB-camera {SERIAL} geregistreerd." not in await (await web.client.get("/cameras")).text()  # once
    assert "Er wacht geen USB-camera op registratie." in _section(page, FOUND)
    # now among the cameras, marked USB, with the sentence about its pre/post-record seconds
    row = re.search(rf"<tr>\s*<td>{SERIAL} <strong class=\"usb\">USB</strong>.*?</tr>", page, re.S)
    assert row, "the registered USB camera is not listed with the cameras"
    assert "profiel novatek" in row.group(0) and "J. Jansen" in row.group(0)
    assert "kunnen niet naar zo'n camera worden gestuurd" in row.group(0).replace("&#39;", "'")
    assert "30 s / 30 s" in row.group(0)  # from the profile

    # a second registration is refused with a message, and not audited again
    again = await _register(web, mode="pooled")
    assert again.status == 400 and f"USB-camera {SERIAL} is al geregistreerd." in await again.text()
    assert len(audit.entries(web.box.catalog, action="pair")) == 1
    # the settings of a USB camera are saved in the box, and the page does not promise a push to the camera
    token = csrf_of(page)
    saved = await web.client.post(f"/cameras/{SERIAL}/toewijzen", allow_redirects=False, data={
        "csrf": token, "mode": "personal", "officer": "J. Jansen", "pre_record_s": "45", "post_record_s": "20"})
    assert saved.status == 303 and saved.headers["Location"] == "/cameras"
    page = await (await web.client.get(saved.headers["Location"])).text()
    assert "De instellingen op een USB-camera zelf verandert de kluis niet." in page
    assert "volgende keer in het dock" not in page
    assert web.box.catalog.db["devices"].get(SERIAL)["pre_record_s"] == 45


async def test_keeper_registers_a_pooled_camera_and_unknown_serials_are_refused(web, camera):
    _found(web, camera)
    await web.login("admin")
    unchosen = await _register(web, officer="J. Jansen")
    assert unchosen.status == 400 and "Kies: de persoonlijke camera" in await unchosen.text()
    response = await _register(web, mode="pooled", officer="ignored")
    assert response.status == 303
    device = web.box.catalog.db["devices"].get(SERIAL)
    assert device["paired"] == 1 and device["mode"] == "pooled" and device["officer"] is None
    token = await web.csrf("/cameras")
    missing = await web.client.post("/cameras/usb/NVTCAM99/registreren", allow_redirects=False,
                                    data={"csrf": token, "mode": "pooled"})
    assert missing.status == 400 and "Er is geen USB-camera NVTCAM99 gevonden" in await missing.text()
    dock = await web.client.post("/cameras/usb/CAM001/registreren", allow_redirects=False,
                                 data={"csrf": token, "mode": "pooled"})
    assert dock.status == 400  # not a USB camera (here: not a device at all)
    # the confirmation names only a registered USB camera, never text from the address
    page = await (await web.client.get(f"/cameras?ok=usb_registered&camera={HOSTILE}")).text()
    assert HOSTILE not in page and "geregistreerd. De opnames" not in page


async def test_team_leader_sees_no_form_and_cannot_register(web, camera):
    _found(web, camera)
    await web.as_role("team_leader")
    page = await web.client.get("/cameras")
    text = await page.text()
    assert page.status == 403 and ROLE_REFUSAL in text
    assert FOUND not in text and "registreren" not in text
    token = await web.csrf("/")
    response = await web.client.post(REGISTER_URL, allow_redirects=False,
                                     data={"csrf": token, "mode": "personal", "officer": "tl"})
    assert response.status == 403 and ROLE_REFUSAL in await response.text()
    assert not web.box.catalog.db["devices"].get(SERIAL)["paired"]
    assert audit.entries(web.box.catalog, action="pair") == []
    # the overview lists only this box's cameras: a found one is the keeper's (issue 18), not the team leader's
    overview = await (await web.client.get("/")).text()
    assert f'data-serial="{SERIAL}"' not in overview and SERIAL not in overview
    await web.login("admin")  # the keeper is told, in "Te doen", and finds it in the Gevonden list
    overview = await (await web.client.get("/")).text()
    assert 'id="todo-cameras_found"' in overview and SERIAL in overview
    cameras = await (await web.client.get("/cameras")).text()
    found = cameras[cameras.index('id="gevonden"'):cameras.index('id="pair"')]
    assert SERIAL in found and 'href="#usb-found"' in found


# --- ingest progress on the overview, files left on the camera -------------------------------------------

async def test_after_the_ingest_the_overview_says_the_camera_can_come_out(web, camera, clip):
    _found(web, camera)
    await web.login("admin")
    assert (await _register(web, mode="personal", officer="J. Jansen")).status == 303
    (camera.root / NOT_VIDEO).write_bytes(b"not a video")

    report = ingest.ingest(web.box, camera)
    assert report.state == "done", report
    assert [(f.path, f.state) for f in report.files] == [(CLIP, "stored"), (NOT_VIDEO, "refused")]
    assert not (camera.root / CLIP).exists() and (camera.root / NOT_VIDEO).exists()

    # whoever sees the dock cameras' progress sees this one's (here the team leader)
    await web.as_role("team_leader")
    row = _overview_row(await (await web.client.get("/")).text(), SERIAL)
    assert DONE in row and "USB" in row
    session = web.box.catalog.db["usb_sessions"].get(SERIAL)
    assert session["files_done"] == session["files_total"] == 2
    assert f'max="{session["bytes_total"]}" value="{session["bytes_done"]}"' in row
    assert session["bytes_done"] == len(clip)  # the stored clip's bytes; the refused file's are not done
    # the live stream says the same for the script to show
    events = await (await web.client.get("/overzicht/voortgang?once=1")).text()
    data = json.loads(events.split("data: ", 1)[1].split("\n", 1)[0])
    assert data[SERIAL]["text"] == DONE and data[SERIAL]["state"] == "done"
    assert data[SERIAL]["recordings_done"] == data[SERIAL]["recordings_total"] == 2

    # an hour later the ingest is no longer shown: the camera's own status is
    web.box.clock = lambda: NOW + timedelta(hours=1, minutes=1)
    row = _overview_row(await (await web.client.get("/")).text(), SERIAL)
    assert DONE not in row and "niet bezig" in row
    events = await (await web.client.get("/overzicht/voortgang?once=1")).text()
    assert events.startswith("data: {}")

    # the keeper sees the refused file, left on the camera, with its size and why
    web.box.clock = lambda: NOW
    await web.login("admin")
    left = _section(await (await web.client.get("/cameras")).text(), LEFT)
    assert SERIAL in left and NOT_VIDEO in left and "11 B" in left
    assert "geen video die Kluis kan lezen" in left
    assert CLIP not in left  # stored and deleted on the camera: not left


async def test_a_full_disk_shows_its_state_and_message(web, camera):
    _found(web, camera)
    await web.login("admin")
    assert (await _register(web, mode="pooled")).status == 303
    web.box.settings.storage.reserve_mb = 10**9  # no disk has this room: the ingest stops, keeps the files
    report = ingest.ingest(web.box, camera)
    assert report.state == "storage_full", report
    assert (camera.root / CLIP).exists()
    row = _overview_row(await (await web.client.get("/")).text(), SERIAL)
    # the Dutch state, then the ingest's own message
    assert re.search(r'<span class="state">opslag vol: NVTCAM01: not enough room.*?the camera keeps its recordings'
                     r'</span>', row, re.S), row
    assert DONE not in row


# --- USB devices that are no camera ----------------------------------------------------------------------

async def test_unknown_usb_devices_are_listed_without_a_form(web, tmp_path, camera):
    _found(web, camera)
    stick = tmp_path / "stick"
    (stick / "Foto's").mkdir(parents=True)
    (stick / "Foto's" / "IMG_0001.JPG").write_bytes(b"\xff\xd8 not a camera")
    report = ingest.ingest(web.box, Volume(root=stick, label="KINGSTON", fs_type="vfat",
                                           usb={"vendor": "0951", "product": "1666", "serial": "E0D55EA5"}))
    assert report.state == "unknown_volume", report
    phone = tmp_path / "phone"
    (phone / "Android").mkdir(parents=True)
    assert ingest.ingest(web.box, Volume(root=phone, label=HOSTILE)).state == "unknown_volume"

    await web.login("admin")
    page = await (await web.client.get("/cameras")).text()
    unknown = _section(page, UNKNOWN)
    assert "KINGSTON" in unknown and "0951:1666" in unknown and "E0D55EA5" in unknown
    assert "22-11-2026 14:05:00" in unknown  # first and last seen
    assert "<form" not in unknown and "<button" not in unknown and "/registreren" not in unknown
    assert HOSTILE not in page and "&lt;script&gt;" in unknown  # a volume label is text
    # neither is offered for registration; the found camera is
    found = _section(page, FOUND)
    assert "KINGSTON" not in found and SERIAL in found
    assert found.count("<form") == 1
    # and the box never made a device of them
    assert web.box.catalog.db.execute("SELECT count(*) FROM devices WHERE proto = 'usb'").fetchone()[0] == 1
