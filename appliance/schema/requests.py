"""Access requests, objections and complaints of people who were filmed. Owned by
appliance/access_requests.py."""

from __future__ import annotations

from ..migrations import Migrations

MIGRATIONS = Migrations("requests", [
    (
        "create",
        """
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
])
