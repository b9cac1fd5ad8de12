"""A docked camera's recordings get the team of the officer assigned when they were made (appliance/teams.py):
a real `kluis serve` offloading a real `kluis camera-sim` over loopback. A personal camera gives its
officer's team; a pooled camera's shift gives the shift officer's; an officer who is no Kluis user leaves
the team unknown."""

from __future__ import annotations

import secrets
import time

from appliance import roles, users
from appliance.box import Box
from dock_helpers import box_recordings, configure_box, keeper, pair, run_kluis, wait_for
from tests.conftest import PASSWORD

RUN = secrets.token_hex(2).upper()  # mDNS on loopback is shared with other test runs: unique serials
PERSONAL, POOLED = f"TEAM1-{RUN}", f"TEAM2-{RUN}"


def test_offloaded_recordings_take_the_team_of_their_officer(box_dir, cameras, serve):
    data = box_dir[0]
    with Box(data) as box:
        identity = box.unlock("admin", PASSWORD)
        users.add_user(box, "admin", "J. Jansen", roles.OFFICER, PASSWORD, team="Noord", identity=identity)
        users.add_user(box, "admin", "P. Bakker", roles.OFFICER, PASSWORD, team="Zuid", identity=identity)
    configure_box(data, ["127.0.0.1"])
    personal, pooled = cameras(PERSONAL), cameras(POOLED)
    serve(data)
    pair(data, personal, "--officer", "J. Jansen")
    pair(data, pooled)
    run_kluis("cameras", "assign", "--data", data, POOLED, "--pooled", *keeper(data))
    run_kluis("cameras", "shift", "--data", data, POOLED, "--officer", "P. Bakker", *keeper(data),
              "--from", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600)))
    personal.record(1)
    pooled.record(1)
    wait_for(lambda: len(box_recordings(data)) == 2, 60, what="both recordings offloaded")

    got = {r["camera_serial"]: (r["source"], r["officer"], r["team"]) for r in box_recordings(data)}
    assert got == {PERSONAL: ("dock", "J. Jansen", "Noord"), POOLED: ("dock", "P. Bakker", "Zuid")}

    # The personal camera goes to someone the box has no user for: their recording's team is unknown.
    run_kluis("cameras", "assign", "--data", data, PERSONAL, "--officer", "K. Smit", *keeper(data))
    personal.record(1)
    wait_for(lambda: len(box_recordings(data)) == 3, 60, what="the third recording offloaded")
    [smit] = [r for r in box_recordings(data) if r["officer"] == "K. Smit"]
    assert smit["team"] is None
