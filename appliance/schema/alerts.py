"""Alert episodes and what has been sent of them. Owned by appliance/alerts.py (episodes, digests) and
appliance/syslog.py (its cursors are catalog meta keys, not tables)."""

from __future__ import annotations

from ..migrations import Migrations

MIGRATIONS = Migrations("alerts", [
    (
        "create",
        """
        -- An episode opens when a condition starts (the disk nearly full, a camera not docked for N days)
        -- and closes when it has ended; the box mails about it at most once.
        CREATE TABLE alert_episodes (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,            -- appliance.alerts KINDS
            subject TEXT NOT NULL,         -- what it is about within the kind (a serial, a request); '' = the box
            detail TEXT NOT NULL,          -- the latest description (Dutch, for the mail)
            opened_at TEXT NOT NULL,       -- box clock
            due_at TEXT NOT NULL,          -- people are told from then on (a kind's grace: sync failing a day)
            seen_at TEXT NOT NULL,         -- the condition was last seen holding
            closed_at TEXT,                -- NULL while open
            mailed_at TEXT,                -- the one mail about it went out (NULL: not yet, or digest only)
            syslog_open INTEGER NOT NULL DEFAULT 0,   -- its opening was sent to the log collector
            syslog_close INTEGER NOT NULL DEFAULT 0   -- its closing was
        );
        CREATE UNIQUE INDEX alert_episodes_open ON alert_episodes(kind, subject) WHERE closed_at IS NULL;
        CREATE INDEX alert_episodes_closed ON alert_episodes(closed_at);
        -- when each digest address last got its daily digest
        CREATE TABLE alert_digests (
            address TEXT PRIMARY KEY,
            sent_at TEXT NOT NULL
        );
        """,
    ),
])
