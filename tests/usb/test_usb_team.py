"""A USB camera's recording gets the team of the officer it is registered to (appliance/teams.py), through
the real `kluis usb ingest` on a real FAT image; a pooled camera without a shift leaves it unknown."""

from __future__ import annotations

from datetime import datetime, timedelta

from appliance import roles, users
from appliance.box import Box
from tests.conftest import PASSWORD
from tests.usb.conftest import (
    UTC, FatImage, make_clip, pair_usb, recordings_of, set_creation_time, usb_ingest,
)

PERSONAL, POOLED = "GENTEAM01", "GENTEAM02"


def camera(tmp_path, label: str, start: datetime) -> FatImage:
    image = FatImage(tmp_path / f"{label}.img", label)
    clip = make_clip(tmp_path, label, 2, start, label=label)
    set_creation_time(clip, start)
    image.put(clip.path, "DCIM/100MEDIA/VID_0001.MP4", mtime=start)
    return image


def test_a_usb_recording_takes_the_team_of_the_cameras_officer(tmp_path, box_dir, password_file):
    data = box_dir[0]
    with Box(data) as box:
        users.add_user(box, "admin", "A. de Boer", roles.OFFICER, PASSWORD, team="Zuid",
                       identity=box.unlock("admin", PASSWORD))
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    personal, pooled = camera(tmp_path, PERSONAL, start), camera(tmp_path, POOLED, start)
    for image, serial, officer in ((personal, PERSONAL, "A. de Boer"), (pooled, POOLED, None)):
        assert usb_ingest(data, image.path)["state"] == "found"
        pair_usb(data, serial, password_file, officer=officer)
        assert usb_ingest(data, image.path)["state"] == "done"

    [mine] = recordings_of(data, PERSONAL)
    assert (mine["source"], mine["officer"], mine["team"]) == ("usb", "A. de Boer", "Zuid")
    [nobodys] = recordings_of(data, POOLED)
    assert (nobodys["officer"], nobodys["team"]) == (None, None)
