"""Catalogs made before named migration sets: `PRAGMA user_version` counted how many entries of one
numbered list had run. Each entry of that list maps here onto the named steps that now hold its SQL
(statement for statement), so a catalog of any earlier release is adopted with exactly the steps it has,
and the rest run. Frozen: releases with named sets never add to it."""

from __future__ import annotations

from ..database import sqlite_utils
from ..errors import KluisError
from ..migrations import Step

NUMBERED: tuple[tuple[str, tuple[Step, ...]], ...] = (
    ("vault", (("vault", "create"), ("users", "create"))),
    ("devices", (("devices", "create"), ("vault", "camera_end_time"))),
    ("webui", (("users", "lockout"), ("vault", "review"))),
    ("audit", (("audit", "create"),)),
    ("sync", (("sync", "create"),)),
    ("retention", (("retention", "create"), ("vault", "retention"))),
    ("webui_duration", (("vault", "duration"),)),
    ("webui_totp", (("users", "totp"),)),
    ("handover", (("handover", "create"),)),
    ("requests", (("requests", "create"),)),
    ("clock_synced", (("vault", "clock_synced"),)),
    ("redaction", (("vault", "derived_from"), ("redaction", "create"), ("jobs", "create"))),
    ("axis", (("axis", "create"),)),
    ("usb", (("usb", "create"),)),
)


def adopt(db: sqlite_utils.Database) -> list[Step]:
    """The steps a catalog without the bookkeeping has: those of the first `user_version` entries."""
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version > len(NUMBERED):
        raise KluisError(f"catalog schema version {version} is newer than this Kluis knows: upgrade Kluis")
    return [step for _, steps in NUMBERED[:version] for step in steps]
