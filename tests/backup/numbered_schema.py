"""Catalogs as the releases before named migration sets made them: the numbered list of migrations as
release f82f3c0 shipped it (tests/backup/release/), run up to a given `PRAGMA user_version`."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from appliance.migrations import statements

RELEASE = Path(__file__).resolve().parent / "release"
NUMBERED: list[tuple[str, str]] = [
    (m["name"], m["sql"]) for m in json.loads((RELEASE / "f82f3c0-migrations.json").read_text())
]


def run_numbered(conn: sqlite3.Connection, version: int) -> None:
    """The first `version` numbered migrations on `conn` (autocommit), as that release ran them."""
    for _, sql in NUMBERED[:version]:
        conn.execute("BEGIN")
        for statement in statements(sql):
            conn.execute(statement)
        conn.execute("COMMIT")
    conn.execute(f"PRAGMA user_version={version}")


def schema_of(conn: sqlite3.Connection) -> dict[str, str]:
    """name -> SQL of every table, index and trigger, but the migration bookkeeping."""
    return {name: sql for name, sql in conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL AND name != 'schema_migrations'")}
