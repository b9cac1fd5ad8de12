"""Axis W800 system controllers delivering as to a content destination. Owned by appliance/axis/
(accounts.py and destination.py)."""

from __future__ import annotations

from ..migrations import Migrations

MIGRATIONS = Migrations("axis", [
    (
        "create",
        """
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
        "places_and_forget",
        """
        -- The GNSS tracks of recordings stored before places were kept: into recording_places (each point
        -- of a container's track for each of its clips' recordings). Trigger locations of those older
        -- recordings stay where they were (shown on the recording page, not searched).
        INSERT INTO recording_places (recording_id, lat, lon, source, seconds)
            SELECT c.recording_id, json_extract(p.value, '$.lat'), json_extract(p.value, '$.lon'), 'track',
                   json_extract(p.value, '$.seconds')
            FROM axis_objects g
            JOIN axis_objects c ON c.account = g.account AND c.container = g.container AND c.kind = 'clip'
                 AND c.recording_id IS NOT NULL
            JOIN json_each(CAST(g.body AS TEXT)) p
            WHERE g.kind = 'gnss' AND g.meta NOT LIKE '%"_encrypted"%' AND json_valid(CAST(g.body AS TEXT))
              AND json_extract(p.value, '$.lat') IS NOT NULL AND json_extract(p.value, '$.lon') IS NOT NULL
              AND c.recording_id IN (SELECT id FROM recordings);
        -- A recording's Axis objects (its clip's row) go with the recording; once a container has no clip
        -- left, its metadata (trigger locations, model, controller), GNSS track and bookmark texts go too:
        -- personal data must not outlive the footage it came with.
        CREATE TRIGGER axis_forget_recording BEFORE DELETE ON recordings BEGIN
            DELETE FROM axis_objects WHERE kind <> 'clip'
                AND (account, container) IN (SELECT account, container FROM axis_objects WHERE recording_id = OLD.id)
                AND NOT EXISTS (SELECT 1 FROM axis_objects c WHERE c.account = axis_objects.account
                                AND c.container = axis_objects.container AND c.kind = 'clip'
                                AND (c.recording_id IS NULL OR c.recording_id <> OLD.id));
            DELETE FROM axis_recordings WHERE status = 'complete'
                AND (account, container) IN (SELECT account, container FROM axis_objects WHERE recording_id = OLD.id)
                AND NOT EXISTS (SELECT 1 FROM axis_objects c WHERE c.account = axis_recordings.account
                                AND c.container = axis_recordings.container AND c.kind = 'clip'
                                AND (c.recording_id IS NULL OR c.recording_id <> OLD.id));
            DELETE FROM axis_objects WHERE recording_id = OLD.id;
        END;
        -- What such deletions left behind before this step
        DELETE FROM axis_objects WHERE kind = 'clip' AND recording_id IS NOT NULL
            AND recording_id NOT IN (SELECT id FROM recordings);
        DELETE FROM axis_objects WHERE kind <> 'clip' AND EXISTS (
            SELECT 1 FROM axis_recordings r WHERE r.account = axis_objects.account
            AND r.container = axis_objects.container AND r.status = 'complete'
            AND NOT EXISTS (SELECT 1 FROM axis_objects c WHERE c.account = r.account
                            AND c.container = r.container AND c.kind = 'clip'));
        DELETE FROM axis_recordings WHERE status = 'complete' AND NOT EXISTS (
            SELECT 1 FROM axis_objects c WHERE c.account = axis_recordings.account
            AND c.container = axis_recordings.container AND c.kind = 'clip');
        """,
    ),
    (
        "received_sha256",
        # A clip's MD5 is computed only when a client asks for it (docs/axis.md, "Hashes"); what tells a
        # repeated PUT of the same clip from another body under its name is the SHA-256 of the bytes as
        # they came. Rows from before this step have their MD5 for that.
        """
        ALTER TABLE axis_objects ADD COLUMN received_sha256 TEXT;  -- clip: of the bytes as they came
        """,
    ),
])
