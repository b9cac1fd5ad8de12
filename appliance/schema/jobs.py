"""Background jobs (redaction runs in one). Owned by appliance/jobs.py."""

from __future__ import annotations

from ..migrations import Migrations

MIGRATIONS = Migrations("jobs", [
    (
        "create",
        """
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
])
