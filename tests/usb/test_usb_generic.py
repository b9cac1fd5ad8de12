"""An unknown model with DCIM-style folders (generic profile): times from the MP4 container, and its files
stay on the camera (delete_after_ingest = false); plugging it in again stores nothing twice."""

from __future__ import annotations

from datetime import datetime, timedelta

from tests.conftest import run_kluis
from tests.usb.conftest import (
    UTC, FatImage, alert_kinds, assert_nothing_half, by_name, make_clip, pair_usb, query, recordings_of,
    set_creation_time, usb_ingest, when,
)

SERIAL = "GEN0042"


def test_generic_camera_keeps_its_files_and_is_not_stored_twice(tmp_path, box_dir, password_file):
    data = box_dir[0]
    image = FatImage(tmp_path / "gen.img", SERIAL)
    now = datetime.now(UTC).replace(microsecond=0)
    clips = []
    for n, start in enumerate((now - timedelta(hours=3), now - timedelta(hours=2, minutes=17, seconds=5)), 1):
        clip = make_clip(tmp_path, f"gen-{n}", 3, start, label=f"GEN {n}")
        set_creation_time(clip, start)
        clip.name, clip.start = f"DCIM/100MEDIA/VID_{n:04d}.MP4", start
        # the file time differs from the container's (and fusefat shows it a month late besides)
        image.put(clip.path, clip.name, mtime=start - timedelta(days=50))
        clips.append(clip)
    image.put_bytes(b"camera settings\n", "MISC/SETUP.INI")
    everything = {c.name for c in clips} | {"MISC/SETUP.INI"}
    assert image.files() == everything

    assert usb_ingest(data, image.path)["state"] == "found"
    pair_usb(data, SERIAL, password_file, officer="A. de Boer")

    report = usb_ingest(data, image.path)
    assert report["state"] == "done" and report["profile"] == "generic", report
    files = by_name(report)
    assert set(files) == {c.name for c in clips}, "only the profile's globs are read"
    assert all(f["state"] == "stored" and not f["deleted"] for f in files.values()), report
    assert sorted(report["left_on_camera"]) == sorted(files)
    assert image.files() == everything, "the generic profile must not delete anything on the camera"
    for clip in clips:
        assert image.read(clip.name) == clip.data

    rows = {r["source_ref"]: r for r in recordings_of(data, SERIAL)}
    assert set(rows) == set(files)
    for clip in clips:
        row = rows[clip.name]
        assert row["officer"] == "A. de Boer" and row["source"] == "usb"
        assert when(row["start_time"]) == clip.start, "start: the container's creation time"
        assert when(row["camera_start_time"]) == clip.start
        usb_row = query(data, "SELECT * FROM usb_files WHERE recording_id = ?", [row["id"]])[0]
        assert usb_row["time_source"] == "container" and usb_row["sha256"] == clip.sha256
        assert usb_row["deleted_at"] is None
    blobs_before = sorted(p.name for p in (data / "blobs").glob("*/*"))
    assert len(blobs_before) == 2

    # Plugged in again: everything is in the vault already; nothing new, nothing deleted.
    again = usb_ingest(data, image.path)
    assert again["state"] == "done", again
    assert {f["path"]: (f["state"], f["recording_id"], f["deleted"]) for f in again["files"]} == \
        {name: ("already", files[name]["recording_id"], False) for name in files}
    assert len(recordings_of(data)) == 2
    assert sorted(p.name for p in (data / "blobs").glob("*/*")) == blobs_before
    assert image.files() == everything
    assert alert_kinds(data) == ["usb_found"]
    assert_nothing_half(data)
    assert "ok: 2 recording(s)" in run_kluis("verify", "--data", data).stdout.decode()
