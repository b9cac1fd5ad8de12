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
        "received_sha256",
        # A clip's MD5 is computed only when a client asks for it (docs/axis.md, "Hashes"); what tells a
        # repeated PUT of the same clip from another body under its name is the SHA-256 of the bytes as
        # they came. Rows from before this step have their MD5 for that.
        """
        ALTER TABLE axis_objects ADD COLUMN received_sha256 TEXT;  -- clip: of the bytes as they came
        """,
    ),
])
