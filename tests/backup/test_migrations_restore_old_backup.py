"""A backup made by an older Kluis (its catalog at an older schema version) restores with the current code:
the migrations run on the restored catalog and the box verifies, with its held footage readable."""

from __future__ import annotations

import sqlite3
from datetime import timedelta

from appliance import audit, backup, recordings, restore, retention
from appliance.box import Box
from appliance.catalog import SCHEMA_VERSION
from backup_helpers import T0, open_part, store
from numbered_schema import run_numbered
from tests.conftest import PASSWORD, plaintext

OLD = 6  # vault, devices, webui, audit, sync, retention: holds exist, TOTP and later tables do not


def as_older_schema(snapshot: bytes, version: int) -> bytes:
    """The same data in a catalog made by the first `version` numbered migrations (the columns that
    release had)."""
    src = sqlite3.connect(":memory:")
    src.deserialize(snapshot)
    dst = sqlite3.connect(":memory:", isolation_level=None)
    run_numbered(dst, version)
    tables = [r[0] for r in dst.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    for table in tables:
        have = {r[1] for r in src.execute(f"PRAGMA table_info({table})")}
        cols = [r[1] for r in dst.execute(f"PRAGMA table_info({table})") if r[1] in have]
        rows = src.execute(f"SELECT {', '.join(cols)} FROM {table}").fetchall()
        dst.executemany(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})", rows)
    return dst.serialize()


def test_a_backup_from_an_older_schema_restores_and_migrates(cbox, clock, tmp_path):
    held, plain = store(cbox, tmp_path, T0 - timedelta(hours=1), size=5000)
    retention.add_hold(cbox, held, "complaint", "K-9", "admin")
    made = backup.run(cbox, tmp_path / "usb")
    identity = cbox.unlock("admin", PASSWORD)

    # Rewrite the backup as the older Kluis would have made it: catalog at schema OLD, manifest re-signed
    # with the box's own key (which that Kluis had too).
    old = as_older_schema(open_part(made.path / backup.CATALOG_FILE, identity), OLD)
    entry = backup._write_sealed(cbox, old, made.path / backup.CATALOG_FILE, "catalog")
    manifest = {k: v for k, v in made.manifest.items() if k != "signature"}
    manifest["files"] = {**manifest["files"], backup.CATALOG_FILE: entry}
    manifest["schema_version"] = OLD
    signature = cbox.signing_key().sign(backup.canonical(manifest)).signature.hex()  # unlabelled, as then
    (made.path / backup.MANIFEST).write_bytes(backup.canonical({**manifest, "signature": signature}))
    assert backup.verify_backup(made.path, signer=manifest["signer"]).ok
    check = sqlite3.connect(":memory:")
    check.deserialize(open_part(made.path / backup.CATALOG_FILE, identity))
    assert check.execute("PRAGMA user_version").fetchone()[0] == OLD
    assert check.execute("SELECT 1 FROM sqlite_master WHERE name = 'audit_checkpoints'").fetchone() is not None
    assert "totp_secret" not in {r[1] for r in check.execute("PRAGMA table_info(users)")}

    new = tmp_path / "restored"
    result = restore.restore(tmp_path / "usb", new, password=PASSWORD, clock=clock)
    assert result.recordings == 1
    with Box(new, clock) as box:
        assert box.catalog.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert [r["id"] for r in box.catalog.list_recordings()] == [held]
        assert retention.active_holds(box.catalog, held)[0]["case_ref"] == "K-9"
        assert recordings.verify(box, box.unlock("admin", PASSWORD)) == []
        assert plaintext(box, box.unlock("admin", PASSWORD), held, 0, 5000) == plain
        assert audit.verify(box.catalog, box.signing_key().verify_key).ok
        assert audit.entries(box.catalog, action="restore")[0]["details"]["backup"] == made.name
