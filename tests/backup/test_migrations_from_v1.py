"""Migrations up from the first schema version: a catalog made by the first numbered migrations of the
releases before named sets, holding data, opens with the current code; every later step runs, the data
survives, and the schema is the one a new catalog gets."""

from __future__ import annotations

import json
import sqlite3

import pytest

from appliance import audit
from appliance.catalog import SCHEMA_VERSION, Catalog
from numbered_schema import NUMBERED, run_numbered, schema_of


def build_old_catalog(path, version: int) -> None:
    """A catalog as Kluis at schema `version` left it, with a user, a recording and its key."""
    conn = sqlite3.connect(path, isolation_level=None)
    run_numbered(conn, version)
    conn.execute("INSERT INTO meta (key, value) VALUES ('box_public_key', ?)", ["ab" * 32])
    conn.execute("INSERT INTO users (name, role, slot, created_at) VALUES ('admin', 'keeper', ?, '2026-01-01T00:00:00.000Z')",
                 [json.dumps({"kdf": "argon2id", "salt": "00"})])
    conn.execute(
        "INSERT INTO recordings (id, camera_serial, officer, team, start_time, end_time, size, blob_size, sha256, "
        "stored_path, chunk_size, ingested_at, source) VALUES ('rec1', 'CAM001', 'J. Jansen', 'Noord', "
        "'2026-01-01T10:00:00.000Z', '2026-01-01T10:01:00.000Z', 3000, 3400, ?, 'blobs/cd/x', 65536, "
        "'2026-01-01T12:00:00.000Z', 'import')", ["cd" * 32])
    conn.execute("INSERT INTO file_keys (recording_id, header) VALUES ('rec1', ?)", [b"KLUISv1\n" + bytes(range(200))])
    conn.close()


@pytest.mark.parametrize("version", range(1, len(NUMBERED) + 1))
def test_every_older_schema_migrates_to_the_current_one(tmp_path, version):
    path = tmp_path / "catalog.db"
    build_old_catalog(path, version)
    opened = Catalog(path)
    try:
        assert opened.version == SCHEMA_VERSION
        assert opened.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert schema_of(opened.db.conn) == fresh_schema(tmp_path)
        row = opened.get_recording("rec1")
        assert (row["camera_serial"], row["officer"], row["size"], row["sha256"]) == ("CAM001", "J. Jansen", 3000, "cd" * 32)
        assert opened.header_of("rec1") == b"KLUISv1\n" + bytes(range(200))
        assert opened.get_meta("box_public_key") == "ab" * 32
        user = opened.get_user("admin")
        assert user["slot"] == {"kdf": "argon2id", "salt": "00"} and user["failed_logins"] == 0
        # what later migrations added works on the old data: holds, the audit chain
        opened.db.execute("INSERT INTO holds (recording_id, purpose, case_ref, placed_by, placed_at) "
                          "VALUES ('rec1', 'complaint', 'K-1', 'admin', '2026-01-02T00:00:00.000Z')")
        audit.record(opened, actor="admin", action="hold_add", recording_id="rec1")
        assert audit.head(opened)[0] >= 1
    finally:
        opened.close()
    # Opening again runs nothing more.
    reopened = Catalog(path)
    assert reopened.version == SCHEMA_VERSION
    reopened.close()


def fresh_schema(tmp_path) -> dict[str, str]:
    new = Catalog(tmp_path / "fresh.db")
    try:
        return schema_of(new.db.conn)
    finally:
        new.close()


def test_the_first_version_is_version_one(tmp_path):
    path = tmp_path / "catalog.db"
    build_old_catalog(path, 1)
    conn = sqlite3.connect(path)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    conn.close()
    assert {"meta", "users", "recordings", "file_keys"} <= tables and "audit_log" not in tables and "holds" not in tables


def test_a_catalog_newer_than_the_code_is_refused(tmp_path):
    path = tmp_path / "catalog.db"
    build_old_catalog(path, len(NUMBERED))
    sqlite3.connect(path, isolation_level=None).execute(f"PRAGMA user_version={len(NUMBERED) + 1}")
    from appliance.errors import KluisError

    with pytest.raises(KluisError, match="newer than this Kluis"):
        Catalog(path)
