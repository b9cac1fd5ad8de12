"""An Axis upload and a USB ingest race a dock offload for the same room on a small real disk (a tmpfs):
the dock downloads in `kluis serve`, the USB camera is read by `kluis usb ingest` (another process), the
Axis W800 uploads to the destination in this process (another again). Each fits beside the reserve alone,
not beside the download in flight: both are refused while it runs, free space never falls below
`[storage] reserve_mb`, and once room is back both go through."""

from __future__ import annotations

import secrets
from pathlib import Path

from swiftclient import client as swift

from appliance.box import Box, init_box
from tests.axis.conftest import (
    CONTAINER, T0, AxisServer, W800, clip_bytes, clip_headers, connection_document, new_marker, swift_connection,
)
from tests.dock.dock_helpers import box_recordings, configure_box, pair, set_config, wait_for
from tests.space.test_cameras_at_once import RESERVE_MB, FreeWatcher, leave_free
from tests.usb.conftest import FatImage, make_big_clip, pair_usb, usb_ingest

RUN = secrets.token_hex(2).upper()
MiB = 1 << 20
USB_SERIAL = "RACE0001"
CLIP = "20261207_095930_ab12.mp4"  # 09:59:30 .. 10:00:10, as the W800 names a clip


def put_status(conn: swift.Connection, name: str, body: bytes) -> int:
    response: dict = {}
    try:
        conn.put_object(CONTAINER, name, body, headers=clip_headers(T0 - 30, T0 + 10), response_dict=response)
    except swift.ClientException as exc:
        return exc.http_status
    return response["status"]


def others_reservations(data: Path) -> list[str]:
    """The dock's reservation, booked by `kluis serve` (not by this process)."""
    import os

    folder = data / "reservations"
    return [n for n in os.listdir(folder) if len(n.split(".")) == 5 and n.split(".")[1] != str(os.getpid())] \
        if folder.exists() else []  # reservations only: not the lock, nor a full-disk episode's mark


def test_axis_and_usb_ingests_racing_a_dock_offload_keep_the_reserve(small_disk, cameras, serve, tmp_path,
                                                                     password_file):
    disk = small_disk("96m")
    data = disk / "data"
    init_box(data, "admin", "correct horse battery staple", kdf_profile="interactive")[0].close()
    configure_box(data, ["127.0.0.1"])
    set_config(data, "storage", {"reserve_mb": RESERVE_MB})

    # The USB camera, known to the box (first plug-in, then paired by the keeper).
    clip = make_big_clip(tmp_path, "race", frames=14)
    usb_size = len(clip.data)
    image = FatImage(tmp_path / "race.img", USB_SERIAL)
    image.put(clip.path, "DCIM/100MEDIA/VID_0001.MP4")
    assert usb_ingest(data, image.path)["state"] == "found"
    pair_usb(data, USB_SERIAL, password_file, officer="A. de Boer")

    # The W800, registered on the destination, its recording's container open.
    axis = AxisServer(data)
    try:
        with Box(data) as box:
            document = connection_document(box, axis)
        conn = swift_connection(document, tmp_path)
        conn.url, conn.token = conn.get_auth()
        w800 = W800(conn)
        w800.register()
        w800.open(CONTAINER)
        axis_clip = clip_bytes(usb_size, new_marker())

        # The dock camera, slow enough that its download is in flight while the others try.
        cam = cameras(f"RACE-{RUN}", "--rate", "1500000")
        server = serve(data)
        pair(data, cam, "--pre-record", "0", "--post-record", "0")
        dock_size = 12 * MiB
        # Room for the download, or for one of the others, beside the reserve; not for two of them.
        ballast = leave_free(disk, RESERVE_MB * MiB + dock_size + usb_size // 2)
        watcher = FreeWatcher(disk)
        cam.record(0.5, 12)
        wait_for(lambda: any((data / "tmp").glob("*.part")), 30, what="the dock's download started")

        report = usb_ingest(data, image.path, expect_rc=None)
        assert report["state"] == "storage_full", report
        assert "in flight" in report["message"], report
        assert put_status(conn, CLIP, axis_clip) == 507

        wait_for(lambda: not cam.entries() and len(box_recordings(data)) == 1, 60, what="the dock's download")
        assert watcher.stop() >= RESERVE_MB * MiB, "free space fell below the reserve"
        assert image.files() == {"DCIM/100MEDIA/VID_0001.MP4"}  # the USB camera kept its file

        # Room again: both go through, the disk still keeps its reserve.
        ballast.unlink()
        watcher = FreeWatcher(disk)
        assert put_status(conn, CLIP, axis_clip) == 201
        report = usb_ingest(data, image.path)
        assert report["state"] == "done" and [f["state"] for f in report["files"]] == ["stored"], report
        assert watcher.stop() >= RESERVE_MB * MiB
        server.stop()
    finally:
        axis.close()
    sources = sorted(r["source"] for r in box_recordings(data))
    assert sources == ["dock", "usb"], sources  # the Axis clip waits in its container for the W800's Complete
    assert not others_reservations(data)
