"""Holds and the deletion report (verwijderverslag). Owned by appliance/retention.py."""

from __future__ import annotations

from ..migrations import Migrations

MIGRATIONS = Migrations("retention", [
    (
        "create",
        """
        CREATE TABLE holds (
            id INTEGER PRIMARY KEY,
            recording_id TEXT NOT NULL,
            purpose TEXT NOT NULL,         -- appliance.purposes code
            case_ref TEXT NOT NULL,
            placed_by TEXT NOT NULL,
            placed_at TEXT NOT NULL,
            review_at TEXT,                -- comes up for review then
            until TEXT,                    -- ends by itself then (an end date), or NULL
            released_at TEXT,              -- NULL: active
            released_by TEXT,
            release_reason TEXT
        );
        CREATE INDEX holds_recording ON holds(recording_id, released_at);
        CREATE INDEX holds_active ON holds(released_at, review_at);
        -- What survives a deleted recording (verwijderverslag): no personal data, no officer or camera.
        CREATE TABLE deletions (
            recording_id TEXT PRIMARY KEY,
            sha256 TEXT NOT NULL,
            start_time TEXT NOT NULL,
            end_time TEXT NOT NULL,
            ingested_at TEXT NOT NULL,
            size INTEGER,
            category TEXT,
            term_days INTEGER NOT NULL,
            policy TEXT NOT NULL,          -- JSON: the retention policy in force
            reason TEXT NOT NULL,
            deleted_at TEXT NOT NULL,      -- when the file keys were destroyed
            blob_removed_at TEXT           -- NULL while an interrupted sweep still has to remove the blob
        );
        CREATE INDEX deletions_at ON deletions(deleted_at);
        """,
    ),    (
        "categories",
        """
        -- A recording's retention categories ([retention.categories]), several at once: the longest term
        -- of them wins (appliance/retention.py term_days). recordings.category held one; it is copied here
        -- and kept as the sorted, comma-joined list of these for reading (set_category writes both).
        CREATE TABLE recording_categories (
            recording_id TEXT NOT NULL,
            category TEXT NOT NULL,
            source TEXT NOT NULL,          -- 'axis' (a bookmark), 'usb' (the camera profile), 'web', 'cli', 'migrated'
            set_by TEXT NOT NULL,
            set_at TEXT NOT NULL,
            PRIMARY KEY (recording_id, category)
        ) WITHOUT ROWID;
        INSERT INTO recording_categories (recording_id, category, source, set_by, set_at)
            SELECT id, category, 'migrated', 'system', ingested_at FROM recordings WHERE category IS NOT NULL;
        """,
    ),
])
