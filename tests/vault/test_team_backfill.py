"""The migration step `teams.backfill` (appliance/schema/teams.py) on a catalog made before it: every
recording whose officer is a Kluis user with a team gets that team, by the same rule the ingest paths
follow (appliance/teams.py), an Axis recording through the W800 user's UserID; the rest stay unknown."""

from __future__ import annotations

import sqlite3

from appliance import migrations, teams
from appliance.catalog import Catalog
from appliance.database import connect
from appliance.schema import BOX

BEFORE = tuple(m for m in BOX if m.name != "teams")  # what every Kluis before this step migrated to
NOW = "2026-11-20T14:00:00.000Z"


def recording(rid: str, officer: str | None, *, team: str | None = None, source: str = "dock",
              derived_from: str | None = None) -> dict:
    return {
        "id": rid, "camera_serial": "CAM1", "officer": officer, "team": team,
        "start_time": "2026-11-20T13:05:00.000Z", "end_time": "2026-11-20T13:07:00.000Z", "size": 10,
        "blob_size": 300, "sha256": rid.ljust(64, "0"), "stored_path": f"blobs/{rid}", "chunk_size": 65536,
        "ingested_at": NOW, "source": source, "derived_from": derived_from,
    }


def old_catalog(path) -> None:
    """A catalog at the schema of the release before the step, with users, Axis users and recordings."""
    db = connect(path)
    migrations.migrate(db, BEFORE, what="catalog")
    assert ("teams", "backfill") not in migrations.applied(db)
    for name, role, team in (("hh", "officer", "Noord"), ("kees", "officer", None), ("1001", "officer", "Zuid"),
                             ("tl", "team_leader", "Noord")):
        db["users"].insert({"name": name, "role": role, "team": team, "slot": "{}", "created_at": NOW})
    for uuid, name, user_id in (("u-1", "P. de Vries", "1001"), ("u-10", "A. Bos", "2002")):
        db["axis_users"].insert({"account": "w800", "uuid": uuid, "name": name, "user_id": user_id,
                                 "active": 1, "updated_at": NOW})
    rows = [
        recording("own", "hh"),                                   # a Kluis user with a team
        recording("kept", "hh", team="Oost"),                     # a team recorded already: kept
        recording("stranger", "J. Jansen", source="import"),      # no such Kluis user
        recording("teamless", "kees", source="usb"),              # a user without a team
        recording("nobody", None),                                # a pooled camera without a shift
        recording("axis", "P. de Vries (1001)", source="axis"),   # the W800's UserID is a Kluis user
        recording("axis-copy", "P. de Vries (1001)", source="redaction", derived_from="axis"),
        recording("axis-other", "A. Bos (2002)", source="axis"),  # UserID 2002 is no Kluis user
    ]
    for row in rows:
        db["recordings"].insert(row)
    for container, rid in (("u-1_B8A44F000001_20261120T130500Z", "axis"),
                           ("u-10_B8A44F000001_20261120T130500Z", "axis-other")):
        db["axis_objects"].insert({"account": "w800", "container": container, "name": "clip.mp4", "kind": "clip",
                                   "recording_id": rid, "created_at": NOW})
    db.conn.close()


def test_the_backfill_gives_recordings_their_officers_team(tmp_path):
    path = tmp_path / "catalog.db"
    old_catalog(path)
    catalog = Catalog(path)  # opening runs the steps not yet applied: teams.backfill
    try:
        assert ("teams", "backfill") in migrations.applied(catalog.db)
        got = {r["id"]: r["team"] for r in catalog.db.query("SELECT id, team FROM recordings")}
        assert got == {"own": "Noord", "kept": "Oost", "stranger": None, "teamless": None, "nobody": None,
                       "axis": "Zuid", "axis-copy": "Zuid", "axis-other": None}
        # The SQL of the step and the rule of the ingest paths agree.
        assert teams.officer_team(catalog, "hh") == "Noord"
        assert teams.officer_team(catalog, "P. de Vries (1001)", axis_user_id="1001") == "Zuid"
        for officer in ("J. Jansen", "kees", None):
            assert teams.officer_team(catalog, officer) is None
    finally:
        catalog.close()
    # Run once: the bookkeeping holds the step with the time it ran.
    conn = sqlite3.connect(path)
    try:
        [(at,)] = conn.execute("SELECT applied_at FROM schema_migrations WHERE migration_set = 'teams' "
                               "AND name = 'backfill'").fetchall()
        assert at is not None
    finally:
        conn.close()


def test_the_keeper_giving_an_officer_a_team_fills_only_their_recordings_without_one(tmp_path):
    path = tmp_path / "catalog.db"
    old_catalog(path)
    catalog = Catalog(path)
    try:
        with catalog.transaction():
            assert teams.adopt_recordings(catalog, "J. Jansen", "West") == 1
            assert teams.adopt_recordings(catalog, "2002", "West") == 1   # the Axis UserID of "A. Bos (2002)"
            assert teams.adopt_recordings(catalog, "hh", "West") == 0     # has teams already: not moved
            assert teams.adopt_recordings(catalog, "kees", None) == 0
        got = {r["id"]: r["team"] for r in catalog.db.query("SELECT id, team FROM recordings")}
        assert got["stranger"] == "West" and got["axis-other"] == "West"
        assert got["own"] == "Noord" and got["kept"] == "Oost" and got["teamless"] is None
    finally:
        catalog.close()


def test_with_team_keeps_a_team_the_fields_name_even_an_empty_one(tmp_path):
    """A redacted copy keeps its original's team, also none (an unknown officer's), and the Axis path's own
    lookup is not repeated; fields without a team get their officer's."""
    catalog = Catalog(tmp_path / "catalog.db")
    try:
        catalog.add_user("jansen", "officer", {"sealed": None}, "2026-12-07T10:00:00Z", team="Noord")
        assert teams.with_team(catalog, {"officer": "jansen"})["team"] == "Noord"
        assert teams.with_team(catalog, {"officer": "jansen", "team": None})["team"] is None
        assert teams.with_team(catalog, {"officer": "jansen", "team": "Zuid"})["team"] == "Zuid"
    finally:
        catalog.close()
