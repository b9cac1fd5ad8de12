"""The log of redacted derivatives. Owned by appliance/redaction.py."""

from __future__ import annotations

from ..migrations import Migrations

MIGRATIONS = Migrations("redaction", [
    (
        "create",
        """
        CREATE TABLE redactions (
            recording_id TEXT PRIMARY KEY, -- the derivative; no foreign key: the log outlives a deletion
            original_id TEXT NOT NULL,
            created_by TEXT NOT NULL,
            created_at TEXT NOT NULL,
            purpose TEXT NOT NULL,         -- appliance.purposes code; the derivative is held for it
            case_ref TEXT NOT NULL,
            reason TEXT,                   -- why, in the operator's words
            request_id TEXT,               -- the request (register reference) it answers, if any
            detector TEXT,                 -- face detector used, NULL: none
            plan TEXT NOT NULL,            -- JSON: keep regions, operator boxes, muted ranges
            counts TEXT NOT NULL           -- JSON: frames, faces found and kept, seconds muted
        );
        CREATE INDEX redactions_original ON redactions(original_id, created_at);
        """,
    ),
])
