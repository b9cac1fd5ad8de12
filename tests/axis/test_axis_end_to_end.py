"""What a W800 delivers is afterwards a Kluis recording like any other, end to end.

The W800 simulator (simulators/axis/, the client side of the Axis Body Worn Content Destination API)
uploads real H.264 clips made with make_clip to the real content destination (tests/axis/conftest.py:
appliance.axis.server.start_axis, HTTPS with the box's certificate, in a thread of its own), once in the
clear inside TLS and once with the W800's end-to-end encryption (the clips as AES-256-CBC, their keys
wrapped to the box's transport key, decrypted in memory while they are sealed). Then, with nothing of
Kluis mocked:

- the web UI plays an Axis clip in real headless Chromium and seeks into its last tenth: the video reaches
  readyState >= 2 at the new position without an error and plays on, and the box answered every request of
  the player with 206, the seek with a new Range request into the second half of the decrypted clip (the
  clip lasts 10 minutes, about 9 MB, so that Chromium does not simply have it all buffered);
- a handover of both clips of a two-clip recording (8 s and 4 s; four eyes, age-encrypted to a receiver's
  key made by the real age-keygen) verifies with `kluis export verify`, and the package's media files are
  the W800's clips byte for byte;
- both clips, held for a police report by a box enrolled at a real archive (`kluis archive serve` in a
  subprocess) before the W800 uploaded, go to the archive at `kluis sync run`, with receipts the archive
  signed, and `kluis archive export` gives the W800's clips back byte for byte.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from appliance import audit, handover, retention, roles, users
from simulators.axis.clips import make_clip
from simulators.axis.w800 import W800Simulator
from appliance.box import Box
from appliance.container import parse_header
from sync import client
from sync.archive.store import Archive, init_archive
from sync.protocol import verify_receipt
from tests.axis.conftest import connection_document
from tests.browser_helpers import ARGS, OUTPUT, needs_chromium, press, shot
from tests.conftest import PASSWORD, add_role_users, run_kluis
from tests.handover.conftest import BASIS, CASE, RECEIVER, age_key, needs_age  # noqa: F401 (age_key: a fixture)
from tests.sync.sync_helpers import ARCHIVE_PASSWORD, ArchiveProcess, free_port, new_token

SERIAL = "B8A44F00E2E0"
CLIP_S = (8, 4)  # the two clips of the recording that is handed over and synced
# The player's clip: long enough (about 9 MB) that Chromium does not hold it all when it seeks near the end,
# so that the seek has to be served by a new Range request into the middle of the decrypted recording.
LONG_S = 600
SEEK_TO = 540.0  # seconds into the long clip: its last tenth
# Real time (the boxes here run on the real clock): a recording from half an hour ago, well within retention.
ON = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=30)
# Small container chunks (as the web UI's tests use), so that a range read covers only some of them.
SETTINGS = {"storage": {"chunk_size": 65536}}
SHOTS = OUTPUT / "axis-end-to-end"
ENCRYPTION = pytest.mark.parametrize("encrypt", [False, True], ids=["tls-only", "w800-encrypted"])


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def clips():
    """The W800's two clips: real, playable MP4 (the camera clock burnt in), the same for every test."""
    return [make_clip(CLIP_S[0], ON - timedelta(seconds=2), label="AXIS 1"),
            make_clip(CLIP_S[1], ON + timedelta(seconds=CLIP_S[0] - 2), label="AXIS 2")]


@pytest.fixture(scope="module")
def long_clip():
    return make_clip(LONG_S, ON - timedelta(seconds=2), label="AXIS LANG")


def originals(clips) -> list[bytes]:
    return [clip.data for clip in clips]


async def deliver(box: Box, srv, state: Path, clips, encrypt: bool) -> list[str]:
    """A W800, connected with a connection file the keeper made, uploads one recording of `clips` (back to
    back, 2 s pre-record, 1 s post-record, with a GNSS track) and sets it Complete. Returns the recording
    ids of its parts, in order."""
    document = connection_document(box, srv, site="W800 Stadskantoor", encrypt=encrypt)
    assert document["WantEncryption"] is encrypt
    async with W800Simulator(document, state, system_name="W800 Stadskantoor") as w800:
        user = await w800.register_user("M. Visser", "1002")
        await w800.register_device(SERIAL, "AXIS W101", "Bodycam 7")
        result = await w800.upload_recording(user, SERIAL, clips, ON, pre_s=2, post_s=1, gnss=True)
    assert result.ok, result.error
    assert len(result.clips) == len(clips)
    # with encryption every clip (and the GNSS track) travelled as ciphertext with its key object; without, none
    keys = [name for name in result.objects if name.endswith(".key")]
    assert len(keys) == (len(clips) + 1 if encrypt else 0), result.objects
    rows = list(box.catalog.db.query(
        "SELECT recording_id FROM axis_objects WHERE container = ? AND kind = 'clip' ORDER BY part",
        [result.container]))
    ids = [row["recording_id"] for row in rows]
    assert len(ids) == len(clips) and all(ids), ids
    for rid, clip in zip(ids, clips):
        recording = box.catalog.get_recording(rid)
        assert recording["source"] == "axis" and recording["source_ref"].startswith(result.container + "/")
        assert recording["camera_serial"] == SERIAL and recording["officer"] == "M. Visser (1002)"
        assert recording["size"] == clip.size  # the plaintext size: the clip's bytes, unchanged inside the seal
    return ids


def enrol_privacy_officers(data: Path) -> None:
    """Two privacy officers, fg and fg2, with key slots (a handover needs two pairs of eyes)."""
    add_role_users(data, "fg")
    with Box(data) as opened:
        users.add_user(opened, "admin", "fg2", roles.PRIVACY_OFFICER, PASSWORD,
                       identity=opened.unlock("admin", PASSWORD))


# --- (1) the web player, in real Chromium: play, then seek into the second half ----------------------------


@needs_chromium
@ENCRYPTION
async def test_an_axis_clip_plays_and_seeks_in_chromium(box, start_axis_server, long_clip, tmp_path, encrypt):
    from tests.browser_helpers import browser_page, login  # playwright: imported only where Chromium is

    srv = start_axis_server(SETTINGS)
    [rid] = await deliver(box, srv, tmp_path / "w800", [long_clip], encrypt)
    add_role_users(box.data_dir, "fg")
    size = long_clip.size
    answers: list[tuple[int, str | None, str | None]] = []  # (status, Range asked, Content-Range answered)

    def note(response) -> None:
        # the video's own requests (not the player's report of what it played, .../afgespeeld)
        if f"/opnames/{rid}/video/" in response.url and not response.url.endswith("/afgespeeld"):
            answers.append((response.status, response.request.headers.get("range"),
                            response.headers.get("content-range")))

    shots = SHOTS / ("encrypted" if encrypt else "tls-only")
    async with browser_page(box, shots, [*ARGS, "--autoplay-policy=no-user-gesture-required"]) as page:
        page.on("response", note)
        await login(page, "fg", PASSWORD)
        await page.goto(f"/opnames/{rid}")
        await page.get_by_label("Doel", exact=True).first.select_option("complaint")
        await page.get_by_label("Zaaknummer").first.fill("KL-2026-077")
        await press(page, "Bekijken", f"**/opnames/{rid}?bekijk=*")
        await page.locator("video#video").wait_for()
        await page.wait_for_function("() => document.getElementById('video').readyState >= 1", timeout=15000)
        duration = await page.evaluate("document.getElementById('video').duration")
        assert LONG_S - 0.5 < duration < LONG_S + 0.5, duration

        # it plays
        await page.evaluate("document.getElementById('video').muted = true; document.getElementById('video').play()")
        await page.wait_for_function("() => document.getElementById('video').currentTime > 0.5", timeout=15000)

        # seek into the last tenth: the browser asks for a range there, the box decrypts the chunks covering it
        before_seek = len(answers)
        await page.evaluate("""seconds => new Promise((resolve, reject) => {
            const v = document.getElementById('video');
            v.addEventListener('seeked', resolve, {once: true});
            v.addEventListener('error', () => reject(new Error('video error ' + (v.error && v.error.code))),
                               {once: true});
            v.currentTime = seconds; })""", SEEK_TO)
        await page.wait_for_function("() => document.getElementById('video').readyState >= 2", timeout=15000)
        state = await page.evaluate("""() => { const v = document.getElementById('video');
            return {time: v.currentTime, ready: v.readyState, error: v.error && v.error.code}; }""")
        assert state["error"] is None, state
        assert state["ready"] >= 2, state
        assert SEEK_TO - 1.0 <= state["time"] <= SEEK_TO + 1.0, state
        # and it plays on from there
        await page.wait_for_function(f"() => document.getElementById('video').currentTime > {SEEK_TO + 0.5}",
                                     timeout=15000)
        await page.evaluate("document.getElementById('video').pause()")
        assert await page.evaluate("document.getElementById('video').error") is None
        await shot(page, shots, "axis-opname-na-zoeken")

    # every answer was partial content for the range asked, of the whole decrypted clip's size
    assert answers and all(status == 206 for status, _asked, _answered in answers), answers
    for _status, asked, answered in answers:
        first = int(asked.removeprefix("bytes=").split("-")[0])
        assert answered is not None and answered.startswith(f"bytes {first}-") and answered.endswith(f"/{size}"), \
            (asked, answered)
    # the seek was served by a new Range request into the second half of the recording (the metadata at the
    # end of the file was read before playing), not from what the first request had brought
    after_seek = [int(asked.removeprefix("bytes=").split("-")[0]) for _s, asked, _a in answers[before_seek:]]
    assert any(size // 2 <= first < size for first in after_seek), (before_seek, answers)
    views = audit.entries(box.catalog, action="view")
    assert [(v["recording_id"], v["actor"], v["purpose"], v["case_ref"]) for v in views] == [
        (rid, "fg", "complaint", "KL-2026-077")]


# --- (2) a handover of both clips -------------------------------------------------------------------------


@needs_age
@ENCRYPTION
def test_both_clips_go_out_in_a_handover_that_verifies(box, start_axis_server, clips, age_key, tmp_path,  # noqa: F811
                                                      encrypt):
    identity_file, public = age_key
    srv = start_axis_server(SETTINGS)
    ids = asyncio.run(deliver(box, srv, tmp_path / "w800", clips, encrypt))
    enrol_privacy_officers(box.data_dir)

    hid = handover.prepare(box, "fg", ids, RECEIVER, BASIS, CASE, "requisition", "age-recipient",
                           age_recipient=public)
    out = tmp_path / "overdracht.age"
    result = handover.approve(box, hid, "fg2", box.unlock("fg2", PASSWORD), out)
    blob = out.read_bytes()
    assert blob.startswith(b"age-encryption.org/v1\n") and result["package_sha256"] == sha(blob)

    # what the receiver runs: the signature over the manifest and every file's hash, with the box's key
    box_key = run_kluis("export", "box-key", "--data", box.data_dir).stdout.decode().strip()
    checked = run_kluis("export", "verify", out, "--identity", identity_file, "--box-key", box_key)
    assert "the package verifies" in checked.stdout.decode(), checked.stdout.decode()

    # opened with the real age CLI: the media files are the W800's clips, byte for byte
    subprocess.run(["age", "-d", "-i", str(identity_file), "-o", str(tmp_path / "p.zip"), str(out)], check=True)
    with zipfile.ZipFile(tmp_path / "p.zip") as zf:
        manifest = json.loads(zf.read("manifest.json"))
        assert manifest["handover_id"] == hid and manifest["case_ref"] == CASE
        assert [entry["recording_id"] for entry in manifest["files"]] == ids
        for entry, original in zip(manifest["files"], originals(clips)):
            exported = zf.read(entry["name"])
            assert exported == original, entry["name"]
            assert entry["clip"] is None and entry["size"] == len(original) and entry["sha256"] == sha(original)
            assert entry["chain"]["plaintext_sha256"] == sha(original)
            assert entry["chain"]["ciphertext_sha256"] == box.catalog.get_recording(entry["recording_id"])["sha256"]
    exports = audit.entries(box.catalog, action="export")
    assert sorted(e["recording_id"] for e in exports) == sorted(ids)


# --- (3) sync to the archive -------------------------------------------------------------------------------


@pytest.fixture
def archive(tmp_path):
    """A real archive: its data directory, and `kluis archive serve` in a subprocess (tests/sync's helpers)."""
    data = tmp_path / "archive"
    opened, _ = init_archive(data, ARCHIVE_PASSWORD, kdf_profile="interactive")
    opened.close()
    proc = ArchiveProcess(data, free_port(), tmp_path / "archive.log")
    proc.start()
    yield proc
    proc.stop()


@ENCRYPTION
def test_held_clips_go_to_the_archive_with_receipts_and_export_unchanged(box, start_axis_server, clips, archive,
                                                                          tmp_path, encrypt):
    # enrolled first: a recording is sealed to the box's recipients (then: the archive too) as it arrives
    asyncio.run(client.enroll(box, archive.url, new_token(archive.data_dir)))
    archive_key = bytes.fromhex(json.loads(box.catalog.get_meta("extra_recipients"))[0])
    srv = start_axis_server(SETTINGS)
    ids = asyncio.run(deliver(box, srv, tmp_path / "w800", clips, encrypt))
    for rid in ids:
        assert archive_key in parse_header(box.catalog.header_of(rid)).recipients
        retention.add_hold(box, rid, "police_report", "PV-2026-077", actor="admin")

    sent = run_kluis("sync", "run", "--data", box.data_dir).stdout.decode()
    for rid in ids:
        assert f"sent {rid}" in sent, sent

    with Archive(archive.data_dir) as arch:
        rows = {row["recording_id"]: row for row in arch.list_recordings()}
        assert sorted(rows) == sorted(ids)
        for rid in ids:
            recording = box.catalog.get_recording(rid)
            assert rows[rid]["sha256"] == recording["sha256"] and rows[rid]["case_refs"] == "PV-2026-077"
            kept = client.receipt_for(box, rid)
            assert kept is not None, rid
            fields = verify_receipt(kept["receipt"], arch.signing_public_key)
            assert fields["recording_id"] == rid and fields["sha256"] == recording["sha256"]
        actions = [e["action"] for rid in ids for e in audit.entries(box.catalog, recording_id=rid)]
        assert actions.count("sync_send") == 2 and actions.count("sync_receipt") == 2

    password_file = tmp_path / "archive-password.txt"
    password_file.write_text(ARCHIVE_PASSWORD + "\n")
    for rid, original in zip(ids, originals(clips)):
        out = tmp_path / f"{rid}.mp4"
        run_kluis("archive", "export", "--data", archive.data_dir, rid, "--purpose", "police_report",
                  "--case", "PV-2026-077", "--actor", "officier", "--out", out, "--password-file", password_file)
        assert out.read_bytes() == original, rid
