"""A camera profile's retention category: every recording of such a camera gets it when the real `kluis usb
ingest` stores it from a real FAT image (audited, source 'usb'); a category the box does not know is left
off, and the recording is stored all the same."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from appliance.usb.profiles import KEEPER_DIR, SHIPPED
from tests.conftest import run_kluis
from tests.usb.conftest import (
    UTC, FatImage, make_clip, pair_usb, query, recordings_of, set_creation_time, usb_ingest,
)

SERIAL = "EVTCAM01"


def keeper_profile(data, category: str) -> None:
    """The generic profile under another name, with a category, as a keeper adds one (DATA/usb-profiles)."""
    text = (SHIPPED / "generic.toml").read_text()
    text = text.replace('name = "generic"', 'name = "evenementcam"').replace("priority = 0", "priority = 5")
    text = text.replace("[camera]\n", f'[camera]\ncategory = "{category}"\n')
    (data / KEEPER_DIR).mkdir(exist_ok=True)
    (data / KEEPER_DIR / "evenementcam.toml").write_text(text)


def categories(data, category: str) -> None:
    path = data / "kluis.toml"
    path.write_text(path.read_text().replace("[retention.categories]", f"[retention.categories]\n{category} = 60", 1))


def camera(tmp_path, start: datetime) -> FatImage:
    image = FatImage(tmp_path / f"{SERIAL}.img", SERIAL)
    clip = make_clip(tmp_path, SERIAL, 2, start, label=SERIAL)
    set_creation_time(clip, start)
    image.put(clip.path, "DCIM/100MEDIA/VID_0001.MP4", mtime=start)
    return image


def test_a_profiles_category_is_set_on_every_recording_of_its_cameras(tmp_path, box_dir, password_file):
    data = box_dir[0]
    keeper_profile(data, "evenement")
    categories(data, "evenement")
    listed = run_kluis("usb", "profiles", "--data", data)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    image = camera(tmp_path, start)
    assert usb_ingest(data, image.path)["state"] == "found"
    pair_usb(data, SERIAL, password_file, officer="J. Jansen")
    assert usb_ingest(data, image.path)["state"] == "done"
    [rec] = recordings_of(data, SERIAL)
    rows = query(data, "SELECT category, source, set_by FROM recording_categories WHERE recording_id = ?", [rec["id"]])
    assert rows == [{"category": "evenement", "source": "usb", "set_by": "system"}]
    assert rec["category"] == "evenement"
    [change] = query(data, "SELECT details FROM audit_log WHERE action = 'category_change' AND recording_id = ?",
                     [rec["id"]])
    details = json.loads(change["details"])
    assert (details["added"], details["source"], details["term_days"]) == (["evenement"], "usb", 60)
    assert "evenement" in listed.stdout.decode()


def test_a_category_the_box_does_not_know_is_left_off_and_the_recording_stored(tmp_path, box_dir, password_file):
    data = box_dir[0]
    keeper_profile(data, "onbekend")  # no [retention.categories] entry for it
    listed = run_kluis("usb", "profiles", "--data", data)
    assert "onbekend (unknown: not set)" in listed.stdout.decode()
    image = camera(tmp_path, datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2))
    usb_ingest(data, image.path)
    pair_usb(data, SERIAL, password_file, officer="J. Jansen")
    assert usb_ingest(data, image.path)["state"] == "done"
    [rec] = recordings_of(data, SERIAL)
    assert rec["category"] is None
    assert query(data, "SELECT * FROM recording_categories") == []
