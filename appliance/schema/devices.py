"""Cameras the box knows (docked, USB and Axis), their assignments, docks and alerts. Owned by
appliance/dock/devices.py; `alerts_read` (who read which alerts) by appliance/todo.py; `device_episodes` by
appliance/dock/episodes.py."""

from __future__ import annotations

from ..migrations import Migrations

MIGRATIONS = Migrations("devices", [
    (
        "create",
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
        """,
    ),
    (
        "alerts_read",
        """
        -- up to which device alert each user has read (appliance/todo.py: the overview's unread alerts)
        CREATE TABLE alerts_read (
            user TEXT PRIMARY KEY,
            last_id INTEGER NOT NULL,      -- device_alerts.id of the newest alert read
            read_at TEXT NOT NULL
        );
        """,
    ),
    (
        "episodes",
        """
        -- The alert episodes of the dock (appliance/dock/episodes.py: an impostor, a camera failing the same
        -- way), so that a restart of the service inside one does not alert again. Not alert_episodes: those
        -- are conditions the alerts check reads from the box's state and mails about; these are sightings.
        CREATE TABLE device_episodes (
            scope TEXT NOT NULL,           -- whose episodes: 'spoofs' (discovery), 'sessions' (offload, claims)
            key TEXT NOT NULL,             -- the episode's key, as JSON
            since REAL NOT NULL,           -- Unix time of its first sighting
            last_seen REAL NOT NULL,       -- of its last sighting (written at most every PERSIST_EVERY_S)
            PRIMARY KEY (scope, key)
        );
        """,
    ),
])
