"""A Novatek-style bodycam on FAT32 (novatek profile): found on its first plug-in and left alone, registered
by the keeper, then emptied into the vault by `kluis usb ingest`; the footage comes back byte for byte."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime

from tests.conftest import add_role_users, run_kluis
from tests.usb.conftest import (
    UTC, alert_kinds, assert_no_plaintext, assert_nothing_half, by_name, novatek_camera, pair_usb, query,
    recordings_of, usb_ingest, when,
)

SERIAL = "NT20260001"


def test_novatek_camera_found_registered_ingested_and_emptied(tmp_path, box_dir, password_file):
    data = box_dir[0]
    year = datetime.now(UTC).year - 1
    # winter (CET, UTC+1) and summer (CEST, UTC+2) on the camera's local clock
    image, clips = novatek_camera(tmp_path, SERIAL, [datetime(year, 1, 15, 10, 15, 30),
                                                     datetime(year, 7, 15, 22, 15, 0)])
    assert clips[0].start == datetime(year, 1, 15, 9, 15, 30, tzinfo=UTC)
    assert clips[1].start == datetime(year, 7, 15, 20, 15, 0, tzinfo=UTC)
    on_camera = {c.name for c in clips}
    assert image.files() == on_camera

    # First plug-in: found, listed, not read.
    report = usb_ingest(data, image.path)
    assert report["state"] == "found", report
    assert report["serial"] == SERIAL and report["profile"] == "novatek"
    assert report["files"] == []
    assert recordings_of(data) == []
    assert query(data, "SELECT * FROM usb_files") == []
    assert image.files() == on_camera
    listed = json.loads(run_kluis("cameras", "list", "--data", data, "--json").stdout)
    assert [(d["serial"], d["paired"], d["proto"], d["model"]) for d in listed] == [(SERIAL, 0, "usb", "novatek")]
    table = run_kluis("cameras", "list", "--data", data).stdout.decode()
    assert any(line.startswith(SERIAL) and "not paired" in line for line in table.splitlines()), table
    assert alert_kinds(data) == ["usb_found"]

    # Plugged in again before the keeper registered it: still nothing read, no second alert.
    report = usb_ingest(data, image.path)
    assert report["state"] == "not_registered", report
    assert recordings_of(data) == [] and image.files() == on_camera
    assert alert_kinds(data) == ["usb_found"]

    out = pair_usb(data, SERIAL, password_file, officer="J. Jansen")
    assert "J. Jansen" in out
    device = json.loads(run_kluis("cameras", "list", "--data", data, "--json").stdout)[0]
    assert (device["paired"], device["mode"], device["officer"]) == (1, "personal", "J. Jansen")

    # A dry run says what it would read and changes nothing.
    report = usb_ingest(data, image.path, "--dry-run")
    assert report["state"] == "done"
    assert sorted(f["state"] for f in report["files"]) == ["would_store", "would_store"]
    assert recordings_of(data) == [] and image.files() == on_camera

    # The next plug-in stores every video and empties the camera.
    report = usb_ingest(data, image.path)
    assert report["state"] == "done", report
    assert report["left_on_camera"] == []
    files = by_name(report)
    assert set(files) == on_camera
    assert all(f["state"] == "stored" and f["deleted"] for f in files.values()), report
    assert image.files() == set(), "the camera still holds files Kluis stored"

    rows = {r["source_ref"]: r for r in recordings_of(data, SERIAL)}
    assert set(rows) == on_camera
    for clip in clips:
        row = rows[clip.name]
        assert row["id"] == files[clip.name]["recording_id"]
        assert row["source"] == "usb"
        assert row["camera_serial"] == SERIAL
        assert row["officer"] == "J. Jansen"
        assert when(row["camera_start_time"]) == clip.start
        assert when(row["start_time"]) == clip.start, "start: the file name's local time, in UTC"
        assert abs((when(row["end_time"]) - when(row["start_time"])).total_seconds() - clip.seconds) < 0.002
        assert row["size"] == len(clip.data)
        usb_row = query(data, "SELECT * FROM usb_files WHERE recording_id = ?", [row["id"]])[0]
        assert usb_row["sha256"] == clip.sha256
        assert usb_row["time_source"] == "filename"
        assert usb_row["state"] == "stored" and usb_row["deleted_at"]
    assert alert_kinds(data) == ["usb_found"]
    assert_nothing_half(data)

    verified = run_kluis("verify", "--data", data, "--password-file", password_file).stdout.decode()
    assert "ok: 2 recording(s)" in verified, verified

    add_role_users(data, "fg")
    for clip in clips:
        out = run_kluis("cat", "--data", data, rows[clip.name]["id"], "--purpose", "complaint", "--case", "K-16",
                        "--user", "fg", "--password-file", password_file).stdout
        assert hashlib.sha256(out).hexdigest() == clip.sha256, "the vault gave back other bytes"
    assert_no_plaintext(data, clips)
