"""A data directory made by release f82f3c0 (the last with one numbered list of migrations; made by
tests/backup/release/generate.py) opens with the current code: its catalog is adopted into the named
migration sets without running a step twice, its recordings and audit chain verify, and the archive's
database beside it migrates as well."""

from __future__ import annotations

import json
import sqlite3
import tarfile

import pytest

from appliance import audit, recordings, retention
from appliance.box import Box
from appliance.catalog import SCHEMA_VERSION, Catalog
from appliance.migrations import steps_of
from appliance.schema import BOX
from numbered_schema import NUMBERED, RELEASE, schema_of
from sync.archive.schema import ARCHIVE
from sync.archive.store import Archive, init_archive
from tests.conftest import PASSWORD, run_kluis

ARCHIVE_PASSWORD = "archive password for tests"
# Steps appended after the release (box and archive sets): a box or archive of the release runs its own when it
# opens (the rest it adopts).
ADDED_SINCE_RELEASE = {("alerts", "create"), ("audit", "page_indexes"), ("users", "person"), ("teams", "backfill"),
                       ("devices", "alerts_read"), ("audit", "entry_signatures"),
                       ("sync", "audit_witnesses"), ("archive", "witness"), ("devices", "episodes"),
                       ("vault", "places"), ("axis", "places_and_forget"), ("requests", "extension_and_place"),
                       ("statistics", "create"), ("axis", "received_sha256"), ("audit", "prunes"),
                       ("vault", "reason_details"), ("retention", "categories"), ("cases", "create")}



@pytest.fixture
def release(tmp_path):
    with tarfile.open(RELEASE / "f82f3c0.tar.xz") as tar:
        tar.extractall(tmp_path, filter="data")
    return tmp_path


def bookkeeping(path) -> list[tuple[str, str, str | None]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT migration_set, name, applied_at FROM schema_migrations").fetchall()
    finally:
        conn.close()


def test_the_release_catalog_is_at_the_last_numbered_version(release):
    conn = sqlite3.connect(release / "box" / "catalog.db")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(NUMBERED)
    assert conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'schema_migrations'").fetchone() is None
    conn.close()


def test_a_box_of_the_release_opens_migrates_and_verifies(release, tmp_path):
    with Box(release / "box") as box:
        assert box.catalog.version == SCHEMA_VERSION
        identity = box.unlock("admin", PASSWORD)
        assert len(box.catalog.list_recordings()) == 4  # three imported, one from the USB camera
        assert recordings.verify(box, identity) == []
        report = audit.verify(box.catalog, box.signing_key().verify_key)
        assert report.ok and report.count >= 30
        held = [r["id"] for r in box.catalog.list_recordings() if retention.active_holds(box.catalog, r["id"])]
        assert held
        db = box.catalog.db
        assert {u["name"] for u in box.catalog.list_users()} == {"admin", "fg", "tl"}
        assert db.execute("SELECT site FROM axis_accounts").fetchall() == [("Stadhuis",)]
        assert db.execute("SELECT state FROM usb_files").fetchall() == [("stored",)]
        assert {r[0] for r in db.execute("SELECT state FROM sync_outbox")} == {"sent"}
        assert db.execute("SELECT count(*) FROM handovers").fetchone()[0] == 1
        assert db.execute("SELECT count(*) FROM requests").fetchone()[0] == 1
        # what the code writes after the migration lands in the old tables, on the old chain
        audit.record(box.catalog, actor="admin", action="hold_review", recording_id=held[0])
        assert audit.verify(box.catalog, box.signing_key().verify_key).ok

    # Adopted, not run: every step of the release is recorded without a time; the steps added since ran
    # (they carry their time); and the schema is a new catalog's.
    rows = bookkeeping(release / "box" / "catalog.db")
    assert sorted((s, n) for s, n, _ in rows) == sorted(steps_of(BOX))
    assert {(s, n) for s, n, at in rows if at is not None} == ADDED_SINCE_RELEASE & set(steps_of(BOX))
    fresh = Catalog(tmp_path / "fresh.db")
    migrated = Catalog(release / "box" / "catalog.db")
    try:
        assert schema_of(migrated.db.conn) == schema_of(fresh.db.conn)
    finally:
        fresh.close()
        migrated.close()


def test_the_release_box_through_the_cli(release, password_file):
    """The real CLI on the release's data directory: it migrates, reports the new schema, verifies deep."""
    status = json.loads(run_kluis("status", "--json", "--data", release / "box").stdout)
    assert status["schema_version"] == SCHEMA_VERSION
    run_kluis("verify", "--data", release / "box", "--password-file", password_file)


def test_an_archive_of_the_release_opens_and_migrates(release, tmp_path):
    with Archive(release / "archive") as archive:
        stored = archive.list_recordings()
        assert len(stored) == 2
        identity = archive.unlock(ARCHIVE_PASSWORD)
        for row in stored:
            assert sum(len(block) for block in archive.decrypt(identity, row["sha256"])) > 0
        assert audit.verify(archive, archive.signing_key.verify_key).ok
        archive.audit("operator", "export", sha256=stored[0]["sha256"], purpose="complaint", case_ref="K-2026-1")
        assert audit.verify(archive, archive.signing_key.verify_key).ok
    rows = bookkeeping(release / "archive" / "archive.db")
    assert sorted((s, n) for s, n, _ in rows) == sorted(steps_of(ARCHIVE))
    assert {(s, n) for s, n, at in rows if at is not None} == ADDED_SINCE_RELEASE & set(steps_of(ARCHIVE))
    with Archive(release / "archive") as again:
        assert len(bookkeeping(release / "archive" / "archive.db")) == len(rows)  # nothing ran twice
        assert bookkeeping(release / "archive" / "archive.db") == rows  # nor was any step recorded again
        fresh, _ = init_archive(tmp_path / "fresh", ARCHIVE_PASSWORD, kdf_profile="interactive")
        with fresh:
            assert schema_of(again.db.conn) == schema_of(fresh.db.conn)


def test_the_release_recordings_get_their_officers_team(release):
    """teams.backfill on the release's catalog: its imports name the officer "J. Jansen", who was no Kluis
    user then; made one (with a team) before the upgrade, their recordings get that team, the USB
    camera's officer (no Kluis user) stays unknown."""
    conn = sqlite3.connect(release / "box" / "catalog.db")
    with conn:
        conn.execute("INSERT INTO users (name, role, team, slot, created_at) VALUES "
                     "('J. Jansen', 'officer', 'Centrum', '{}', '2026-11-20T14:00:00Z')")
    conn.close()
    with Box(release / "box") as box:
        teams = {(r["officer"], r["team"]) for r in box.catalog.list_recordings()}
    assert teams == {("J. Jansen", "Centrum"), ("P. de Boer", None)}
