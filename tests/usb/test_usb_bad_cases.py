"""What goes wrong at a USB plug-in: a file that is no video, a recording the vault has already, a full box
disk, a camera pulled out mid-copy, a damaged file system, a USB stick that is no camera. Each time the
camera keeps every file the box did not commit and verify, nothing half-imported is visible, there is one
alert for the event, and the next plug-in carries on."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time
from datetime import datetime, timedelta

from tests.conftest import KLUIS, run_kluis
from tests.usb.conftest import (
    UTC, FatImage, alert_kinds, assert_nothing_half, by_name, long_ago, make_big_clip, make_clip, novatek_camera,
    novatek_name, fuse_daemons, kluis_mounts, query, recordings_of, register_in_process, set_config,
    usb_ingest,
)


def _usb_files(data) -> list[dict]:
    return json.loads(run_kluis("usb", "files", "--data", data, "--json").stdout)


def test_a_file_that_is_not_video_is_refused_left_on_the_camera_and_listed(tmp_path, box_dir):
    data = box_dir[0]
    serial = "NT-REFUSE"
    image, clips = novatek_camera(tmp_path, serial, [long_ago(40)])
    bad = f"DCIM/MOVIE/{novatek_name(long_ago(39), 2)}"  # named as the camera names its videos
    bad_bytes = b"\x00\x00\x00\x18ftypmp42" + b"this is no video, only its name says so " * 200
    image.put_bytes(bad_bytes, bad)
    register_in_process(data, image.path, officer="J. Jansen")
    alerts_before = alert_kinds(data)

    report = usb_ingest(data, image.path)
    assert report["state"] == "done", report
    files = by_name(report)
    assert (files[clips[0].name]["state"], files[clips[0].name]["deleted"]) == ("stored", True)
    assert (files[bad]["state"], files[bad]["deleted"]) == ("refused", False)
    assert report["left_on_camera"] == [bad]
    assert image.files() == {bad} and image.read(bad) == bad_bytes
    assert [r["source_ref"] for r in recordings_of(data)] == [clips[0].name]
    left = _usb_files(data)
    assert [(f["serial"], f["path"], f["size"]) for f in left] == [(serial, bad, len(bad_bytes))]
    assert left[0]["reason"]
    table = run_kluis("usb", "files", "--data", data).stdout.decode()
    assert bad in table
    assert alert_kinds(data) == alerts_before + ["usb_refused_file"]
    assert_nothing_half(data)

    # The next plug-in: the refused file stays where it is, listed once, no second alert.
    again = usb_ingest(data, image.path)
    assert again["state"] == "done" and [(f["path"], f["state"]) for f in again["files"]] == [(bad, "refused")]
    assert image.files() == {bad}
    assert len(_usb_files(data)) == 1
    assert alert_kinds(data) == alerts_before + ["usb_refused_file"]
    assert len(recordings_of(data)) == 1


def test_a_recording_already_in_the_vault_is_not_stored_again(tmp_path, box_dir):
    """A camera that comes back with a file the box stored (its deletion was lost, or it was copied back)."""
    data = box_dir[0]
    serial = "NT-AGAIN"
    image, clips = novatek_camera(tmp_path, serial, [long_ago(50), long_ago(49)])
    register_in_process(data, image.path, officer="J. Jansen")
    first = usb_ingest(data, image.path)
    assert first["state"] == "done" and image.files() == set()
    ids = {f["path"]: f["recording_id"] for f in first["files"]}
    blobs = sorted(p.name for p in (data / "blobs").glob("*/*"))
    alerts_before = alert_kinds(data)

    image.put(clips[0].path, clips[0].name, mtime=clips[0].start)  # the same file, back on the camera
    local = long_ago(48)
    new = make_clip(tmp_path, "again-3", 3, local, label="AGAIN 3")
    new.name = f"DCIM/MOVIE/{novatek_name(local, 3)}"
    image.put(new.path, new.name, mtime=datetime.now(UTC) - timedelta(days=48))
    report = usb_ingest(data, image.path)
    assert report["state"] == "done", report
    files = by_name(report)
    assert (files[clips[0].name]["state"], files[clips[0].name]["recording_id"]) == ("already", ids[clips[0].name])
    assert files[clips[0].name]["deleted"], "read back, the same bytes as stored: deleted on the camera"
    assert (files[new.name]["state"], files[new.name]["deleted"]) == ("stored", True)
    assert image.files() == set()
    rows = recordings_of(data, serial)
    assert len(rows) == 3 and len({r["sha256"] for r in rows}) == 3
    assert len(query(data, "SELECT * FROM recordings WHERE source_ref = ?", [clips[0].name])) == 1
    assert len(list((data / "blobs").glob("*/*"))) == len(blobs) + 1
    assert alert_kinds(data) == alerts_before
    assert_nothing_half(data)


def test_a_full_box_disk_leaves_the_camera_untouched_and_resumes(tmp_path, box_dir):
    data = box_dir[0]
    serial = "NT-FULL"
    image, clips = novatek_camera(tmp_path, serial, [long_ago(60), long_ago(59), long_ago(58)])
    register_in_process(data, image.path, officer="J. Jansen")
    on_camera = image.files()
    image_sha = hashlib.sha256(image.path.read_bytes()).hexdigest()
    alerts_before = alert_kinds(data)

    set_config(data, "storage", "reserve_mb", "100000000")  # 100 TB must stay free: the disk is "full"
    report = usb_ingest(data, image.path, expect_rc=1)
    assert report["state"] == "storage_full", report
    assert all(not f.get("deleted") for f in report["files"])
    assert image.files() == on_camera
    assert hashlib.sha256(image.path.read_bytes()).hexdigest() == image_sha, "the camera was written to"
    assert recordings_of(data) == []
    assert list((data / "blobs").glob("*/*")) == []
    assert_nothing_half(data)
    assert alert_kinds(data) == alerts_before + ["storage_full"]
    session = query(data, "SELECT * FROM usb_sessions WHERE serial = ?", [serial])[0]
    assert session["state"] == "storage_full"

    set_config(data, "storage", "reserve_mb", "1")  # room again: the next plug-in takes everything
    report = usb_ingest(data, image.path)
    assert report["state"] == "done", report
    assert sorted(f["state"] for f in report["files"]) == ["stored"] * 3
    assert image.files() == set()
    assert {r["source_ref"] for r in recordings_of(data)} == {c.name for c in clips}
    assert alert_kinds(data) == alerts_before + ["storage_full"]
    assert_nothing_half(data)


def test_a_camera_pulled_out_mid_copy_keeps_the_file_and_the_next_plug_in_stores_it(tmp_path, box_dir):
    data = box_dir[0]
    serial = "NT-PULLED"
    image, clips = novatek_camera(tmp_path, serial, [long_ago(40)], size_mb=256)
    big = make_big_clip(tmp_path, "big", frames=120)
    big.name = f"DCIM/MOVIE/{novatek_name(long_ago(39), 2)}"
    assert len(big.data) > 60_000_000 and big.seconds > 10
    image.put(big.path, big.name, mtime=datetime.now(UTC) - timedelta(days=39))
    register_in_process(data, image.path, officer="J. Jansen")
    alerts_before = alert_kinds(data)
    mounts_before = kluis_mounts()

    started = time.monotonic()
    proc = subprocess.Popen([*KLUIS, "usb", "ingest", "--data", str(data), str(image.path), "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        small = len(clips[0].data)
        while True:  # wait until the big file is being read
            rows = query(data, "SELECT bytes_done FROM usb_sessions WHERE serial = ? AND state = 'reading'",
                         [serial])
            if rows and rows[0]["bytes_done"] > small:
                break
            assert proc.poll() is None, "the ingest ended before the camera could be pulled out: " \
                + proc.stdout.read().decode()
            assert time.monotonic() - started < 30, "the ingest never started reading"
            time.sleep(0.005)
        daemons = fuse_daemons(image.path)
        assert len(daemons) == 1, daemons
        ours = kluis_mounts() - mounts_before
        assert ours, "Kluis mounted the camera somewhere else than a kluis-usb-* directory"
        os.kill(daemons[0], signal.SIGKILL)  # the camera is gone: its file system with it
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = err.decode(errors="replace")
    assert "Traceback" not in err, err
    assert proc.returncode == 1
    report = json.loads(out)
    assert report["state"] in ("gone", "error"), report
    assert big.name not in {f["path"] for f in report["files"] if f["state"] == "stored"}
    assert [r["source_ref"] for r in recordings_of(data)] in ([], [clips[0].name])
    assert query(data, "SELECT * FROM usb_files WHERE path = ? AND state = 'stored'", [big.name]) == []
    assert_nothing_half(data)
    assert big.name in image.files(), "the file Kluis had not stored is gone from the camera"
    assert image.read(big.name) == big.data
    kinds = alert_kinds(data)
    assert kinds[:len(alerts_before)] == alerts_before
    assert len(kinds) == len(alerts_before) + 1 and kinds[-1] in ("usb_gone", "usb_error"), kinds
    assert not ours & kluis_mounts(), "Kluis left the dead camera mounted"

    # Plugged in again: the rest is stored, and the camera emptied.
    report = usb_ingest(data, image.path)
    assert report["state"] == "done", report
    assert by_name(report)[big.name]["state"] == "stored"
    assert image.files() == set()
    rows = {r["source_ref"]: r for r in recordings_of(data, serial)}
    assert set(rows) == {clips[0].name, big.name}
    stored = query(data, "SELECT * FROM usb_files WHERE recording_id = ?", [rows[big.name]["id"]])[0]
    assert stored["sha256"] == big.sha256 and rows[big.name]["size"] == len(big.data)
    assert_nothing_half(data)
    assert "ok: 2 recording(s)" in run_kluis("verify", "--data", data).stdout.decode()


def test_a_damaged_file_system_gives_a_clear_error_and_stores_nothing_half(tmp_path, box_dir):
    data = box_dir[0]
    serial = "NT-DAMAGED"
    image, clips = novatek_camera(tmp_path, serial, [long_ago(40), long_ago(39)])
    register_in_process(data, image.path, officer="J. Jansen")
    good, damaged = clips
    image.damage_chain(damaged.name)  # its first cluster is fine, the rest of its chain points nowhere
    alerts_before = alert_kinds(data)

    report = usb_ingest(data, image.path, expect_rc=None)
    files = by_name(report)
    assert report["state"] in ("done", "error", "gone"), report
    assert files.get(good.name, {}).get("state") == "stored", "the intact file is stored before the damaged one"
    assert damaged.name in image.files()
    assert [r["source_ref"] for r in recordings_of(data)] == [good.name]
    stored = query(data, "SELECT * FROM usb_files WHERE state = 'stored'")
    assert [(s["path"], s["sha256"]) for s in stored] == [(good.name, good.sha256)]
    assert_nothing_half(data)
    kinds = alert_kinds(data)
    assert len(kinds) == len(alerts_before) + 1, kinds
    assert kinds[-1] in ("usb_error", "usb_gone", "usb_refused_file"), kinds
    assert "ok: 1 recording(s)" in run_kluis("verify", "--data", data).stdout.decode()

    # The next plug-in (still damaged): the same outcome, nothing stored twice, nothing half.
    again = usb_ingest(data, image.path, expect_rc=None)
    assert again["state"] == report["state"], again
    assert damaged.name in image.files()
    assert [r["source_ref"] for r in recordings_of(data)] == [good.name]
    assert_nothing_half(data)
    if report["state"] == "done":  # the damaged file refused, left on the camera and listed
        assert files[damaged.name]["state"] == "refused" and not files[damaged.name]["deleted"]
        assert [f["path"] for f in _usb_files(data)] == [damaged.name]
    else:  # a clear error: it says which file could not be read
        assert damaged.name.rsplit("/", 1)[-1] in report["message"], \
            f"the error does not say what could not be read: {report['message']!r}"


def test_an_unknown_usb_stick_is_listed_once_and_never_read(tmp_path, box_dir):
    data = box_dir[0]
    image = FatImage(tmp_path / "stick.img", "STICK01")
    image.put_bytes(b"Beste meneer,\n", "Documents/brief.txt")
    video = make_clip(tmp_path, "holiday", 2, long_ago(100), label="HOLIDAY")
    image.put(video.path, "vakantie.mp4")
    image.put(video.path, "MOVIE/vakantie2.MP4")
    on_stick = image.files()
    image_sha = hashlib.sha256(image.path.read_bytes()).hexdigest()

    for plug_in in (1, 2):
        report = usb_ingest(data, image.path)
        assert report["state"] == "unknown_volume", report
        assert report["files"] == [] and report["serial"] is None
        volumes = query(data, "SELECT * FROM usb_volumes")
        assert len(volumes) == 1, volumes
        assert volumes[0]["profile"] is None and volumes[0]["label"] == "STICK01"
        assert alert_kinds(data) == ["usb_unknown"], f"plug-in {plug_in}"
    assert recordings_of(data) == []
    assert query(data, "SELECT * FROM devices") == []
    assert query(data, "SELECT * FROM usb_files") == []
    assert _usb_files(data) == []
    assert image.files() == on_stick
    assert hashlib.sha256(image.path.read_bytes()).hexdigest() == image_sha, "the stick was written to"
    assert_nothing_half(data)
