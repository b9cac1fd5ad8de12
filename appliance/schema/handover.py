"""Handovers to police and prosecutor and their items. Owned by appliance/handover.py."""

from __future__ import annotations

from ..migrations import Migrations

MIGRATIONS = Migrations("handover", [
    (
        "create",
        """
        -- Handovers to police and prosecutor (appliance/handover.py): prepared by one person, approved by
        -- a second before any byte is produced (four eyes), or refused / cancelled.
        CREATE TABLE handovers (
            id TEXT PRIMARY KEY,           -- 'OV-2026-0001': short enough for a form and a phone call
            seq INTEGER NOT NULL UNIQUE,
            state TEXT NOT NULL,           -- prepared, approved, refused, cancelled
            receiver TEXT NOT NULL,        -- organisation, unit, name, official number
            basis TEXT NOT NULL,           -- vordering (with its article) or vrijwillige verstrekking
            case_ref TEXT NOT NULL,
            purpose TEXT NOT NULL,         -- appliance.purposes code
            protection TEXT NOT NULL,      -- age-recipient, passphrase, none
            age_recipient TEXT,            -- the receiver's age public key (age1...)
            prepared_by TEXT NOT NULL,
            prepared_at TEXT NOT NULL,
            approved_by TEXT,
            approved_at TEXT,
            single_approval INTEGER NOT NULL DEFAULT 0,  -- approved by the preparer ([handover] single_approval)
            refused_by TEXT,               -- who refused or cancelled it
            refused_at TEXT,
            refuse_reason TEXT,
            package_sha256 TEXT,           -- of the file written (encrypted, unless protection 'none')
            package_size INTEGER,
            manifest_sha256 TEXT
        );
        CREATE INDEX handovers_state ON handovers(state, prepared_at);
        CREATE TABLE handover_items (
            handover_id TEXT NOT NULL REFERENCES handovers(id),
            position INTEGER NOT NULL,
            recording_id TEXT NOT NULL,    -- no foreign key: the register outlives a deleted recording
            clip_from_s REAL,              -- NULL: the whole recording
            clip_to_s REAL,
            PRIMARY KEY (handover_id, position)
        );
        CREATE INDEX handover_items_recording ON handover_items(recording_id);
        """,
    ),
])
