"""The box's side of the archive link: what waits to be sent, the receipts, the requisitions. Read and
changed by appliance/outbox.py and sync/client.py; the tables are the box's, so every box has them
whether or not it is enrolled."""

from __future__ import annotations

from ..migrations import Migrations

MIGRATIONS = Migrations("sync", [
    (
        "create",
        """
        CREATE TABLE sync_outbox (
            recording_id TEXT PRIMARY KEY,
            reason TEXT NOT NULL,          -- why it goes to the archive: 'hold:<purpose>', 'requisition:<id>'
            queued_at TEXT NOT NULL,
            state TEXT NOT NULL,           -- needs_rewrap, queued, sending, sent, failing
            header BLOB,                   -- re-wrapped header (sealed to the archive only) when the stored
                                           -- one does not name the archive; NULL: send the stored one
            sha256 TEXT,                   -- of the container as sent
            size INTEGER,                  -- container bytes as sent
            sent_bytes INTEGER NOT NULL DEFAULT 0,   -- committed at the archive
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            last_attempt_at TEXT,
            metadata_sent TEXT             -- sha256 of the metadata the archive has (holds, case refs)
        );
        CREATE INDEX sync_outbox_state ON sync_outbox(state);
        CREATE TABLE sync_receipts (
            recording_id TEXT PRIMARY KEY,
            archive TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            size INTEGER NOT NULL,
            received_at TEXT NOT NULL,     -- the archive's time
            receipt TEXT NOT NULL,         -- JSON, signed by the archive (verified before stored)
            stored_at TEXT NOT NULL
        );
        CREATE TABLE sync_requisitions (
            id INTEGER PRIMARY KEY,        -- the archive's requisition id
            fetched_at TEXT NOT NULL,
            details TEXT NOT NULL,         -- JSON as the archive sent it
            matched TEXT NOT NULL,         -- JSON list of recording ids
            reported_at TEXT
        );
        """,
    ),
    (
        # The archive's signed witness of an audit checkpoint (appliance/witness.py, its owner): an anchor of
        # the log that the box's own key cannot re-sign.
        "audit_witnesses",
        """
        CREATE TABLE audit_witnesses (
            id INTEGER PRIMARY KEY,
            archive TEXT NOT NULL,         -- the archive's id
            count INTEGER NOT NULL,        -- entries the witnessed checkpoint covers
            head TEXT NOT NULL,            -- hash of entry `count`
            checkpoint_time TEXT NOT NULL, -- the box's time in the checkpoint
            witnessed_at TEXT NOT NULL,    -- the archive's time
            statement TEXT NOT NULL,       -- JSON, signed by the archive (verified before stored)
            stored_at TEXT NOT NULL
        );
        CREATE INDEX audit_witnesses_time ON audit_witnesses(witnessed_at);
        """,
    ),
])
