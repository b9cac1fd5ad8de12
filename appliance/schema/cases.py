"""Cases (zaken): one reference that groups recordings, holds, handovers and requests. Owned by
appliance/cases.py."""

from __future__ import annotations

from ..migrations import Migrations

MIGRATIONS = Migrations("cases", [
    (
        "create",
        """
        CREATE TABLE cases (
            id INTEGER PRIMARY KEY,
            reference TEXT NOT NULL UNIQUE COLLATE NOCASE,  -- as typed (PV-2026-118, K-12, VZ-2026-0001)
            title TEXT,
            description TEXT,
            kind TEXT NOT NULL,            -- an appliance.purposes code: what the case is for
            origin TEXT NOT NULL,          -- how it came to be: explicit, hold, handover, request, backfill
            opened_by TEXT NOT NULL,
            opened_at TEXT NOT NULL,
            closed_by TEXT,
            closed_at TEXT,                -- NULL: open
            close_reason TEXT
        );
        CREATE INDEX cases_open ON cases(closed_at, opened_at);
        -- A case's "who did what" is every audit entry naming it: without this, a scan of the whole log.
        CREATE INDEX audit_log_case ON audit_log(case_ref COLLATE NOCASE, seq);
        -- And its holds and handovers, found as the case matches its reference (capitals aside).
        CREATE INDEX holds_case ON holds(case_ref COLLATE NOCASE);
        CREATE INDEX handovers_case ON handovers(case_ref COLLATE NOCASE);
        -- An upgraded box shows the cases it already had: every reference its holds, handovers and requests
        -- name, opened by whoever named it first, with that first purpose as its kind (the earliest row
        -- wins: INSERT OR IGNORE keeps the first of each reference, case aside).
        INSERT OR IGNORE INTO cases (reference, kind, origin, opened_by, opened_at)
            SELECT ref, kind, 'backfill', by_whom, at FROM (
                SELECT trim(case_ref) AS ref, purpose AS kind, placed_by AS by_whom, placed_at AS at FROM holds
                UNION ALL SELECT trim(case_ref), purpose, prepared_by, prepared_at FROM handovers
                UNION ALL SELECT ref, kind, registered_by, registered_at FROM requests
            ) WHERE ref IS NOT NULL AND ref <> '' ORDER BY at, ref;
        -- A closed request's case is closed with it (the request's outcome ended it).
        UPDATE cases SET closed_by = (SELECT r.closed_by FROM requests r WHERE r.ref = cases.reference),
                         closed_at = (SELECT r.closed_at FROM requests r WHERE r.ref = cases.reference),
                         close_reason = (SELECT 'request closed: ' || r.outcome FROM requests r
                                         WHERE r.ref = cases.reference)
            WHERE reference IN (SELECT ref FROM requests WHERE status = 'closed' AND closed_at IS NOT NULL);
        """,
    ),
])
