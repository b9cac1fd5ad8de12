"""`kluis import` gives a recording its officer's team (appliance/teams.py): the team of the Kluis user
named by --officer at the time of the import. An officer the box does not know leaves the team unknown,
so no team leader lists it; the keeper enrolling that officer with a team gives it theirs. A team
recorded once does not move when its officer changes team."""

from __future__ import annotations

import json

from appliance import users
from appliance.box import Box
from tests.conftest import add_role_users


def imported(kluis, data, clip, officer: str, password_file) -> str:
    return kluis("import", "--data", data, clip, "--camera", "CAM9", "--officer", officer, "--user", "admin",
                 "--password-file", password_file, "--start", "2026-11-20T10:00:00",
                 "--end", "2026-11-20T10:03:00").stdout.decode().strip()


def teams_of(data) -> dict[str, str | None]:
    with Box(data) as box:
        return {r["id"]: r["team"] for r in box.catalog.list_recordings()}


def listed_by(kluis, data, user: str, password_file) -> set[str]:
    return {r["id"] for r in json.loads(kluis("list", "--data", data, "--json", "--user", user,
                                             "--password-file", password_file).stdout)}


def test_an_import_takes_the_team_of_its_officer(box_dir, kluis, password_file, tmp_path):
    data = box_dir[0]
    add_role_users(data, "tl", "hh", "fg")  # team leader and officer hh of team Noord, a privacy officer
    clips = []
    for n in range(2):
        clip = tmp_path / f"clip{n}.bin"
        clip.write_bytes(bytes([n]) * 20_000)
        clips.append(clip)
    own = imported(kluis, data, clips[0], "hh", password_file)
    stranger = imported(kluis, data, clips[1], "J. Jansen", password_file)  # no Kluis user
    assert teams_of(data) == {own: "Noord", stranger: None}
    assert listed_by(kluis, data, "tl", password_file) == {own}
    assert listed_by(kluis, data, "fg", password_file) == {own, stranger}

    # The keeper enrols the unknown officer with a team: their recording gets it, and its team leader sees it.
    kluis("users", "add", "--data", data, "J. Jansen", "--role", "officer", "--team", "Noord",
          "--new-password-file", password_file, "--user", "admin", "--password-file", password_file)
    assert teams_of(data) == {own: "Noord", stranger: "Noord"}
    assert listed_by(kluis, data, "tl", password_file) == {own, stranger}

    # hh moves to team Zuid: the recording made in Noord stays Noord's.
    with Box(data) as box:
        users.change_role(box, "admin", "hh", "officer", team="Zuid")
        assert box.catalog.get_user("hh")["team"] == "Zuid"
    assert teams_of(data)[own] == "Noord"
