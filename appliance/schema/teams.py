"""A recording's team (appliance/teams.py owns the rule; the `team` column is the vault's). This set runs
after every table it reads exists (users, axis), so it comes last in `BOX`."""

from __future__ import annotations

from ..migrations import Migrations

MIGRATIONS = Migrations("teams", [
    (
        "backfill",
        """
        -- Until now no ingest path filled recordings.team. Fill it from the officer's current team (the
        -- best the box knows): the Kluis user named as the officer, or for an Axis recording (or its
        -- redacted copy) the Kluis user named by the W800 user's UserID. Unknown officers stay NULL.
        UPDATE recordings SET team = coalesce(
            (SELECT u.team FROM users u WHERE u.name = recordings.officer),
            (SELECT u.team FROM axis_objects o
                JOIN axis_users a ON a.account = o.account AND substr(o.container, 1, length(a.uuid) + 1) = a.uuid || '_'
                JOIN users u ON u.name = a.user_id
                WHERE o.recording_id = coalesce(recordings.derived_from, recordings.id) AND o.kind = 'clip'
                  AND u.team IS NOT NULL
                LIMIT 1)
        )
        WHERE team IS NULL;
        """,
    ),
])
