"""Opening an SQLite file the way Kluis keeps its databases (the box's catalog, the archive's database):
WAL, every commit durable, deleted rows overwritten; `transaction`, the one way to write several rows
at once; and `Where`, a query's conditions collected from optional filters."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path
from typing import TYPE_CHECKING


def _import_sqlite_utils():
    """sqlite-utils imports numpy and pandas when they are installed, only to map their types in
    `create()`; Kluis makes its tables with SQL (appliance/schema/). numpy (installed for redaction) would cost every
    command ~60 ms and ~15 MB, so sqlite-utils is imported with both hidden; later imports of numpy work."""
    hidden = [name for name in ("numpy", "pandas") if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # makes `import name` raise ImportError
    try:
        import sqlite_utils
    finally:
        for name in hidden:
            del sys.modules[name]
    return sqlite_utils


if TYPE_CHECKING:
    import sqlite_utils  # the checker reads the module's types; at run time it is imported as above
else:
    sqlite_utils = _import_sqlite_utils()


def connect(path: Path) -> sqlite_utils.Database:
    conn = sqlite3.connect(str(path), timeout=30, isolation_level=None, check_same_thread=False)
    db = sqlite_utils.Database(conn, execute_plugins=False)  # no third-party code hooks into a database
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")  # a committed row survives power loss
    db.execute("PRAGMA secure_delete=ON")  # deleted rows are overwritten: needed for crypto-shredding
    db.execute("PRAGMA foreign_keys=ON")
    return db


class Where:
    """The conditions of a query's WHERE clause and their parameters, collected one at a time."""

    def __init__(self, *conditions: str, params: list | None = None):
        self.conditions = list(conditions)
        self.params: list = list(params or [])

    def add(self, condition: str, *params) -> None:
        self.conditions.append(condition)
        self.params.extend(params)

    def when(self, value, condition: str) -> None:
        """condition with value as its parameter, if a value is given (a filter the caller may leave out)."""
        if value:
            self.add(condition, value)

    def sql(self) -> str:
        """" WHERE a AND b ...", or "" without conditions."""
        return " WHERE " + " AND ".join(self.conditions) if self.conditions else ""


class transaction:
    """BEGIN IMMEDIATE ... COMMIT (or ROLLBACK on error); nests by doing nothing inside another."""

    def __init__(self, db: sqlite_utils.Database):
        self.conn = db.conn
        self.outer = False

    def __enter__(self):
        if not self.conn.in_transaction:
            self.conn.execute("BEGIN IMMEDIATE")
            self.outer = True
        return self

    def __exit__(self, exc_type, exc, tb):
        if self.outer:
            self.conn.execute("ROLLBACK" if exc_type else "COMMIT")
        return False
