"""The catalog: one SQLite file (WAL) with what the box knows about recordings, users and keys.

Wrapped file keys (the container headers) live here, not in the blob store, so that deleting a row with
`secure_delete` on destroys the only copies of a recording's key: crypto-shredding.

The schema moves forward only, in the named migration sets of appliance/schema/ (one per feature, run
in the order of `schema.BOX`); every open runs the steps not yet applied (appliance/migrations.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, overload

from . import migrations
from .clock import Clock
from .database import connect, sqlite_utils, transaction
from .errors import KluisError, NotFound
from .schema import BOX, legacy

__all__ = ["Catalog", "RECORDING_COLUMNS", "SCHEMA_VERSION", "connect", "migrate", "transaction"]

RECORDING_COLUMNS = (
    "id", "camera_serial", "officer", "team", "start_time", "end_time", "camera_start_time",
    "clock_offset_s", "pre_record_s", "post_record_s", "size", "blob_size", "sha256", "stored_path",
    "chunk_size", "ingested_at", "state", "source", "source_ref",
    "clock_synced",  # NULL for recordings catalogued before this column existed
)


def migrate(db: sqlite_utils.Database) -> int:
    """Run the catalog's migrations not yet applied; returns the schema version now in force."""
    return migrations.migrate(db, BOX, what="catalog", adopt=legacy.adopt)


SCHEMA_VERSION = len(migrations.steps_of(BOX))  # what this code migrates a catalog to


class Catalog:
    clock: Clock | None = None  # the box's clock, given by Box: audit entries are stamped with it
    # What signs each audit entry (appliance.audit.record): a SigningKey, or a callable that loads one; given
    # by Box. None: entries are written unsigned, and the next checkpoint signs them.
    audit_key: Any = None

    def __init__(self, path: Path):
        self.path = path
        self.db = connect(path)
        self.version = migrate(self.db)

    def close(self) -> None:
        self.db.conn.close()

    def transaction(self) -> transaction:
        return transaction(self.db)

    # meta -------------------------------------------------------------------------------------------
    @overload
    def get_meta(self, key: str) -> str | None: ...
    @overload
    def get_meta(self, key: str, default: str) -> str: ...
    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
        return row[0] if row else default

    def required_meta(self, key: str) -> str:
        """A meta value every initialised catalog holds; KluisError when it is missing."""
        value = self.get_meta(key)
        if value is None:
            raise KluisError(f"the catalog at {self.path} lacks {key!r} (not initialised, or damaged)")
        return value

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", [key, value])

    # users ------------------------------------------------------------------------------------------
    def add_user(self, name: str, role: str, slot: dict, created_at: str, team: str | None = None,
                 full_name: str | None = None, function: str | None = None) -> None:
        if self.db.execute("SELECT 1 FROM users WHERE name = ?", [name]).fetchone():
            raise KluisError(f"user {name!r} exists already")
        self.db.table("users").insert(
            {"name": name, "role": role, "team": team, "slot": json.dumps(slot), "created_at": created_at,
             "full_name": full_name, "function": function}
        )

    def get_user(self, name: str) -> dict:
        rows = list(self.db.query("SELECT * FROM users WHERE name = ?", [name]))
        if not rows:
            raise NotFound(f"no user {name!r}")
        user = rows[0]
        user["slot"] = json.loads(user["slot"])
        return user

    def set_user_slot(self, name: str, slot: dict) -> None:
        self.db.execute("UPDATE users SET slot = ? WHERE name = ?", [json.dumps(slot), name])

    def list_users(self) -> list[dict]:
        return list(self.db.query("SELECT name, role, team, created_at, disabled FROM users ORDER BY name"))

    # recordings -------------------------------------------------------------------------------------
    def add_recording(self, row: dict[str, Any], header: bytes) -> None:
        """The row and its wrapped keys in one transaction: a recording is visible complete or not at all."""
        with self.transaction():
            self.db.table("recordings").insert(row)
            self.db.table("file_keys").insert({"recording_id": row["id"], "header": header})

    def get_recording(self, recording_id: str) -> dict:
        rows = list(self.db.query("SELECT * FROM recordings WHERE id = ?", [recording_id]))
        if not rows:
            raise NotFound(f"no recording {recording_id!r}")
        return rows[0]

    def header_of(self, recording_id: str) -> bytes:
        row = self.db.execute("SELECT header FROM file_keys WHERE recording_id = ?", [recording_id]).fetchone()
        if not row:
            raise NotFound(f"no key for recording {recording_id!r} (deleted?)")
        return row[0]

    def find_by_sha256(self, sha256: str) -> dict | None:
        rows = list(self.db.query("SELECT * FROM recordings WHERE sha256 = ?", [sha256]))
        return rows[0] if rows else None

    def find_by_fingerprint(self, fingerprint: str) -> dict | None:
        rows = list(self.db.query("SELECT * FROM recordings WHERE fingerprint = ?", [fingerprint]))
        return rows[0] if rows else None

    def list_recordings(self, limit: int | None = None, offset: int = 0) -> list[dict]:
        sql = f"SELECT {', '.join(RECORDING_COLUMNS)} FROM recordings ORDER BY start_time, id"
        params: list[Any] = []
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            params = [limit, offset]
        return list(self.db.query(sql, params))

    def stored_paths(self) -> set[str]:
        """Every blob something refers to: catalogued recordings, and Axis clips sealed while their
        recording is still being transferred (catalogued when it is Complete)."""
        rows = self.db.execute("SELECT stored_path FROM recordings UNION SELECT stored_path FROM axis_objects "
                               "WHERE stored_path IS NOT NULL")
        return {row[0] for row in rows}
