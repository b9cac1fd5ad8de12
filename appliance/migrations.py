"""Named migration sets: the schema of a Kluis database moves forward in ordered, named steps, each set
owned by the feature whose tables it makes (sqlite-utils' `migrations.py` is the model).

Which steps have run is kept in the table `schema_migrations` (set, step, when), so a step runs once
whatever order releases added sets in. `PRAGMA user_version` is kept equal to the number of steps
applied: it is the schema version the update bundles, backups and `kluis status` speak of, and an older
Kluis (which counted its single list with it) refuses a database a newer one has moved on.

A database made before the bookkeeping existed is adopted: `adopt` says which steps it already has."""

from __future__ import annotations

import sqlite3
from typing import Callable, Iterator, Sequence

from .database import sqlite_utils, transaction
from .errors import KluisError

TABLE = "schema_migrations"
Step = tuple[str, str]  # (migration set, step)


class Migrations:
    """One feature's steps, in the order they run: (name, SQL). Append; never edit a step that has shipped."""

    def __init__(self, name: str, steps: Sequence[tuple[str, str]]):
        names = [step for step, _ in steps]
        if len(set(names)) != len(names):
            raise ValueError(f"migration set {name!r} names a step twice")
        self.name = name
        self.steps = tuple(steps)

    def __repr__(self) -> str:
        return f"Migrations({self.name!r}, {[step for step, _ in self.steps]})"


def steps_of(sets: Sequence[Migrations]) -> list[Step]:
    """Every step of these sets, in the order a new database runs them."""
    names = [m.name for m in sets]
    if len(set(names)) != len(names):
        raise ValueError("two migration sets have the same name")
    return [(m.name, step) for m in sets for step, _ in m.steps]


def statements(sql: str) -> Iterator[str]:
    """The SQL statements of a script, one at a time (a trigger's body is part of its statement)."""
    buf = ""
    for line in sql.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            yield buf
            buf = ""
    if buf.strip():
        yield buf


def applied(db: sqlite_utils.Database) -> set[Step]:
    if not _has_bookkeeping(db):
        return set()
    return {(row[0], row[1]) for row in db.execute(f"SELECT migration_set, name FROM {TABLE}")}


def migrate(db: sqlite_utils.Database, sets: Sequence[Migrations], *, what: str,
            adopt: Callable[[sqlite_utils.Database], list[Step]] | None = None) -> int:
    """Run the steps not yet applied, each in its own transaction; returns the schema version now in force
    (the number of steps). `what` names the database in errors; `adopt` lists the steps a database made
    before this bookkeeping already has."""
    known = steps_of(sets)
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version > len(known):
        raise KluisError(f"{what} schema version {version} is newer than this Kluis ({len(known)}): upgrade Kluis")
    if not _has_bookkeeping(db):
        with transaction(db):
            if not _has_bookkeeping(db):  # (another process may have adopted it while this one waited)
                had = adopt(db) if adopt is not None else []
                db.execute(f"CREATE TABLE {TABLE} (migration_set TEXT NOT NULL, name TEXT NOT NULL, "
                           "applied_at TEXT, PRIMARY KEY (migration_set, name))")  # applied_at NULL: adopted
                db.conn.executemany(f"INSERT INTO {TABLE} (migration_set, name) VALUES (?, ?)", had)
                db.execute(f"PRAGMA user_version={len(had)}")
    done = applied(db)
    unknown = sorted(done - set(known))
    if unknown:
        raise KluisError(f"{what} has migrations this Kluis does not know ({', '.join(map('.'.join, unknown))}), "
                         "so it is newer than this Kluis: upgrade Kluis")
    for migration_set in sets:
        for step, sql in migration_set.steps:
            if (migration_set.name, step) in done:
                continue
            with transaction(db):
                if (migration_set.name, step) in applied(db):  # run by another process meanwhile
                    done.add((migration_set.name, step))
                    continue
                for statement in statements(sql):
                    db.execute(statement)
                db.execute(f"INSERT INTO {TABLE} (migration_set, name, applied_at) "
                           "VALUES (?, ?, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))", [migration_set.name, step])
                done.add((migration_set.name, step))
                db.execute(f"PRAGMA user_version={len(done)}")
    return len(known)


def _has_bookkeeping(db: sqlite_utils.Database) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", [TABLE]).fetchone() is not None
