"""The template box both handover suites use (tests/handover for the domain and CLI, tests/handover_ui for
the pages): the same users (one per role, and a second privacy officer for four eyes) at the same fixed moment,
with each suite's own clips. Built once per session, copied per test so that tests do not see each other's
handovers, holds or audit entries. Imported as `tests.handover_box`: each conftest makes its `box_template`
with template_fixture() and imports the fixtures below and those of tests/template_fixtures.py."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

import pytest

from appliance import config, recordings, roles, users
from appliance.box import Box, init_box
from appliance.dock.footage import make_mp4
from tests.conftest import PASSWORD

FPS = 10  # footage.make_mp4 puts a keyframe every second (g = fps): one GOP is 1 s
USERS = {  # name -> (role, team); every one has PASSWORD
    "fg": (roles.PRIVACY_OFFICER, None),
    "fg2": (roles.PRIVACY_OFFICER, None),
    "tl": (roles.TEAM_LEADER, "Noord"),
    "hh": (roles.OFFICER, "Noord"),
    "au": (roles.AUDITOR, None),
}
START = datetime(2026, 11, 20, 13, 5, 0, tzinfo=timezone.utc)  # 14:05 in Amsterdam
NOW = START + timedelta(days=2)


def fixed_clock() -> datetime:
    return NOW


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


def template_fixture(name: str, clips: tuple):
    """A suite's session fixture `box_template`: build_template in a fresh directory `name`, with USERS and
    clips, on fixed_clock."""
    @pytest.fixture(scope="session", name="box_template")
    def box_template(tmp_path_factory) -> tuple[Path, dict]:
        return build_template(tmp_path_factory.mktemp(name), PASSWORD, USERS, clips, fixed_clock)

    return box_template


@pytest.fixture(name="hbox")  # named apart, so that a conftest's fixtures can take `hbox` without shadowing it
def opened_copy(data) -> Box:
    with Box(data, clock=fixed_clock) as opened:
        yield opened


@pytest.fixture(scope="session")
def age_key(tmp_path_factory) -> tuple[Path, str]:
    """(identity file, public key) made by the real age-keygen."""
    if shutil.which("age-keygen") is None or shutil.which("age") is None:
        pytest.skip("the age CLI (Debian package age) is not installed")
    path = tmp_path_factory.mktemp("agekey") / "receiver.key"
    subprocess.run(["age-keygen", "-o", str(path)], check=True, capture_output=True)
    match = re.search(r"# public key: (age1\w+)", path.read_text())
    assert match, "age-keygen wrote no public key"
    return path, match.group(1)
