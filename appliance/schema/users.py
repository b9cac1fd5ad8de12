"""The box's users: roles, key slots, lock-out and the second factor. Owned by appliance/users.py."""

from __future__ import annotations

from ..migrations import Migrations

MIGRATIONS = Migrations("users", [
    (
        "create",
        """
        CREATE TABLE users (
            name TEXT PRIMARY KEY,
            role TEXT NOT NULL,
            team TEXT,
            slot TEXT NOT NULL,            -- JSON key slot (keys.new_slot)
            created_at TEXT NOT NULL,
            disabled INTEGER NOT NULL DEFAULT 0
        );
        """,
    ),
    (
        "lockout",
        """
        ALTER TABLE users ADD COLUMN failed_logins INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE users ADD COLUMN locked_until TEXT;   -- lock-out after repeated wrong passwords
        """,
    ),
    (
        "totp",
        """
        ALTER TABLE users ADD COLUMN totp_secret TEXT;      -- base32 TOTP secret (RFC 6238); NULL: no second factor
        ALTER TABLE users ADD COLUMN totp_last_step INTEGER; -- the last time step used, so a code works once
        """,
    ),
    (
        "person",
        """
        ALTER TABLE users ADD COLUMN full_name TEXT;  -- as forms name the person ("J. de Vries"); NULL: the login name
        ALTER TABLE users ADD COLUMN function TEXT;   -- the person's job ("teamleider handhaving"), on forms
        """,
    ),
])
