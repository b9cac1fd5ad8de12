"""The tamper-evident audit log and its signed checkpoints. Owned by appliance/audit.py; the archive
keeps an audit log of the same shape and runs this set on its own database too."""

from __future__ import annotations

from ..migrations import Migrations

MIGRATIONS = Migrations("audit", [
    (
        "create",
        """
        CREATE TABLE audit_log (
            seq INTEGER PRIMARY KEY,       -- 1, 2, 3, ... without gaps
            time TEXT NOT NULL,
            actor TEXT NOT NULL,           -- user name, 'system' for unattended work
            action TEXT NOT NULL,
            recording_id TEXT,
            purpose TEXT,                  -- appliance.purposes code where one applies
            case_ref TEXT,
            client TEXT,                   -- address of the client (web UI), 'cli' or NULL
            details TEXT,                  -- canonical JSON or NULL
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL
        );
        CREATE INDEX audit_log_recording ON audit_log(recording_id, seq);
        CREATE INDEX audit_log_time ON audit_log(time);
        -- Append-only: these stop mistakes, not an attacker with the file; the hash chain and the signed
        -- checkpoints are what detect that.
        CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
        CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
        CREATE TABLE audit_checkpoints (
            id INTEGER PRIMARY KEY,
            count INTEGER NOT NULL,        -- entries covered: seq 1..count
            head TEXT NOT NULL,            -- hash of entry `count` (GENESIS for an empty log)
            time TEXT NOT NULL,
            signer TEXT NOT NULL,          -- hex Ed25519 public key of the box
            signature TEXT NOT NULL        -- hex, over canonical(body)
        );
        """,
    ),
    (
        # /logboek reads newest first by time under any one filter (appliance.audit.page): with these the
        # filter and the order come from one index, also at a million entries.
        "page_indexes",
        """
        CREATE INDEX audit_log_action_time ON audit_log(action, time);
        CREATE INDEX audit_log_actor_time ON audit_log(actor, time);
        CREATE INDEX audit_log_recording_time ON audit_log(recording_id, time);
        """,
    ),
    (
        # Each entry signed on its own (appliance.audit.record; kind kluis/v1/audit-entry over its hash), so
        # that a log re-hashed from a changed entry on shows that exact entry, not only a range between two
        # checkpoints. NULL: an entry from before this step, or from a process that did not hold the key
        # (the next checkpoint signs it). The column may be filled once, never changed: every other column
        # stays append-only as before.
        "entry_signatures",
        """
        ALTER TABLE audit_log ADD COLUMN signature TEXT;
        DROP TRIGGER audit_log_no_update;
        CREATE TRIGGER audit_log_no_update
        BEFORE UPDATE OF seq, time, actor, action, recording_id, purpose, case_ref, client, details, prev_hash, hash
        ON audit_log
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
        CREATE TRIGGER audit_log_sign_once BEFORE UPDATE OF signature ON audit_log WHEN OLD.signature IS NOT NULL
        BEGIN SELECT RAISE(ABORT, 'an audit entry is signed once'); END;
        CREATE INDEX audit_log_unsigned ON audit_log(seq) WHERE signature IS NULL;
        """,
    ),
    (
        # A term for the log itself (appliance/audit_prune.py): entries older than [audit] term_days go, under
        # a signed pruning checkpoint that says what went (seq range, count per action, the last pruned
        # entry's hash the chain goes on from). A row may be deleted only once such a checkpoint covers it;
        # the checkpoints themselves are append-only. As before, this stops mistakes, not an attacker with
        # the file: the signatures are what detect that (appliance/audit.py verify).
        "prunes",
        """
        CREATE TABLE audit_prunes (
            id INTEGER PRIMARY KEY,
            first INTEGER NOT NULL,        -- the first entry pruned (seq)
            last INTEGER NOT NULL,         -- the last entry pruned: the log goes on at last + 1
            body TEXT NOT NULL,            -- the signed checkpoint, canonical JSON (docs/format.md)
            signature TEXT NOT NULL        -- hex, kind kluis/v1/audit-prune
        );
        DROP TRIGGER audit_log_no_delete;
        CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
        WHEN OLD.seq > (SELECT COALESCE(MAX(last), 0) FROM audit_prunes)
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only (entries go only under a pruning checkpoint)'); END;
        CREATE TRIGGER audit_prunes_no_update BEFORE UPDATE ON audit_prunes
        BEGIN SELECT RAISE(ABORT, 'a pruning checkpoint is append-only'); END;
        CREATE TRIGGER audit_prunes_no_delete BEFORE DELETE ON audit_prunes
        BEGIN SELECT RAISE(ABORT, 'a pruning checkpoint is append-only'); END;
        """,
    ),
])
