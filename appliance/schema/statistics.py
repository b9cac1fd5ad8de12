"""The statistics that outlive the footage (appliance/statistics.py owns them, and says why they are kept
this way): counts per month and team that retention never deletes.

The backfill gives a box that upgrades the history it still has: a row per live recording (linked), and
for each recording already deleted (the deletion report keeps its month and category) the counts the
audit log still tells, folded into per-month totals without any link. What the box no longer knows
stays unknown: a deleted recording's team and officer were never kept, so its counts go under team ''.
Months are UTC months, as the runtime's (appliance/statistics.py: month_of)."""

from __future__ import annotations

from ..migrations import Migrations

MIGRATIONS = Migrations("statistics", [
    (
        "create",
        """
        CREATE TABLE statistics (
            month TEXT NOT NULL,           -- YYYY-MM (UTC) of the recording's start
            team TEXT NOT NULL,            -- the recording's team, '' when the box did not know it
            fact TEXT NOT NULL,            -- recordings, source, camera_model, reason, warning, category, ...
            value TEXT NOT NULL,           -- a code ('' : not set)
            n INTEGER NOT NULL,            -- how many
            recording_id TEXT              -- while the recording exists: its id; NULL once folded at deletion
        );
        CREATE UNIQUE INDEX statistics_live ON statistics(recording_id, fact, value) WHERE recording_id IS NOT NULL;
        CREATE UNIQUE INDEX statistics_folded ON statistics(month, team, fact, value) WHERE recording_id IS NULL;
        -- No index on the month: the table holds the live recordings' rows (weeks of recordings) and small
        -- totals, a report reads most of it, and every index would cost the sweep's deletions more.

        -- Backfill. A view is the gate's 'view', 'range_read' or 'export' entry; a handover package's 'export'
        -- entries (details.handover) are its handover, counted as an outcome. One subject per recording the box holds (not a redacted copy) or deleted (the deletion
        -- report), with what is known of it.
        CREATE TEMP TABLE stats_subjects AS
        SELECT r.id AS id, 1 AS live, substr(r.start_time, 1, 7) AS month,
               coalesce(r.team, (SELECT u.team FROM users u WHERE u.name = r.officer), '') AS team,
               r.source AS source, r.camera_serial AS camera, r.reason AS reason, r.warning_given AS warning,
               r.warnings AS warnings, r.category AS category, NULL AS deleted
        FROM recordings r WHERE r.derived_from IS NULL
        UNION ALL
        SELECT d.recording_id, 0, substr(d.start_time, 1, 7), '',
               (SELECT json_extract(a.details, '$.source') FROM audit_log a
                 WHERE a.recording_id = d.recording_id AND a.action = 'ingest' ORDER BY a.seq LIMIT 1),
               (SELECT json_extract(a.details, '$.camera') FROM audit_log a
                 WHERE a.recording_id = d.recording_id AND a.action = 'ingest' ORDER BY a.seq LIMIT 1),
               (SELECT json_extract(a.details, '$.reason') FROM audit_log a
                 WHERE a.recording_id = d.recording_id AND a.action = 'reason_set' ORDER BY a.seq DESC LIMIT 1),
               (SELECT json_extract(a.details, '$.warning_given') FROM audit_log a
                 WHERE a.recording_id = d.recording_id AND a.action = 'reason_set' ORDER BY a.seq DESC LIMIT 1),
               (SELECT json_extract(a.details, '$.warnings') FROM audit_log a
                 WHERE a.recording_id = d.recording_id AND a.action = 'reason_set' ORDER BY a.seq DESC LIMIT 1),
               d.category,
               CASE WHEN d.reason LIKE 'deleted ahead of term%' THEN 'deleted_early' ELSE 'deleted_term' END
        FROM deletions d
        WHERE d.recording_id NOT IN (SELECT recording_id FROM redactions)
          AND coalesce((SELECT json_extract(a.details, '$.source') FROM audit_log a
                         WHERE a.recording_id = d.recording_id AND a.action = 'ingest' ORDER BY a.seq LIMIT 1),
                       '') != 'redaction';

        CREATE TEMP TABLE stats_backfill AS
        SELECT id, live, month, team, 'recordings' AS fact, '' AS value, 1 AS n FROM stats_subjects
        UNION ALL SELECT id, live, month, team, 'source', coalesce(source, ''), 1 FROM stats_subjects
        UNION ALL SELECT id, live, month, team, 'camera_model', coalesce(
                (SELECT v.model FROM devices v WHERE v.serial = camera AND coalesce(v.model, '') != ''),
                (SELECT x.model FROM axis_devices x WHERE x.serial = camera AND coalesce(x.model, '') != ''
                  ORDER BY x.updated_at DESC LIMIT 1),
                (SELECT 'usb:' || o.profile FROM usb_volumes o WHERE o.serial = camera AND o.profile IS NOT NULL
                  ORDER BY o.last_seen DESC LIMIT 1),
                ''), 1 FROM stats_subjects
        UNION ALL SELECT id, live, month, team, 'reason', coalesce(reason, ''), 1 FROM stats_subjects
        UNION ALL SELECT id, live, month, team, 'warning',
                CASE WHEN warnings IS NOT NULL THEN (CASE WHEN warnings > 0 THEN 'yes' ELSE 'no' END)
                     WHEN warning IS NULL THEN '' WHEN warning THEN 'yes' ELSE 'no' END, 1 FROM stats_subjects
        UNION ALL SELECT id, live, month, team, 'warnings', CAST(CAST(warnings AS INTEGER) AS TEXT), 1
                FROM stats_subjects WHERE warnings IS NOT NULL
        -- categories: a sorted, comma-separated list (appliance/retention.py), one row each
        UNION ALL SELECT s.id, live, month, team, 'category', coalesce(c.value, ''), 1 FROM stats_subjects s
                LEFT JOIN json_each(CASE WHEN coalesce(s.category, '') = '' THEN '[]'
                                         ELSE '["' || replace(s.category, ',', '","') || '"]' END) c
        UNION ALL SELECT s.id, live, month, team, 'hold_purpose', h.purpose, count(*)
                FROM stats_subjects s JOIN holds h ON h.recording_id = s.id GROUP BY s.id, h.purpose
        UNION ALL SELECT id, live, month, team, 'outcome', 'held', 1 FROM stats_subjects
                WHERE id IN (SELECT recording_id FROM holds)
        UNION ALL SELECT id, live, month, team, 'outcome', 'handed_over', 1 FROM stats_subjects
                WHERE id IN (SELECT i.recording_id FROM handover_items i JOIN handovers o ON o.id = i.handover_id
                             WHERE o.state = 'approved')
        UNION ALL SELECT DISTINCT s.id, live, month, team, 'outcome', q.kind, 1
                FROM stats_subjects s JOIN request_recordings l ON l.recording_id = s.id
                JOIN requests q ON q.id = l.request_id
        UNION ALL SELECT id, live, month, team, 'outcome', 'redacted', 1 FROM stats_subjects
                WHERE id IN (SELECT original_id FROM redactions)
        UNION ALL SELECT id, live, month, team, 'outcome', deleted, 1 FROM stats_subjects WHERE deleted IS NOT NULL
        UNION ALL SELECT s.id, live, month, team, 'viewed', a.purpose, 1
                FROM stats_subjects s JOIN audit_log a ON a.recording_id = s.id
                WHERE a.action IN ('view', 'range_read', 'export') AND a.purpose IS NOT NULL
                  AND json_extract(a.details, '$.handover') IS NULL
                GROUP BY s.id, a.purpose
        UNION ALL SELECT s.id, live, month, team, 'views', a.purpose, count(*)
                FROM stats_subjects s JOIN audit_log a ON a.recording_id = s.id
                WHERE a.action IN ('view', 'range_read', 'export') AND a.purpose IS NOT NULL
                  AND json_extract(a.details, '$.handover') IS NULL
                GROUP BY s.id, a.purpose;

        INSERT INTO statistics (month, team, fact, value, n, recording_id)
        SELECT month, team, fact, value, n, id FROM stats_backfill WHERE live;
        INSERT INTO statistics (month, team, fact, value, n, recording_id)
        SELECT month, team, fact, value, sum(n), NULL FROM stats_backfill WHERE NOT live
        GROUP BY month, team, fact, value;
        DROP TABLE stats_backfill;
        DROP TABLE stats_subjects;
        """,
    ),
])
