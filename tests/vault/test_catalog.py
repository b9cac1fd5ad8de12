"""The catalog's schema versioning (named migration sets, appliance/migrations.py) and the guarantees the
vault relies on (appliance/catalog.py)."""

from __future__ import annotations

import os
import sqlite3

import pytest

from appliance import catalog as catalog_mod
from appliance.catalog import SCHEMA_VERSION, Catalog
from appliance.migrations import Migrations, steps_of
from appliance.schema import BOX
from appliance.errors import KluisError


def user_version(path) -> int:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("PRAGMA user_version").fetchone()[0]
    finally:
        conn.close()


def test_fresh_file_gets_every_migration(tmp_path):
    path = tmp_path / "catalog.db"
    cat = Catalog(path)
    assert cat.version == SCHEMA_VERSION
    tables = {r[0] for r in cat.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"meta", "users", "recordings", "file_keys"} <= tables
    assert cat.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert cat.db.execute("PRAGMA secure_delete").fetchone()[0] == 1
    assert cat.db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    cat.close()
    assert user_version(path) == SCHEMA_VERSION
    # opening again runs nothing twice (a second CREATE TABLE would fail)
    again = Catalog(path)
    assert again.version == SCHEMA_VERSION
    again.close()


def test_migration_names_are_unique():
    steps = steps_of(BOX)
    assert len(steps) == len(set(steps)) == SCHEMA_VERSION


def test_only_missing_migrations_run(tmp_path, monkeypatch):
    """An existing catalog at version N gets exactly the migrations appended after N."""
    path = tmp_path / "catalog.db"
    Catalog(path).close()
    extra = Migrations("test_extra", [("create", "CREATE TABLE extra_thing (id INTEGER PRIMARY KEY);\n"
                                                 "INSERT INTO extra_thing VALUES (7);")])
    monkeypatch.setattr(catalog_mod, "BOX", (*BOX, extra))
    cat = Catalog(path)
    assert cat.version == SCHEMA_VERSION + 1
    assert cat.db.execute("SELECT id FROM extra_thing").fetchall() == [(7,)]
    cat.close()
    assert user_version(path) == SCHEMA_VERSION + 1


def test_failed_migration_leaves_the_version_unchanged(tmp_path, monkeypatch):
    path = tmp_path / "catalog.db"
    Catalog(path).close()
    broken = Migrations("test_broken", [("create", "CREATE TABLE half_done (id INTEGER);\nTHIS IS NOT SQL;")])
    monkeypatch.setattr(catalog_mod, "BOX", (*BOX, broken))
    with pytest.raises(sqlite3.Error):
        Catalog(path)
    assert user_version(path) == SCHEMA_VERSION
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'half_done'").fetchone() is None
    conn.close()


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "catalog.db"
    Catalog(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(KluisError, match="newer than this Kluis"):
        Catalog(path)
    assert user_version(path) == SCHEMA_VERSION + 1  # left as it was


def recording_row(rid: str, sha: str) -> dict:
    return {
        "id": rid, "camera_serial": "CAM1", "officer": "J. Jansen", "start_time": "2026-11-20T13:05:00.000Z",
        "end_time": "2026-11-20T13:07:00.000Z", "size": 10, "blob_size": 300, "sha256": sha,
        "stored_path": f"blobs/{sha[:2]}/{sha}", "chunk_size": 65536, "ingested_at": "2026-11-20T14:00:00.000Z",
        "source": "import",
    }


def test_recording_and_key_commit_together(tmp_path):
    cat = Catalog(tmp_path / "catalog.db")
    cat.add_recording(recording_row("r1", "a" * 64), b"header-1")
    assert cat.header_of("r1") == b"header-1"
    # same ciphertext hash again: the whole insert rolls back, no orphan key row
    with pytest.raises(sqlite3.IntegrityError):
        cat.add_recording(recording_row("r2", "a" * 64), b"header-2")
    assert cat.db.execute("SELECT COUNT(*) FROM file_keys").fetchone()[0] == 1
    assert [r["id"] for r in cat.list_recordings()] == ["r1"]
    cat.close()


def test_transaction_rolls_back_and_nests(tmp_path):
    cat = Catalog(tmp_path / "catalog.db")
    with pytest.raises(RuntimeError):
        with cat.transaction():
            cat.set_meta("a", "1")
            with cat.transaction():  # nested: part of the outer one
                cat.set_meta("b", "2")
            raise RuntimeError("boom")
    assert cat.get_meta("a") is None and cat.get_meta("b") is None
    with cat.transaction():
        cat.set_meta("a", "1")
    assert cat.get_meta("a") == "1"
    cat.close()


def test_deleted_key_is_gone_from_disk(tmp_path):
    """Crypto-shredding: with secure_delete on, a deleted header leaves no copy in the database file or
    the WAL once the WAL is checkpointed and truncated (docs/format.md)."""
    path = tmp_path / "catalog.db"
    cat = Catalog(path)
    secret = os.urandom(400)  # stands in for the sealed file keys
    cat.add_recording(recording_row("r1", "b" * 64), secret)
    cat.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert secret in path.read_bytes()
    with cat.transaction():
        cat.db.execute("DELETE FROM file_keys WHERE recording_id = 'r1'")
        cat.db.execute("DELETE FROM recordings WHERE id = 'r1'")
    cat.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for file in tmp_path.iterdir():
        data = file.read_bytes()
        assert secret[:32] not in data and secret[-32:] not in data, file
    cat.close()


def test_two_processes_opening_one_new_catalog_run_each_step_once(tmp_path):
    """Every step re-checks the bookkeeping inside its own write transaction: a second opener that waited
    for the lock finds the steps done and runs none of them again."""
    import multiprocessing

    path = tmp_path / "catalog.db"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_open_and_close, args=(str(path),)) for _ in range(4)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
    assert [proc.exitcode for proc in procs] == [0, 0, 0, 0]
    conn = sqlite3.connect(path)
    rows = conn.execute("SELECT migration_set, name FROM schema_migrations").fetchall()
    conn.close()
    assert sorted(rows) == sorted(steps_of(BOX)) and user_version(path) == SCHEMA_VERSION


def _open_and_close(path: str) -> None:
    from pathlib import Path

    Catalog(Path(path)).close()


def test_a_step_this_code_does_not_know_is_refused(tmp_path):
    """A newer Kluis recorded a step of a set this one lacks: refused, even at the same step count."""
    path = tmp_path / "catalog.db"
    Catalog(path).close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("DELETE FROM schema_migrations WHERE migration_set = 'usb'")
    conn.execute("INSERT INTO schema_migrations (migration_set, name) VALUES ('future_feature', 'create')")
    conn.close()
    with pytest.raises(KluisError, match="future_feature.create.*newer than this Kluis"):
        Catalog(path)
