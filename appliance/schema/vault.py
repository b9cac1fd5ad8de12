"""The vault's own tables: the box's key-value `meta`, the catalogued `recordings` and their wrapped
file keys (`file_keys`). Owned by appliance/catalog.py (the `Catalog` class) and appliance/recordings.py.
Columns other features keep on a recording (review, retention, redaction) are steps here, because a
table has one owner and its columns keep one order however old the catalog it migrates."""

from __future__ import annotations

from ..migrations import Migrations

MIGRATIONS = Migrations("vault", [
    (
        "create",
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE recordings (
            id TEXT PRIMARY KEY,
            camera_serial TEXT NOT NULL,
            officer TEXT,
            team TEXT,
            start_time TEXT NOT NULL,      -- UTC ISO 8601, on the box's clock (corrected)
            end_time TEXT NOT NULL,
            camera_start_time TEXT,        -- UTC ISO 8601 as the camera's clock said
            clock_offset_s REAL,           -- box clock minus camera clock, measured at dock
            pre_record_s INTEGER,
            post_record_s INTEGER,
            size INTEGER NOT NULL,         -- plaintext bytes
            blob_size INTEGER NOT NULL,    -- container bytes, header included
            sha256 TEXT NOT NULL UNIQUE,   -- of the whole container: the recording's ciphertext identity
            stored_path TEXT NOT NULL,     -- payload blob, relative to the data dir
            chunk_size INTEGER NOT NULL,
            ingested_at TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT 'stored',
            source TEXT NOT NULL,          -- 'import' or 'dock'
            source_ref TEXT,               -- file name, or the camera's own recording id
            fingerprint TEXT               -- keyed sample fingerprint, to notice a file imported twice
        );
        CREATE INDEX recordings_start ON recordings(start_time);
        CREATE INDEX recordings_camera ON recordings(camera_serial, start_time);
        CREATE INDEX recordings_fingerprint ON recordings(fingerprint);
        CREATE TABLE file_keys (
            recording_id TEXT PRIMARY KEY REFERENCES recordings(id),
            header BLOB NOT NULL           -- container header: the sealed file keys
        );
        """,
    ),
    (
        "camera_end_time",
        """
        ALTER TABLE recordings ADD COLUMN camera_end_time TEXT;
        CREATE INDEX recordings_source ON recordings(camera_serial, source_ref);
        """,
    ),
    (
        "review",
        """
        ALTER TABLE recordings ADD COLUMN reason TEXT;    -- why the officer started recording (after the shift)
        ALTER TABLE recordings ADD COLUMN warning_given INTEGER;
        -- Filters and sorts of the web UI stay fast at 100 000 recordings
        CREATE INDEX recordings_officer ON recordings(officer, start_time);
        CREATE INDEX recordings_team ON recordings(team, start_time);
        CREATE INDEX recordings_state ON recordings(state, start_time);
        """,
    ),
    (
        "retention",
        """
        ALTER TABLE recordings ADD COLUMN category TEXT;     -- retention category ([retention.categories])
        ALTER TABLE recordings ADD COLUMN keep_until TEXT;   -- not deleted before (a policy change under hold)
        CREATE INDEX recordings_expiry ON recordings(state, end_time);
        """,
    ),
    (
        "duration",
        """
        -- The longest recording bounds a time-range search: start_time >= from - longest (an index range)
        CREATE INDEX recordings_duration ON recordings((julianday(end_time) - julianday(start_time)));
        """,
    ),
    (
        "clock_synced",
        """
        -- Was the box's clock synchronised (appliance/timesync.py) when the recording was catalogued?
        -- 1 yes; 0 no, or nobody could tell (its timestamps are not vouched for); NULL: catalogued before
        -- Kluis recorded this.
        ALTER TABLE recordings ADD COLUMN clock_synced INTEGER;
        """,
    ),
    (
        "derived_from",
        """
        -- The original a redacted derivative (appliance/redaction.py) was made from
        ALTER TABLE recordings ADD COLUMN derived_from TEXT;   -- the original of a redacted derivative
        CREATE INDEX recordings_derived_from ON recordings(derived_from);
        """,
    ),    (
        "reason_details",
        """
        -- The officer's reason (appliance/recordings.py set_reason): the free text a reason such as "anders"
        -- asks for, and how many warnings were given before recording (warning_given stays: warnings > 0).
        ALTER TABLE recordings ADD COLUMN reason_text TEXT;
        ALTER TABLE recordings ADD COLUMN warnings INTEGER;
        -- "Te doen": recordings without a reason, by team, oldest first
        CREATE INDEX recordings_reason ON recordings(reason, end_time);
        """,
    ),
    (
        "places",
        """
        -- Where a recording was made, when its camera says so (an Axis system's trigger locations and
        -- GNSS track): what an access request's place is searched against (appliance/recording_places.py).
        -- A place is personal data of the recording: it goes when the recording goes (the trigger).
        CREATE TABLE recording_places (
            recording_id TEXT NOT NULL,
            lat REAL NOT NULL,
            lon REAL NOT NULL,
            source TEXT NOT NULL,          -- trigger_on, trigger_off, track
            seconds REAL                   -- from the start of the camera's recording, when known
        );
        CREATE INDEX recording_places_recording ON recording_places(recording_id);
        CREATE TRIGGER recording_places_forget AFTER DELETE ON recordings BEGIN
            DELETE FROM recording_places WHERE recording_id = OLD.id;
        END;
        """,
    ),
])
