"""The archive's database schema: its own tables, and the audit log's (appliance.schema.audit: the
archive keeps its log with appliance/audit.py, in the same table shapes as a box), run in this order.

Shipped steps are never edited: a change is a new step at the end of a set."""

from __future__ import annotations

from appliance.database import sqlite_utils
from appliance.migrations import Migrations, Step, steps_of
from appliance.schema import audit

TABLES = Migrations("archive", [
    (
        "create",
        """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE tokens (
    hash TEXT PRIMARY KEY,          -- sha256 of the token's secret: the token itself is never stored
    created_at TEXT NOT NULL,
    used_at TEXT,
    box_id TEXT
);
CREATE TABLE boxes (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    signing_key TEXT NOT NULL,      -- Ed25519, hex: verifies the box's requests and checkpoints
    public_key TEXT NOT NULL,       -- X25519, hex
    enrolled_at TEXT NOT NULL,
    last_seen TEXT
);
CREATE TABLE nonces (
    box_id TEXT NOT NULL,
    nonce TEXT NOT NULL,
    seen_at TEXT NOT NULL,
    PRIMARY KEY (box_id, nonce)
);
CREATE INDEX nonces_seen ON nonces(seen_at);
CREATE TABLE uploads (
    box_id TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    recording_id TEXT NOT NULL,
    size INTEGER NOT NULL,
    metadata TEXT NOT NULL,
    started_at TEXT NOT NULL,
    PRIMARY KEY (box_id, sha256)
);
CREATE TABLE recordings (
    sha256 TEXT PRIMARY KEY,        -- of the whole container, as on the box
    box_id TEXT NOT NULL,
    recording_id TEXT NOT NULL,     -- the box's id for it
    size INTEGER NOT NULL,          -- container bytes
    header_size INTEGER NOT NULL,
    camera_serial TEXT,
    officer TEXT,
    start_time TEXT,
    end_time TEXT,
    case_refs TEXT NOT NULL DEFAULT '',   -- space-separated, for search
    metadata TEXT NOT NULL,         -- JSON the box sent (holds, times, ...), updated as holds change
    received_at TEXT NOT NULL,
    receipt TEXT NOT NULL,          -- JSON, signed
    stored_path TEXT NOT NULL
);
CREATE INDEX recordings_box ON recordings(box_id, start_time);
CREATE INDEX recordings_time ON recordings(start_time);
CREATE TABLE requisitions (
    id INTEGER PRIMARY KEY,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL,
    camera_serial TEXT,
    officer TEXT,
    start_time TEXT,
    end_time TEXT,
    recording_id TEXT,
    legal_basis TEXT NOT NULL,
    case_ref TEXT NOT NULL,
    closed_at TEXT
);
CREATE TABLE requisition_reports (
    requisition_id INTEGER NOT NULL REFERENCES requisitions(id),
    box_id TEXT NOT NULL,
    reported_at TEXT NOT NULL,
    matched TEXT NOT NULL,          -- JSON list of the box's recording ids ([] = nothing matched)
    PRIMARY KEY (requisition_id, box_id)
);
CREATE TABLE checkpoints (
    id INTEGER PRIMARY KEY,
    box_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    head TEXT NOT NULL,
    signed TEXT NOT NULL,
    received_at TEXT NOT NULL
);
CREATE INDEX checkpoints_box ON checkpoints(box_id, seq);
CREATE TABLE alerts (
    id INTEGER PRIMARY KEY,
    box_id TEXT,
    kind TEXT NOT NULL,
    details TEXT NOT NULL,
    created_at TEXT NOT NULL
);
""",
    ),
    (
        # The archive's counter-signature of each checkpoint it witnessed (checkpoints.py): NULL for one it
        # kept as evidence but refused to witness (it contradicted one witnessed before).
        "witness",
        """
ALTER TABLE checkpoints ADD COLUMN witness TEXT;
CREATE INDEX checkpoints_witnessed ON checkpoints(box_id, id) WHERE witness IS NOT NULL;
""",
    ),
])

ARCHIVE = (TABLES, audit.MIGRATIONS)


# Steps appended after the bookkeeping came: an archive made before it has not run them yet.
SINCE_BOOKKEEPING = {("audit", "page_indexes"), ("audit", "entry_signatures"), ("archive", "witness"),
                     ("audit", "prunes")}


def adopt(db: sqlite_utils.Database) -> list[Step]:
    """An archive made before this bookkeeping has every step of its first release (it made its tables
    in one go at init), not those appended since; an empty file has none."""
    made = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone()
    return [step for step in steps_of(ARCHIVE) if step not in SINCE_BOOKKEEPING] if made else []
