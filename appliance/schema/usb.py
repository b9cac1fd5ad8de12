"""Bodycams that dock as USB mass storage: files read, volumes seen, the last session per camera.
Owned by appliance/usb/ingest.py."""

from __future__ import annotations

from ..migrations import Migrations

MIGRATIONS = Migrations("usb", [
    (
        "create",
        """
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
])
