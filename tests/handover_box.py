"""The template box both handover conftests build (tests/handover for the domain and CLI, tests/handover_ui
for the pages): the same steps, with each suite's own users and clips. Imported as `tests.handover_box`."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Callable

from appliance import config, recordings, users
from appliance.box import Box, init_box
from appliance.dock.footage import make_mp4

FPS = 10  # footage.make_mp4 puts a keyframe every second (g = fps): one GOP is 1 s


def build_template(root: Path, password: str, people: dict, clips: tuple, clock: Callable[[], datetime]
                   ) -> tuple[Path, dict]:
    """A box in root/data whose keeper "admin" and every one of people (name -> (role, team)) has password,
    with clips (key, camera, officer, team, start, seconds) imported as real H.264 recordings; the MP4s
    stay beside it as root/<key>.mp4. Returns (data directory, key -> recording id)."""
    data = root / "data"
    box, _recovery = init_box(data, "admin", password, kdf_profile="interactive")
    box.close()
    config.write_template(data, {"security": {"kdf_profile": "interactive"}, "storage": {"chunk_size": 65536}})
    ids = {}
    with Box(data, clock=clock) as box:
        identity = box.unlock("admin", password)
        for name, (role, team) in people.items():
            users.add_user(box, "admin", name, role, password, team=team, identity=identity)
        for key, camera, officer, team, start, seconds in clips:
            clip = make_mp4(root / f"{key}.mp4", seconds, start, camera, fps=FPS)
            result = recordings.import_file(box, clip, camera=camera, officer=officer, start=start,
                                            pre_record_s=30, post_record_s=15)
            # The team comes with the camera's assignment on offload; an import names none.
            box.catalog.db.execute("UPDATE recordings SET team = ? WHERE id = ?", [team, result.recording_id])
            ids[key] = result.recording_id
    return data, ids
