"""The box's side of the archive sync, as the catalog holds it: the enrollment, the outbox (which
recordings must go to the archive: holds whose purpose needs central custody, and requisitions), their way
there (states, re-wrapping for the archive, metadata), the receipts, the sync window and the status the
web UI and `kluis sync status` show.

No network here: the web UI and the CLI read and change this state without the sync client, and
sync/client.py (which talks to the archive) builds on it.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from zoneinfo import ZoneInfo

from nacl.public import PrivateKey

from . import audit, witness
from .box import Box
from .config_models import parse_window
from .container import parse_header
from .errors import KluisError

META_ARCHIVE = "sync_archive"
META_LAST_PASS = "sync_last_pass"
STATES = ("needs_rewrap", "queued", "sending", "failing", "sent")


def enrollment(box: Box) -> dict | None:
    """The archive this box is enrolled at (its URL, pinned certificate and keys), or None."""
    text = box.catalog.get_meta(META_ARCHIVE)
    return json.loads(text) if text else None


def archive_url(box: Box, enrolled: dict) -> str:
    """kluis.toml's [sync] archive_url overrides the address the box enrolled at (the archive moved)."""
    return (box.settings.sync.archive_url or enrolled["url"]).rstrip("/")


def in_window(window: str, moment: datetime, tz_name: str) -> bool:
    """Is `moment` inside a daily window "HH:MM-HH:MM" (local time; may wrap past midnight)?"""
    if (span := parse_window(window)) is None:
        return True
    first, last = span
    now = moment.astimezone(ZoneInfo(tz_name)).time()
    return first <= now < last if first <= last else (now >= first or now < last)


def queue(box: Box, recording_id: str, reason: str) -> str | None:
    """Put a recording in the outbox (once); returns its state, or None if it was there already."""
    enrolled = enrollment(box)
    if enrolled is None:
        raise KluisError("this box is not enrolled at an archive (kluis sync enroll)")
    recording = box.catalog.get_recording(recording_id)
    header = parse_header(box.catalog.header_of(recording_id))
    named = bytes.fromhex(enrolled["public_key"]) in header.recipients
    state = "queued" if named else "needs_rewrap"
    cursor = box.catalog.db.execute(
        "INSERT OR IGNORE INTO sync_outbox (recording_id, reason, queued_at, state, sha256, size) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [recording_id, reason, box.now_iso(), state, recording["sha256"] if named else None,
         recording["blob_size"] if named else None])
    return state if cursor.rowcount else None


def fill_outbox(box: Box) -> int:
    """Queue every recording with an active hold whose purpose needs central custody; returns how many."""
    if enrollment(box) is None:
        return 0
    central = list(box.settings.sync.central_purposes)
    if not central:
        return 0
    rows = box.catalog.db.execute(
        f"SELECT h.recording_id, MIN(h.purpose) FROM holds h JOIN recordings r ON r.id = h.recording_id "
        f"WHERE h.released_at IS NULL AND r.state = 'stored' AND h.purpose IN ({', '.join('?' * len(central))}) "
        f"AND h.recording_id NOT IN (SELECT recording_id FROM sync_outbox) GROUP BY h.recording_id",
        central).fetchall()
    return sum(1 for rid, purpose in rows if queue(box, rid, f"hold:{purpose}"))


def withdraw_stale(box: Box) -> list[str]:
    """Take out of the outbox what no longer needs to go: recordings whose central holds were all released
    (or that were deleted) before they were sent. Audited; returns their ids."""
    wanted = sorted(set(box.settings.sync.central_purposes) | {"requisition"})
    rows = box.catalog.db.execute(
        f"SELECT o.recording_id FROM sync_outbox o WHERE o.state != 'sent' AND NOT EXISTS ("
        f"SELECT 1 FROM holds h JOIN recordings r ON r.id = h.recording_id WHERE h.recording_id = o.recording_id "
        f"AND r.state = 'stored' AND h.released_at IS NULL AND h.purpose IN ({', '.join('?' * len(wanted))}))",
        wanted).fetchall()
    for (recording_id,) in rows:
        with box.catalog.transaction():
            box.catalog.db.execute("DELETE FROM sync_outbox WHERE recording_id = ?", [recording_id])
            audit.record(box.catalog, actor="system", action="sync_withdrawn", recording_id=recording_id,
                         clock=box.clock, details={"reason": "no hold that needs central custody is left"})
    return [r[0] for r in rows]


def pending_rewrap(box: Box) -> list[str]:
    return [r[0] for r in box.catalog.db.execute(
        "SELECT recording_id FROM sync_outbox WHERE state = 'needs_rewrap' ORDER BY queued_at, recording_id")]


def rewrap_pending(box: Box, identity: PrivateKey, actor: str) -> int:
    """Re-wrap, for the archive, the queued recordings sealed before enrollment. Needs the unlocked box
    key (web UI: the logged-in user's; CLI: `kluis sync rewrap --password-file`). Returns how many."""
    enrolled = enrollment(box)
    if enrolled is None:
        return 0
    archive_key = bytes.fromhex(enrolled["public_key"])
    done = 0
    for recording_id in pending_rewrap(box):
        recording = box.catalog.get_recording(recording_id)
        header = parse_header(box.catalog.header_of(recording_id))
        new = header.rewrap(header.unwrap(identity), [archive_key])
        digest = hashlib.sha256(new.raw)
        with box.vault.open_payload(recording["stored_path"]) as payload:
            while block := payload.read(1024 * 1024):
                digest.update(block)
        size = new.size + box.vault.payload_size(recording["stored_path"])
        with box.catalog.transaction():
            box.catalog.db.execute(
                "UPDATE sync_outbox SET header = ?, sha256 = ?, size = ?, state = 'queued' "
                "WHERE recording_id = ? AND state = 'needs_rewrap'", [new.raw, digest.hexdigest(), size, recording_id])
            audit.record(box.catalog, actor=actor, action="sync_rewrap", recording_id=recording_id, clock=box.clock,
                         details={"archive": enrolled["archive_id"], "sha256": digest.hexdigest()})
        done += 1
    return done


def metadata_for(box: Box, recording_id: str) -> dict:
    """What the archive keeps beside the ciphertext: descriptive fields and the holds with case refs."""
    rec = box.catalog.get_recording(recording_id)
    holds = list(box.catalog.db.query(
        "SELECT purpose, case_ref, placed_at, until, released_at, release_reason FROM holds "
        "WHERE recording_id = ? ORDER BY placed_at, id", [recording_id]))
    fields = ("camera_serial", "officer", "team", "start_time", "end_time", "pre_record_s", "post_record_s",
              "source")
    return {"recording_id": recording_id, "box_name": box.settings.box.name,
            **{name: rec.get(name) for name in fields}, "holds": holds}


def receipt_for(box: Box, recording_id: str) -> dict | None:
    """The archive's signed receipt for a recording (shown on the recording's page), or None."""
    rows = list(box.catalog.db.query("SELECT * FROM sync_receipts WHERE recording_id = ?", [recording_id]))
    if not rows:
        return None
    return {**rows[0], "receipt": json.loads(rows[0]["receipt"])}


def sync_of(box: Box, recording_id: str) -> dict | None:
    """One recording's way to the archive for its page: outbox state and progress, and the receipt once
    the archive signed one. None when the recording never had to leave the box."""
    outbox = list(box.catalog.db.query(
        "SELECT state, reason, sent_bytes, size, attempts, last_error FROM sync_outbox WHERE recording_id = ?",
        [recording_id]))
    receipt = receipt_for(box, recording_id)
    if not outbox and receipt is None:
        return None
    return {"outbox": outbox[0] if outbox else None, "receipt": receipt}


def status(box: Box) -> dict:
    """Sync state for the web UI and `kluis sync status`."""
    enrolled = enrollment(box)
    rows = list(box.catalog.db.query(
        "SELECT o.recording_id, o.reason, o.state, o.queued_at, o.sent_bytes, o.size, o.attempts, o.last_error, "
        "o.last_attempt_at, r.received_at, r.sha256 AS receipt_sha256 FROM sync_outbox o "
        "LEFT JOIN sync_receipts r ON r.recording_id = o.recording_id ORDER BY o.queued_at, o.recording_id"))
    for row in rows:
        row["progress"] = round(row["sent_bytes"] / row["size"], 4) if row["size"] else 0.0
    counts = {state: sum(1 for r in rows if r["state"] == state) for state in STATES}
    last = box.catalog.get_meta(META_LAST_PASS)
    cfg = box.settings.sync
    return {
        "enrolled": enrolled is not None,
        "archive": None if enrolled is None else {
            "url": archive_url(box, enrolled), "archive_id": enrolled["archive_id"], "name": enrolled["archive_name"],
            "box_id": enrolled["box_id"], "cert_sha256": enrolled["cert_sha256"],
            "enrolled_at": enrolled["enrolled_at"]},
        "window": cfg.window or None,
        "bandwidth_kbps": cfg.bandwidth_kbps or None,
        "counts": counts,
        "outbox": rows,
        "last_pass": json.loads(last) if last else None,
        "witness": witness.summary(box.catalog, box.clock(), enrolled is not None),  # the audit log's outside anchor
    }
