"""Several cameras plugged in at once (a multi-port dock): one `kluis usb ingest` each, at most
`[usb] concurrency` of them reading at a time (ingest.slot), all complete and correct."""

from __future__ import annotations

import json
import subprocess
import time

from appliance.box import Box
from appliance.usb import ingest
from tests.conftest import KLUIS, run_kluis
from tests.usb.conftest import (
    alert_kinds, assert_nothing_half, long_ago, novatek_camera, query, recordings_of, register_in_process,
    set_config, when,
)

OFFICERS = {"NT-DOCK-1": "A. Aksoy", "NT-DOCK-2": "B. Bos", "NT-DOCK-3": "C. Claes"}


def test_three_cameras_at_once_with_two_slots(tmp_path, box_dir):
    data = box_dir[0]
    set_config(data, "usb", "concurrency", "2")
    cameras = {}
    for i, (serial, officer) in enumerate(OFFICERS.items()):
        image, clips = novatek_camera(tmp_path, serial, [long_ago(40 + i), long_ago(35 + i)])
        register_in_process(data, image.path, officer=officer)
        cameras[serial] = (image, clips)

    with Box(data) as box, ingest.slot(box) as first, ingest.slot(box) as second:
        assert (first, second) == (0, 1)  # both slots of [usb] concurrency = 2 held here
        procs = {serial: subprocess.Popen([*KLUIS, "usb", "ingest", "--data", str(data), str(image.path), "--json"],
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for serial, (image, _clips) in cameras.items()}
        time.sleep(1.5)
        assert all(p.poll() is None for p in procs.values()), "an ingest ran without a free slot"
        assert query(data, "SELECT * FROM usb_sessions") == []
        assert recordings_of(data) == []
    try:  # slots free: they go, two at a time
        results = {serial: p.communicate(timeout=60) for serial, p in procs.items()}
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()

    for serial, (out, err) in results.items():
        assert procs[serial].returncode == 0, err.decode()
        assert "Traceback" not in err.decode()
        report = json.loads(out)
        assert report["state"] == "done" and report["serial"] == serial, report
        image, clips = cameras[serial]
        assert [(f["path"], f["state"], f["deleted"]) for f in report["files"]] == \
            [(c.name, "stored", True) for c in clips]
        assert image.files() == set()
        rows = {r["source_ref"]: r for r in recordings_of(data, serial)}
        assert set(rows) == {c.name for c in clips}
        for clip in clips:
            assert rows[clip.name]["officer"] == OFFICERS[serial]
            assert when(rows[clip.name]["start_time"]) == clip.start
            usb_row = query(data, "SELECT sha256 FROM usb_files WHERE recording_id = ?", [rows[clip.name]["id"]])
            assert usb_row == [{"sha256": clip.sha256}]

    # Never more than two at once: the third began only after one of the first two had finished.
    sessions = sorted(query(data, "SELECT * FROM usb_sessions"), key=lambda s: s["started_at"])
    assert [s["state"] for s in sessions] == ["done"] * 3
    assert when(sessions[2]["started_at"]) >= min(when(s["updated_at"]) for s in sessions[:2])
    assert sorted(p.name for p in (data / "tmp" / "usb-slots").iterdir()) == ["0", "1"]
    assert len(recordings_of(data)) == 6
    assert alert_kinds(data) == ["usb_found"] * 3
    assert_nothing_half(data)
    assert "ok: 6 recording(s)" in run_kluis("verify", "--data", data).stdout.decode()
