"""The catalog: one SQLite file (WAL) with what the box knows about recordings, users and keys.

Wrapped file keys (the container headers) live here, not in the blob store, so that deleting a row with
`secure_delete` on destroys the only copies of a recording's key: crypto-shredding.

The schema moves forward only: MIGRATIONS is an ordered list, `PRAGMA user_version` says how many have
run, and every open runs the ones not yet applied. Append; never edit a migration that has shipped.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path
from typing import Any, Iterable

from .errors import KluisError, NotFound


def _import_sqlite_utils():
    """sqlite-utils imports numpy and pandas when they are installed, only to map their types in
    `create()`; Kluis makes its tables with the SQL below. numpy (installed for redaction) would cost every
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


sqlite_utils = _import_sqlite_utils()

MIGRATIONS: list[tuple[str, str]] = [
    (
        "vault",
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE users (
            name TEXT PRIMARY KEY,
            role TEXT NOT NULL,
            team TEXT,
            slot TEXT NOT NULL,            -- JSON key slot (keys.new_slot)
            created_at TEXT NOT NULL,
            disabled INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE recordings (
            id TEXT PRIMARY KEY,
            camera_serial TEXT NOT NULL,
            officer TEXT,
            team TEXT,
            start_time TEXT NOT NULL,      -- UTC ISO 8601, on the box's clock (corrected)
            end_time TEXT NOT NULL,
            camera_start_time TEXT,        -- UTC ISO 8601 as the camera's clock said
            clock_offset_s REAL,           -- box clock minus camera clock, measured at dock
            pre_record_s INTEGER,
            post_record_s INTEGER,
            size INTEGER NOT NULL,         -- plaintext bytes
            blob_size INTEGER NOT NULL,    -- container bytes, header included
            sha256 TEXT NOT NULL UNIQUE,   -- of the whole container: the recording's ciphertext identity
            stored_path TEXT NOT NULL,     -- payload blob, relative to the data dir
            chunk_size INTEGER NOT NULL,
            ingested_at TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT 'stored',
            source TEXT NOT NULL,          -- 'import' or 'dock'
            source_ref TEXT,               -- file name, or the camera's own recording id
            fingerprint TEXT               -- keyed sample fingerprint, to notice a file imported twice
        );
        CREATE INDEX recordings_start ON recordings(start_time);
        CREATE INDEX recordings_camera ON recordings(camera_serial, start_time);
        CREATE INDEX recordings_fingerprint ON recordings(fingerprint);
        CREATE TABLE file_keys (
            recording_id TEXT PRIMARY KEY REFERENCES recordings(id),
            header BLOB NOT NULL           -- container header: the sealed file keys
        );
        """,
    ),
    (
        "devices",
        """
        CREATE TABLE devices (
            serial TEXT PRIMARY KEY,
            service_name TEXT,             -- mDNS instance name
            address TEXT,                  -- last address seen (mDNS or probe)
            port INTEGER,
            model TEXT,
            firmware TEXT,
            proto TEXT,
            txt TEXT,                      -- JSON: the TXT properties as last advertised
            advertised_fp TEXT,            -- key fingerprint the device advertises
            public_key TEXT,               -- hex Ed25519 key stored at pairing
            fingerprint TEXT,              -- fingerprint of that key
            paired INTEGER NOT NULL DEFAULT 0,
            paired_at TEXT,
            paired_by TEXT,
            online INTEGER NOT NULL DEFAULT 0,
            first_seen TEXT,
            last_seen TEXT,
            clock_offset_s REAL,           -- box clock minus camera clock, at the last dock
            clock_measured_at TEXT,
            mode TEXT NOT NULL DEFAULT 'personal',   -- 'personal' (one officer) or 'pooled' (per shift)
            officer TEXT,                  -- a personal camera's officer
            pre_record_s INTEGER,
            post_record_s INTEGER,
            settings_version INTEGER NOT NULL DEFAULT 0,
            status TEXT,                   -- what the box last did or saw: 'idle', 'offloading', an error
            status_at TEXT
        );
        CREATE TABLE camera_assignments (
            id INTEGER PRIMARY KEY,
            serial TEXT NOT NULL,
            officer TEXT NOT NULL,
            starts_at TEXT NOT NULL,       -- UTC ISO 8601 (box clock)
            ends_at TEXT,                  -- NULL: open-ended
            created_by TEXT,
            created_at TEXT
        );
        CREATE INDEX camera_assignments_serial ON camera_assignments(serial, starts_at);
        CREATE TABLE docks (
            id INTEGER PRIMARY KEY,
            serial TEXT NOT NULL,
            docked_at TEXT NOT NULL,       -- box clock
            camera_time TEXT,              -- camera clock at the same moment
            clock_offset_s REAL,
            address TEXT
        );
        CREATE TABLE device_alerts (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            serial TEXT,
            address TEXT,
            kind TEXT NOT NULL,            -- pair_refused, key_mismatch, spoofed_serial, bad_manifest, ...
            message TEXT NOT NULL
        );
        CREATE INDEX device_alerts_at ON device_alerts(at);
        ALTER TABLE recordings ADD COLUMN camera_end_time TEXT;
        CREATE INDEX recordings_source ON recordings(camera_serial, source_ref);
        """,
    ),
    (
        "webui",
        """
        ALTER TABLE users ADD COLUMN failed_logins INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE users ADD COLUMN locked_until TEXT;   -- lock-out after repeated wrong passwords
        ALTER TABLE recordings ADD COLUMN reason TEXT;    -- why the officer started recording (after the shift)
        ALTER TABLE recordings ADD COLUMN warning_given INTEGER;
        -- filters and sorts of the web UI stay fast at 100 000 recordings
        CREATE INDEX recordings_officer ON recordings(officer, start_time);
        CREATE INDEX recordings_team ON recordings(team, start_time);
        CREATE INDEX recordings_state ON recordings(state, start_time);
        """,
    ),
    (
        "audit",
        """
        CREATE TABLE audit_log (
            seq INTEGER PRIMARY KEY,       -- 1, 2, 3, ... without gaps
            time TEXT NOT NULL,
            actor TEXT NOT NULL,           -- user name, 'system' for unattended work
            action TEXT NOT NULL,
            recording_id TEXT,
            purpose TEXT,                  -- appliance.purposes code where one applies
            case_ref TEXT,
            client TEXT,                   -- address of the client (web UI), 'cli' or NULL
            details TEXT,                  -- canonical JSON or NULL
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL
        );
        CREATE INDEX audit_log_recording ON audit_log(recording_id, seq);
        CREATE INDEX audit_log_time ON audit_log(time);
        -- Append-only: these stop mistakes, not an attacker with the file; the hash chain and the signed
        -- checkpoints are what detect that.
        CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
        CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
        CREATE TABLE audit_checkpoints (
            id INTEGER PRIMARY KEY,
            count INTEGER NOT NULL,        -- entries covered: seq 1..count
            head TEXT NOT NULL,            -- hash of entry `count` (GENESIS for an empty log)
            time TEXT NOT NULL,
            signer TEXT NOT NULL,          -- hex Ed25519 public key of the box
            signature TEXT NOT NULL        -- hex, over canonical(body)
        );
        """,
    ),
    (
        "sync",
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
        "retention",
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
        ALTER TABLE recordings ADD COLUMN category TEXT;     -- retention category ([retention.categories])
        ALTER TABLE recordings ADD COLUMN keep_until TEXT;   -- not deleted before (a policy change under hold)
        CREATE INDEX recordings_expiry ON recordings(state, end_time);
        """,
    ),
    (
        "webui_duration",
        """
        -- the longest recording bounds a time-range search: start_time >= from - longest (an index range)
        CREATE INDEX recordings_duration ON recordings((julianday(end_time) - julianday(start_time)));
        """,
    ),
    (
        "webui_totp",
        """
        ALTER TABLE users ADD COLUMN totp_secret TEXT;      -- base32 TOTP secret (RFC 6238); NULL: no second factor
        ALTER TABLE users ADD COLUMN totp_last_step INTEGER; -- the last time step used, so a code works once
        """,
    ),
    (
        "handover",
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
    (
        "requests",
        """
        -- Access requests, objections and complaints of people who were filmed (issue 8: appliance/access_requests.py)
        CREATE TABLE requests (
            id INTEGER PRIMARY KEY,
            ref TEXT NOT NULL UNIQUE,      -- e.g. VZ-2026-0001: the case reference on the request's holds
            kind TEXT NOT NULL,            -- an appliance.purposes code: access_request, objection, complaint
            requester TEXT NOT NULL,
            contact TEXT,
            received_on TEXT NOT NULL,     -- local date YYYY-MM-DD the request came in
            deadline TEXT NOT NULL,        -- local date YYYY-MM-DD the answer is due
            given_time TEXT NOT NULL,      -- UTC ISO 8601: the moment the requester named
            place TEXT,                    -- as the requester described it (recordings carry no location)
            camera_serial TEXT,            -- narrowing the search, if the requester could say
            officer TEXT,
            window_minutes INTEGER NOT NULL,
            notes TEXT,
            status TEXT NOT NULL DEFAULT 'open',   -- open, closed
            outcome TEXT,                  -- answered, upheld, rejected, withdrawn
            decision_ref TEXT,
            registered_by TEXT NOT NULL,
            registered_at TEXT NOT NULL,
            closed_by TEXT,
            closed_at TEXT
        );
        CREATE INDEX requests_status ON requests(status, deadline);
        CREATE TABLE request_recordings (
            request_id INTEGER NOT NULL REFERENCES requests(id),
            recording_id TEXT NOT NULL,    -- no foreign key: the link outlives a deleted recording
            how TEXT NOT NULL,             -- 'search' or 'manual'
            linked_by TEXT NOT NULL,
            linked_at TEXT NOT NULL,
            unlinked_by TEXT,
            unlinked_at TEXT,              -- NULL: linked
            result TEXT,                   -- at closing: released, deleted, blocked
            result_detail TEXT,            -- JSON: the holds that blocked an early deletion
            PRIMARY KEY (request_id, recording_id)
        );
        CREATE INDEX request_recordings_recording ON request_recordings(recording_id);
        """,
    ),
    (
        "clock_synced",
        """
        -- issue 9: was the box's clock synchronised (appliance/timesync.py) when the recording was catalogued?
        -- 1 yes; 0 no, or nobody could tell (its timestamps are not vouched for); NULL: catalogued before
        -- Kluis recorded this.
        ALTER TABLE recordings ADD COLUMN clock_synced INTEGER;
        """,
    ),
    (
        "redaction",
        """
        -- issue 8: redacted derivatives (appliance/redaction.py) and background jobs (appliance/jobs.py)
        ALTER TABLE recordings ADD COLUMN derived_from TEXT;   -- the original of a redacted derivative
        CREATE INDEX recordings_derived_from ON recordings(derived_from);
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
        CREATE TABLE jobs (
            id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,            -- 'redact'
            state TEXT NOT NULL,           -- queued, running, done, failed
            created_by TEXT NOT NULL,
            created_at TEXT NOT NULL,
            started_at TEXT,
            finished_at TEXT,
            recording_id TEXT,             -- what the job works on
            params TEXT,                   -- JSON, no secrets
            done INTEGER NOT NULL DEFAULT 0,   -- progress: units done of total (frames)
            total INTEGER NOT NULL DEFAULT 0,
            result TEXT,                   -- JSON, e.g. {"recording_id": derivative}
            error TEXT,
            pid INTEGER                    -- process that runs it: a job of a process that died is failed
        );
        CREATE INDEX jobs_state ON jobs(state, created_at);
        """,
    ),
    (
        "axis",
        """
        -- issue 15: Axis W800 system controllers delivering as to a content destination (appliance/axis/)
        CREATE TABLE axis_accounts (
            name TEXT PRIMARY KEY,         -- BlobAPIUserName and the account in the storage URL (AUTH_<name>)
            site TEXT NOT NULL,            -- SiteName of the connection file
            key_hash TEXT NOT NULL,        -- SHA-256 of BlobAPIKey (256 random bits, shown once)
            encrypt INTEGER NOT NULL DEFAULT 0,  -- WantEncryption: clips come AES-encrypted to the transport key
            system_id TEXT,                -- the W800's System ID, bound at first contact
            system_name TEXT,
            connection_id TEXT,
            bound_at TEXT,
            created_at TEXT NOT NULL,
            created_by TEXT NOT NULL,
            last_contact TEXT,
            last_address TEXT
        );
        CREATE TABLE axis_users (
            account TEXT NOT NULL,
            uuid TEXT NOT NULL,            -- the W800's internal user UUID (in recording container names)
            name TEXT,                     -- nice name, not unique
            user_id TEXT,                  -- user-supplied ID (StoreUserIDKey)
            active INTEGER,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (account, uuid)
        );
        CREATE TABLE axis_devices (
            account TEXT NOT NULL,
            serial TEXT NOT NULL,          -- BWCSerialNumber
            name TEXT,
            model TEXT,
            active INTEGER,
            updated_at TEXT NOT NULL,
            last_recording TEXT,           -- when its last recording was completed here
            PRIMARY KEY (account, serial)
        );
        CREATE TABLE axis_recordings (
            account TEXT NOT NULL,
            container TEXT NOT NULL,       -- <UserID>_<BWCSerialNumber>_<TriggerOnTime>
            status TEXT NOT NULL,          -- transferring, complete
            meta TEXT NOT NULL DEFAULT '{}',   -- JSON: the container metadata, decoded
            created_at TEXT NOT NULL,
            completed_at TEXT,
            PRIMARY KEY (account, container)
        );
        CREATE TABLE axis_objects (
            account TEXT NOT NULL,
            container TEXT NOT NULL,
            name TEXT NOT NULL,
            kind TEXT NOT NULL,            -- clip, key, bookmark, gnss
            meta TEXT NOT NULL DEFAULT '{}',   -- JSON: the object metadata, decoded
            size INTEGER,                  -- plaintext bytes
            md5 TEXT,                      -- of the plaintext: the object's ETag
            stored_sha256 TEXT,            -- clip: the sealed container in the vault (not catalogued before Complete)
            stored_path TEXT,
            header BLOB,                   -- clip: the container header, catalogued at Complete
            body BLOB,                     -- bookmark text; a key object until its clip is sealed; GNSS points (JSON)
            recording_id TEXT,             -- clip: its catalog recording once the container is Complete
            part INTEGER,                  -- clip: 1, 2, ... in time order
            created_at TEXT NOT NULL,
            PRIMARY KEY (account, container, name)
        );
        CREATE INDEX axis_objects_recording ON axis_objects(recording_id);
        """,
    ),
    (
        "usb",
        """
        -- issue 16: bodycams that dock as USB mass storage (appliance/usb/)
        CREATE TABLE usb_files (
            serial TEXT NOT NULL,          -- the camera (devices.serial)
            path TEXT NOT NULL,            -- relative to the volume's root
            size INTEGER NOT NULL,
            mtime TEXT,                    -- the file's time as the camera's file system said
            state TEXT NOT NULL,           -- stored, refused
            reason TEXT,                   -- why refused (not video, read error, ...)
            sha256 TEXT,                   -- of the camera's file, as sealed and as read back
            recording_id TEXT,
            time_source TEXT,              -- filename, container, file: where the start time came from
            seen_at TEXT NOT NULL,
            deleted_at TEXT,               -- deleted on the camera after it was committed and read back
            PRIMARY KEY (serial, path, size)
        );
        CREATE INDEX usb_files_recording ON usb_files(recording_id);
        CREATE TABLE usb_volumes (
            identity TEXT PRIMARY KEY,     -- USB ids and serial, or label and file system
            label TEXT,
            usb_vendor TEXT,
            usb_product TEXT,
            usb_serial TEXT,
            profile TEXT,                  -- NULL: no profile matched (a USB stick, a phone): never read
            serial TEXT,                   -- the camera serial its profile read
            first_seen TEXT NOT NULL,
            last_seen TEXT NOT NULL
        );
        CREATE TABLE usb_sessions (
            serial TEXT PRIMARY KEY,       -- one row per camera: its last plug-in, for the overview
            state TEXT NOT NULL,           -- reading, done, error, storage_full, gone
            message TEXT,
            files_total INTEGER NOT NULL DEFAULT 0,
            files_done INTEGER NOT NULL DEFAULT 0,
            bytes_total INTEGER NOT NULL DEFAULT 0,
            bytes_done INTEGER NOT NULL DEFAULT 0,
            started_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        """,
    ),
]

RECORDING_COLUMNS = (
    "id", "camera_serial", "officer", "team", "start_time", "end_time", "camera_start_time",
    "clock_offset_s", "pre_record_s", "post_record_s", "size", "blob_size", "sha256", "stored_path",
    "chunk_size", "ingested_at", "state", "source", "source_ref",
    "clock_synced",  # issue 9: NULL for recordings catalogued before this column existed
)


def connect(path: Path) -> sqlite_utils.Database:
    conn = sqlite3.connect(str(path), timeout=30, isolation_level=None, check_same_thread=False)
    db = sqlite_utils.Database(conn, execute_plugins=False)  # no third-party code hooks into the catalog
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")  # a committed row survives power loss
    db.execute("PRAGMA secure_delete=ON")  # deleted rows are overwritten: needed for crypto-shredding
    db.execute("PRAGMA foreign_keys=ON")
    return db


def migrate(db: sqlite_utils.Database) -> int:
    """Run the migrations not yet applied; returns the schema version now in force."""
    current = db.execute("PRAGMA user_version").fetchone()[0]
    if current > len(MIGRATIONS):
        raise KluisError(
            f"catalog schema version {current} is newer than this Kluis ({len(MIGRATIONS)}): upgrade Kluis"
        )
    for version, (_, sql) in enumerate(MIGRATIONS[current:], start=current + 1):
        with transaction(db):
            for statement in _statements(sql):
                db.execute(statement)
            db.execute(f"PRAGMA user_version={version}")
    return len(MIGRATIONS)


def _statements(sql: str) -> Iterable[str]:
    buf = ""
    for line in sql.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            yield buf
            buf = ""
    if buf.strip():
        yield buf


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


class Catalog:
    def __init__(self, path: Path):
        self.path = path
        self.db = connect(path)
        self.version = migrate(self.db)

    def close(self) -> None:
        self.db.conn.close()

    def transaction(self) -> transaction:
        return transaction(self.db)

    # meta -------------------------------------------------------------------------------------------
    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
        return row[0] if row else default

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", [key, value])

    # users ------------------------------------------------------------------------------------------
    def add_user(self, name: str, role: str, slot: dict, created_at: str, team: str | None = None) -> None:
        if self.db.execute("SELECT 1 FROM users WHERE name = ?", [name]).fetchone():
            raise KluisError(f"user {name!r} exists already")
        self.db["users"].insert(
            {"name": name, "role": role, "team": team, "slot": json.dumps(slot), "created_at": created_at}
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
            self.db["recordings"].insert(row)
            self.db["file_keys"].insert({"recording_id": row["id"], "header": header})

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
