"""A redacted derivative into the vault: read the original through the gate, redact it on another
thread, seal the result as a new recording linked to its original and held for the request.

Plaintext never touches the disk: the original is read through the gate's reader
(appliance.footage), the derivative is muxed as fragmented MP4 into a `Pipe` in memory that the
container's Encryptor reads from on this thread.
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass
from typing import Callable

from .. import audit, footage, retention, statistics
from ..box import Box
from ..errors import KluisError
from .detectors import make_detector
from .pipe import Pipe
from .plan import Plan
from .transcode import Counts, redact_stream

# The purposes a redacted copy is made for: the requests of people who were filmed, and showing footage
# to others (police, prosecutor). Not training: that is the officer's own footage, unredacted.
PURPOSES = ("access_request", "objection", "complaint", "requisition", "police_report")


@dataclass(frozen=True)
class Redacted:
    recording_id: str   # the derivative
    original_id: str
    counts: Counts
    hold_id: int


def redact(box: Box, identity, recording_id: str, plan: Plan, *, actor: str, purpose: str, case_ref: str,
           reason: str = "", client: str | None = None, request_id: str | None = None, job_id: str | None = None,
           progress: Callable[[int, int], None] | None = None, cancelled: Callable[[], bool] | None = None,
           break_glass: bool = False) -> Redacted:
    """Make the redacted derivative of a recording and store it as a new recording: sealed to the same
    recipients as new recordings, linked to its original, held for `purpose` / `case_ref` (its retention
    follows the request), with the redaction log in the audit log. `identity` is the unlocked box key;
    `actor` must hold recordings.redact with the recording in scope (`break_glass`: the recovery key)."""
    from ..container import Encryptor
    from ..purposes import parse_purpose
    from .. import space
    from ..recordings import catalog_stored

    code = parse_purpose(purpose)
    case_ref = (case_ref or "").strip()
    if not case_ref:
        raise KluisError("a redaction needs a case reference (zaaknummer): the derivative is held for it")
    original = box.catalog.get_recording(recording_id)
    with space.reserve(box, original["size"], "the redacted copy"):  # given back however the copy ends
        # The gate commits 'redact_start' before the first byte of the original is decrypted.
        source = footage.open_for_redaction(
            box, actor, recording_id, code, case_ref, identity=identity, allowed=PURPOSES, action="redact_start",
            client=client, break_glass=break_glass,
            details={"job": job_id, "request": request_id, "plan": plan.as_log(), "reason": reason or None})
        detector = make_detector(box.settings.redaction) if plan.detect_faces else None
        encryptor = Encryptor(box.recipients(), chunk_size=box.settings.storage.chunk_size)
        writer = box.vault.writer()
        pipe = Pipe()
        outcome: dict = {}

        def produce() -> None:
            try:
                with source.open() as src:
                    outcome["counts"] = redact_stream(src, pipe, plan, progress=progress, detector=detector,
                                                      cancelled=cancelled)
            except BaseException as exc:  # handed to the consuming thread, raised there
                outcome["error"] = exc
                pipe.break_()
            finally:
                pipe.close_writer()

        producer = threading.Thread(target=produce, name="kluis-redact", daemon=True)
        producer.start()
        try:
            writer.write(encryptor.header.raw)
            for sealed in encryptor.chunks(pipe):
                writer.write(sealed)
            producer.join()
            if "error" in outcome:
                raise outcome["error"]
        except BaseException as exc:
            pipe.break_()
            producer.join()
            writer.abort()
            error = outcome.get("error", exc)
            with box.catalog.transaction():
                audit.record(box.catalog, actor=actor, action="redact_failed", recording_id=recording_id,
                             purpose=code, case_ref=case_ref, client=client, clock=box.clock,
                             details={"job": job_id, "error": str(error)[:500]})
            if error is not exc:
                raise error from None
            raise
        stored = writer.commit()
        counts: Counts = outcome["counts"]
        now = box.now_iso()
        fields = {k: original.get(k) for k in ("camera_serial", "officer", "team", "start_time", "end_time",
                                               "camera_start_time", "clock_offset_s", "pre_record_s", "post_record_s")}
        fields.update(source="redaction", source_ref=recording_id, derived_from=recording_id)
        # which detector with which settings made the copy (the redactions row says it in one line)
        log = {"derivative": None, "plan": plan.as_log(), "detector": detector.name if detector else None,
               "detector_settings": detector.settings() if detector else None, "counts": asdict(counts), "reason": reason or None, "request": request_id, "job": job_id}
        with box.catalog.transaction():
            derivative = catalog_stored(box, stored, fields, actor=actor, client=client)
            log["derivative"] = derivative
            box.catalog.db.execute(
                "INSERT INTO redactions (recording_id, original_id, created_by, created_at, purpose, case_ref, reason, "
                "request_id, detector, plan, counts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [derivative, recording_id, actor, now, code, case_ref, reason or None, request_id,
                 log["detector"], json.dumps(plan.as_log()), json.dumps(asdict(counts))])
            hold_id = retention.add_hold(box, derivative, code, case_ref, actor, client=client)
            audit.record(box.catalog, actor=actor, action="redact", recording_id=recording_id, purpose=code,
                         case_ref=case_ref, client=client, clock=box.clock, details=log)
            statistics.refresh(box.catalog, recording_id)
        return Redacted(derivative, recording_id, counts, hold_id)


def derivatives_of(catalog, recording_id: str) -> list[dict]:
    """The redacted derivatives made of a recording (newest first), with who made them and why."""
    return list(catalog.db.query(
        "SELECT d.recording_id AS id, d.created_by, d.created_at, d.purpose, d.case_ref, d.reason, d.counts, "
        "r.state FROM redactions d LEFT JOIN recordings r ON r.id = d.recording_id "
        "WHERE d.original_id = ? ORDER BY d.created_at DESC, d.recording_id", [recording_id]))


def redaction_of(catalog, derivative_id: str) -> dict | None:
    rows = list(catalog.db.query("SELECT * FROM redactions WHERE recording_id = ?", [derivative_id]))
    return rows[0] if rows else None


def default_case_ref(recording_id: str) -> str:
    """The case reference of a redaction that names none (and no request): the hold still needs one."""
    return f"redactie-{recording_id}"


def redaction_purpose(purpose: str) -> str:
    """The purpose's code, if a redacted copy is made for it (PURPOSES); else a one-line error."""
    from ..purposes import parse_purpose

    code = parse_purpose(purpose)
    if code not in PURPOSES:
        raise KluisError(f"a redacted copy is not made for {code}: choose one of {', '.join(PURPOSES)}")
    return code
