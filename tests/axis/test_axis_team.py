"""An Axis recording gets its officer's team (appliance/teams.py): the W800 names its user "Name (UserID)",
and the Kluis user whose name is that UserID (or the whole "Name (UserID)") gives the team. A W800 user
that is no Kluis user leaves the team unknown until the keeper enrols them with a team."""

from __future__ import annotations

from datetime import datetime, timezone

from appliance import roles, users
from tests.axis.conftest import (
    CONTAINER, SERIAL, T0, W800, clip_bytes, connection_document, new_marker, recordings_of, swift_connection,
)
from tests.conftest import PASSWORD

OTHER_UUID = "u-5678"
OTHER = f"{OTHER_UUID}_{SERIAL}_20261207T110000Z"


def test_an_axis_recording_takes_the_team_of_the_kluis_user_with_its_userid(box, start_axis_server, tmp_path):
    identity = box.unlock("admin", PASSWORD)
    users.add_user(box, "admin", "1001", roles.OFFICER, PASSWORD, team="Noord", identity=identity)
    srv = start_axis_server()
    w800 = W800(swift_connection(connection_document(box, srv), tmp_path))
    w800.register(name="P. de Vries", user_id="1001")
    w800.add_user(OTHER_UUID, name="A. Bos", user_id="2002")  # no Kluis user
    for container, t0 in ((CONTAINER, T0), (OTHER, T0 + 3600)):
        w800.open(container, t0)
        for n in range(2):  # two clips: two recordings, one team
            start = t0 + 40 * n
            name = datetime.fromtimestamp(start, timezone.utc).strftime("%Y%m%d_%H%M%S_ab12.mp4")
            w800.clip(container, name, clip_bytes(10_000, new_marker()), start, start + 40)
        w800.complete(container)

    mapped = recordings_of(box, CONTAINER)
    assert len(mapped) == 2
    assert {(r["officer"], r["team"]) for r in mapped} == {("P. de Vries (1001)", "Noord")}
    unknown = recordings_of(box, OTHER)
    assert {(r["officer"], r["team"]) for r in unknown} == {("A. Bos (2002)", None)}

    users.add_user(box, "admin", "2002", roles.OFFICER, PASSWORD, team="Zuid", identity=identity)
    assert {r["team"] for r in recordings_of(box, OTHER)} == {"Zuid"}
    assert {r["team"] for r in recordings_of(box, CONTAINER)} == {"Noord"}
