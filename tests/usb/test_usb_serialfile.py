"""A bodycam made for evidence use on exFAT (serialfile profile): serial in DEVICE.TXT, its clock in
TIME.TXT, RECORD/<serial>_<YYYYMMDDHHMMSS>.MP4 in UTC. Ingested in-process through the domain functions
(appliance.usb.volume.opened + appliance.usb.ingest.ingest) as `kluis usb ingest` calls them."""

from __future__ import annotations

from datetime import datetime, timedelta

from appliance.box import Box
from appliance.usb import ingest, volume
from tests.conftest import run_kluis
from tests.usb.conftest import (
    UTC, alert_kinds, assert_nothing_half, make_clip, pair_usb, query, recordings_of, usb_ingest, when,
)

SERIAL = "KB1234567"
BEHIND_S = 90  # the camera's clock is this far behind the box's


def _camera_time_file(root, behind_s: float) -> None:
    camera_now = datetime.now(UTC) - timedelta(seconds=behind_s)
    (root / "TIME.TXT").write_text(f"{camera_now:%Y-%m-%d %H:%M:%S}\r\n")


def test_serialfile_camera_on_exfat_clock_offset_and_pooled_shift(tmp_path, box_dir, password_file, exfat_image):
    data = box_dir[0]
    image = exfat_image(tmp_path / "kb.img", "BODYCAM")
    now = datetime.now(UTC).replace(microsecond=0)
    boundary = (now - timedelta(hours=2)).replace(second=0)  # one shift ends, the next begins
    # Camera times (UTC, its own clock): one well inside the first shift, one 60 s before the boundary,
    # which the 90 s correction puts 30 s into the second shift.
    camera_starts = [boundary - timedelta(hours=1), boundary - timedelta(seconds=60)]
    clips = []
    with image.mounted() as root:
        (root / "DEVICE.TXT").write_text(f"MODEL=BWC-9\r\nSN={SERIAL}\r\nFW=2.1\r\n")
        _camera_time_file(root, BEHIND_S)
        (root / "RECORD").mkdir()
        for n, start in enumerate(camera_starts, 1):
            clip = make_clip(tmp_path, f"kb-{n}", 3, start, label=f"KB {n}")
            clip.name, clip.start = f"RECORD/{SERIAL}_{start:%Y%m%d%H%M%S}.MP4", start
            (root / clip.name).write_bytes(clip.data)
            clips.append(clip)
    assert image.files() == {"DEVICE.TXT", "TIME.TXT"} | {c.name for c in clips}

    with Box(data) as box, volume.opened(image.device) as vol:
        assert vol.fs_type == "exfat" and vol.label == "BODYCAM"
        report = ingest.ingest(box, vol)
    assert (report.state, report.serial, report.profile) == ("found", SERIAL, "serialfile"), report
    assert recordings_of(data) == []

    pair_usb(data, SERIAL, password_file)  # pooled
    for officer, starts, ends in (("P. Bakker", boundary - timedelta(hours=8), boundary),
                                  ("K. de Vries", boundary, boundary + timedelta(hours=8))):
        run_kluis("cameras", "shift", "--data", data, SERIAL, "--officer", officer,
                  "--from", starts.isoformat(), "--until", ends.isoformat(), "--password-file", password_file)

    with image.mounted() as root:  # docked now: the camera writes its clock
        _camera_time_file(root, BEHIND_S)
    with Box(data) as box, volume.opened(image.device) as vol, ingest.slot(box):
        report = ingest.ingest(box, vol)
    assert report.state == "done", report
    assert [(f.path, f.state, f.deleted) for f in report.files] == [(c.name, "stored", True) for c in clips]
    offset = report.clock_offset_s
    assert BEHIND_S <= offset < BEHIND_S + 30, offset

    device = query(data, "SELECT * FROM devices WHERE serial = ?", [SERIAL])[0]
    assert device["clock_offset_s"] == offset and device["mode"] == "pooled"
    docks = query(data, "SELECT * FROM docks WHERE serial = ?", [SERIAL])
    assert len(docks) == 1 and docks[0]["clock_offset_s"] == offset

    rows = {r["source_ref"]: r for r in recordings_of(data, SERIAL)}
    assert set(rows) == {c.name for c in clips}
    for clip in clips:
        row = rows[clip.name]
        assert row["source"] == "usb"
        assert when(row["camera_start_time"]) == clip.start, "the camera's own time, as it said it"
        assert row["clock_offset_s"] == offset
        assert abs((when(row["start_time"]) - clip.start).total_seconds() - offset) < 0.002, \
            "start: corrected by the measured clock offset"
        assert abs((when(row["end_time"]) - when(row["start_time"])).total_seconds() - clip.seconds) < 0.002
        usb_row = query(data, "SELECT * FROM usb_files WHERE recording_id = ?", [row["id"]])[0]
        assert usb_row["sha256"] == clip.sha256 and usb_row["time_source"] == "filename"
    # the officer is the shift's at the corrected start (box clock), not at the camera's
    assert rows[clips[0].name]["officer"] == "P. Bakker"
    assert rows[clips[1].name]["officer"] == "K. de Vries"

    assert image.files() == {"DEVICE.TXT", "TIME.TXT"}, "recordings left on the camera (or other files deleted)"
    assert alert_kinds(data) == ["usb_found"]
    assert_nothing_half(data)
    verified = run_kluis("verify", "--data", data).stdout.decode()
    assert "ok: 2 recording(s)" in verified, verified


def test_exfat_image_file_is_mounted_by_kluis(tmp_path, box_dir, exfat_image):
    """`kluis usb ingest IMAGE` takes an image file (README, --help): on a kernel without exfat Kluis mounts
    it with exfat-fuse. exfat-fuse mounts block devices only, so an image file has to be attached to a loop
    device first; without that the camera cannot be read at all."""
    data = box_dir[0]
    image = exfat_image(tmp_path / "kb.img", "BODYCAM")
    with image.mounted() as root:
        (root / "DEVICE.TXT").write_text(f"SN={SERIAL}\n")
        (root / "RECORD").mkdir()
    image.detach()  # the image file alone, as a keeper copies a camera's card
    report = usb_ingest(data, image.path, expect_rc=None)
    assert report["state"] == "found", report
    assert report["serial"] == SERIAL
