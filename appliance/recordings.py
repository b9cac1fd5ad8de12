"""Recordings into the box: import a plain file, store a camera's container, annotate, verify.

These functions join the container format, the vault and the catalog; they know nothing of HTTP or of
the command line. Reading footage out is the gate's (appliance.footage): it audits first.
"""

from __future__ import annotations

import hashlib
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from nacl.public import PrivateKey

from . import audit, footage, recording_reasons, space, statistics, teams, timesync
from .box import Box
from .clock import to_iso
from .container import Encryptor, plaintext_size
from .errors import KluisError
from .vault import Stored

FINGERPRINT_SAMPLES = 16
FINGERPRINT_BLOCK = 64 * 1024


def new_recording_id() -> str:
    return secrets.token_hex(8)


def fingerprint_file(path: Path, key: bytes) -> str:
    """A keyed digest of a file's size and 18 samples of 64 KiB (start, end, evenly between). It tells a
    file imported twice without reading it twice, and reveals nothing without the box's key."""
    size = path.stat().st_size
    digest = hashlib.blake2b(key=key, digest_size=32, person=b"kluis-dup")
    digest.update(size.to_bytes(8, "big"))
    offsets = {0, max(size - FINGERPRINT_BLOCK, 0)}
    offsets.update(size * i // (FINGERPRINT_SAMPLES + 1) for i in range(1, FINGERPRINT_SAMPLES + 1))
    with open(path, "rb") as f:
        for offset in sorted(offsets):
            f.seek(offset)
            digest.update(f.read(FINGERPRINT_BLOCK))
    return digest.hexdigest()


def probe_duration(path: Path) -> float | None:
    """Seconds of media in a video file, or None when it is not one PyAV can read."""
    import av  # here, not at the top: PyAV's libraries cost kluis serve ~17 MB while nothing is probed

    try:
        with av.open(str(path)) as media:
            if media.duration is not None:
                return media.duration / 1_000_000
    except (av.error.FFmpegError, OSError, ValueError):
        return None
    return None


@dataclass(frozen=True)
class Imported:
    path: Path
    recording_id: str
    duplicate: bool  # True: the file was stored before, recording_id is the earlier one


def catalog_stored(box: Box, stored: Stored, fields: dict, actor: str = "system", client: str | None = None) -> str:
    """Commit the catalog row for a blob the vault holds durably, with its 'ingest' audit entry in the
    same transaction; returns the recording id. `fields` gives the descriptive columns (camera_serial,
    officer, start_time, end_time, ...); the team is the officer's (appliance.teams) unless `fields` name
    one. `actor`: "system" for camera offload, the user for an import."""
    if "clock_synced" not in fields:  # asked before the write lock: it may run a command
        fields = {"clock_synced": timesync.ingest_flag(), **fields}
    with box.catalog.transaction():
        existing = box.catalog.find_by_sha256(stored.sha256)
        if existing:
            return existing["id"]
        fields = teams.with_team(box.catalog, fields)
        recording_id = _add_row(box, stored, fields)
        audit.record(box.catalog, actor=actor, action="ingest", recording_id=recording_id, client=client,
                     clock=box.clock, details={"sha256": stored.sha256, "source": fields.get("source"),
                                               "camera": fields.get("camera_serial"),
                                               "source_ref": fields.get("source_ref"),
                                               "clock_synced": fields["clock_synced"]})  # in the chained log too
        statistics.refresh(box.catalog, recording_id)
    return recording_id


def _add_row(box: Box, stored: Stored, fields: dict) -> str:
    payload = stored.container_size - stored.header.size
    row = {
        "id": new_recording_id(),
        "size": plaintext_size(payload, stored.header.chunk_size),
        "blob_size": stored.container_size,
        "sha256": stored.sha256,
        "stored_path": stored.stored_path,
        "chunk_size": stored.header.chunk_size,
        "ingested_at": box.now_iso(),
        "state": "stored",
        **fields,
    }
    box.catalog.add_recording(row, stored.header.raw)
    return row["id"]


def import_file(
    box: Box,
    path: Path,
    *,
    camera: str,
    officer: str,
    start: datetime,
    end: datetime | None = None,
    pre_record_s: int | None = None,
    post_record_s: int | None = None,
    allow_duplicate: bool = False,
    actor: str = "system",
) -> Imported:
    """Encrypt a plain file into the vault while reading it (no plaintext copy) and catalog it."""
    path = Path(path)
    if not path.is_file():
        raise KluisError(f"{path}: not a file")
    fingerprint = fingerprint_file(path, bytes.fromhex(box.catalog.required_meta("fingerprint_key")))
    earlier = box.catalog.find_by_fingerprint(fingerprint)
    if earlier and not allow_duplicate:
        return Imported(path, earlier["id"], duplicate=True)
    if end is None:
        duration = probe_duration(path)
        if duration is None:
            raise KluisError(f"{path}: not a video whose length can be read; give --end")
        end = start + timedelta(seconds=duration)
    if end < start:
        raise KluisError(f"{path}: ends before it starts")
    room = space.reserve(box, path.stat().st_size, path.name)
    encryptor = Encryptor(box.recipients(), chunk_size=box.settings.storage.chunk_size)
    writer = box.vault.writer()
    with ThreadPoolExecutor(max_workers=1) as asking:
        clock_synced = asking.submit(timesync.ingest_flag)  # may run a command: asked while the file is sealed
        try:
            writer.write(encryptor.header.raw)
            with open(path, "rb") as src:
                for sealed in encryptor.chunks(src):
                    writer.write(sealed)
        except BaseException:
            writer.abort()
            room.release()
            raise
        try:
            stored = writer.commit()
        finally:
            room.release()
    recording_id = catalog_stored(
        box,
        stored,
        {
            "camera_serial": camera,
            "officer": officer,
            "start_time": to_iso(start),
            "end_time": to_iso(end),
            "camera_start_time": to_iso(start),
            "clock_offset_s": 0.0,
            "pre_record_s": pre_record_s,
            "post_record_s": post_record_s,
            "source": "import",
            "source_ref": path.name,
            "fingerprint": fingerprint,
            "clock_synced": clock_synced.result(),
        },
        actor=actor,
    )
    return Imported(path, recording_id, duplicate=False)


def set_reason(box: Box, recording: dict, reason: str, warnings: int | bool | None, *, actor: str,
               text: str | None = None, client: str | None = None) -> recording_reasons.Given:
    """Why the officer started recording (a reason of [reasons], with its text where it asks for one) and
    how many warnings were given first (None: not said; a bool counts as one or none), set after the shift
    by the officer or the team leader. Checked (recording_reasons.ReasonError naming the field), then
    stored with its 'reason_set' entry (and what it was before) in one transaction. Shows no footage:
    it is not a purpose to view the recording."""
    given = recording_reasons.check(recording_reasons.current(box), reason, text, warnings)
    with box.catalog.transaction():
        row = box.catalog.get_recording(recording["id"])
        if row["state"] != "stored":
            raise KluisError(f"recording {row['id']} is being deleted")
        if row.get("derived_from"):
            raise KluisError(f"recording {row['id']} is a redacted copy: its reason is its original's")
        box.catalog.db.execute(
            "UPDATE recordings SET reason = ?, reason_text = ?, warnings = ?, warning_given = ? WHERE id = ?",
            [given.reason, given.text, given.warnings, given.warning_given, row["id"]])
        audit.record(box.catalog, actor=actor, action="reason_set", recording_id=row["id"], client=client,
                     clock=box.clock,
                     details={"reason": given.reason, "text": given.text, "warnings": given.warnings,
                              "warning_given": given.warning_given, "before": row.get("reason"),
                              "before_warnings": row.get("warnings")})
        statistics.refresh(box.catalog, row["id"])  # last: it reads the row as this function left it
    return given


@dataclass(frozen=True)
class Problem:
    recording_id: str
    what: str


def verify(box: Box, identity: PrivateKey | None = None) -> list[Problem]:
    """Check every stored recording: blob present and its hash right; with the private key also every
    chunk's authentication tag. Like `restic check`: lists what is wrong, changes nothing."""
    problems = []
    for recording in box.catalog.list_recordings():
        try:
            header_raw = box.catalog.header_of(recording["id"])
        except KluisError:
            problems.append(Problem(recording["id"], "wrapped file key missing"))
            continue
        if identity is None:
            what = box.vault.check(recording["stored_path"], header_raw, recording["sha256"])
        else:
            what = footage.check_chunks(box, identity, recording, header_raw)
        if what:
            problems.append(Problem(recording["id"], what))
    return problems
