"""Across areas: a camera paired after the box enrolled seals its recordings to the archive too (no
re-wrap needed), and `kluis serve` (its sync loop) sends the held one on its own. Real camera simulator,
real mDNS on loopback, real `kluis serve`, real archive subprocess."""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

from appliance import retention
from appliance.box import Box
from appliance.container import parse_header
from sync import client
from sync.archive.store import Archive

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "dock"))
from dock_helpers import BoxServer, Camera, configure_box, pair, set_config, wait_for  # noqa: E402


def test_camera_paired_after_enrollment_seals_to_archive_and_serve_sends_held(enrolled, tmp_path):
    data, archive = enrolled
    configure_box(data, ["127.0.0.1"])
    set_config(data, "sync", {"interval_s": 1})
    serial = f"SYNC-{secrets.token_hex(2).upper()}"  # mDNS on loopback is shared with other test runs
    camera = Camera(tmp_path / "cam", serial)
    server = BoxServer(data)
    try:
        pair(data, camera, "--officer", "J. Jansen")
        camera.record(1)

        def offloaded():
            with Box(data) as box:
                rows = [r for r in box.catalog.list_recordings() if r["camera_serial"] == serial]
                return rows[0]["id"] if rows else None

        rid = wait_for(offloaded, 60, what="the recording offloaded")
        with Box(data) as box:
            archive_key = bytes.fromhex(client.enrollment(box)["public_key"])
            assert archive_key in parse_header(box.catalog.header_of(rid)).recipients
            retention.add_hold(box, rid, "police_report", "PV-CAM-1", actor="admin")

        def arrived():
            with Archive(archive.data_dir) as arch:
                return [r for r in arch.list_recordings() if r["recording_id"] == rid]

        def receipt():
            with Box(data) as box:
                return client.receipt_for(box, rid)

        rows = wait_for(arrived, 60, what="the held recording at the archive")
        # The archive lists the recording before the box has its answer: the receipt lands a moment later.
        assert wait_for(receipt, 30, what="the archive's receipt on the box")["sha256"] == rows[0]["sha256"]
        with Box(data) as box:
            assert client.status(box)["counts"]["needs_rewrap"] == 0
    finally:
        server.stop()
        camera.stop()
