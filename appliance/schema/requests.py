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
    (
        "extension_and_place",
        """
        -- AVG art. 12(3): the answer may be extended by up to two further months, with reasons, told to
        -- the requester within the first month. `deadline` stays the date the answer is due now.
        ALTER TABLE requests ADD COLUMN original_deadline TEXT;     -- local date; NULL: never extended
        ALTER TABLE requests ADD COLUMN extension_months INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE requests ADD COLUMN extension_reason TEXT;
        ALTER TABLE requests ADD COLUMN extended_by TEXT;
        ALTER TABLE requests ADD COLUMN extended_at TEXT;
        -- The place as a point, when the requester's place could be given on a map: it narrows the search
        -- among recordings that carry a location (appliance/recording_places.py).
        ALTER TABLE requests ADD COLUMN place_lat REAL;
        ALTER TABLE requests ADD COLUMN place_lon REAL;
        ALTER TABLE requests ADD COLUMN place_radius_m INTEGER;
        -- The letters sent to the requester: what kind, when, by whom (the letter itself is made again
        -- from the register when asked; it holds nothing the register does not).
        CREATE TABLE request_letters (
            id INTEGER PRIMARY KEY,
            request_id INTEGER NOT NULL REFERENCES requests(id),
            kind TEXT NOT NULL,            -- receipt, extension, outcome
            made_by TEXT NOT NULL,
            made_at TEXT NOT NULL
        );
        CREATE INDEX request_letters_request ON request_letters(request_id);
        """,
    ),
])
