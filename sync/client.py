"""The box's side of archive sync: one pass (the Syncer) and the service that runs passes. The box always
dials out; a pass never blocks the box on the network. Its parts: enrollment (sync/enrollment.py), the
outbox and status (appliance/outbox.py: the catalog's state, no network), requisitions
(sync/requisitions.py), the streamed upload of one container (sync/stream.py); this module re-exports
their public names for the CLI and the service.

Flow of one pass (`run_pass`): send the latest signed audit checkpoint; fetch open requisitions, hold
what matches (a "requisition" hold, audited by appliance.retention) and report; fill the outbox from
holds whose purpose needs central custody; stream each queued recording in one request from the offset
the archive has (sync/protocol.py; at most a chunk beyond what the archive wrote is in flight, so a cut
link costs less than that); store and audit the signed receipt; send metadata updates (holds released,
case references) for recordings the archive has.

Recordings sealed before enrollment do not name the archive as a recipient. Re-wrapping their header
needs the box's private key, so they wait in state 'needs_rewrap' until someone with a key slot is
logged in (`rewrap_pending`, called by the web UI with the unlocked identity, or `kluis sync rewrap`).
The re-wrapped header is sealed to the archive only, so it does not keep a recording readable on the box
after retention shreds it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any

from appliance import audit, audit_prunes, witness
from appliance.box import Box
from appliance.canonical import canonical
from appliance.errors import KluisError
from appliance.outbox import META_LAST_PASS, archive_url, enrollment, fill_outbox, in_window, metadata_for, \
    withdraw_stale

from .enrollment import signed_headers
from .link import Link, Refused, SyncError, Unreachable
from .protocol import API, CHUNK_SIZE, ProtocolError, sha256_hex, verify_receipt
from .requisitions import match_requisition, place_requisition_holds
from .stream import BLOCK, ContainerStream, Pacer

# Re-exported: the CLI and the service reach sync's box side through this module. The catalog state
# (outbox, receipts, re-wrapping) is appliance.outbox's; the web UI reads it there, without the network.
from appliance.outbox import receipt_for, rewrap_pending, status  # noqa: E402,F401
from .enrollment import enroll  # noqa: E402,F401
from .stream import Acks  # noqa: E402,F401

log = logging.getLogger("kluis.sync")


def backoff(attempt: int, base: float, cap: float) -> float:
    """Exponential backoff with full jitter: boxes behind one flaky uplink do not retry in step."""
    return random.uniform(0, min(cap, base * 2 ** attempt))


# One pass -------------------------------------------------------------------------------------------------

@dataclass
class PassResult:
    started_at: str
    finished_at: str = ""
    sent: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    needs_rewrap: int = 0
    queued: int = 0
    requisitions: dict[str, list[str]] = field(default_factory=dict)
    checkpoint: dict | None = None
    errors: list[str] = field(default_factory=list)
    bytes_sent: int = 0  # part bytes handed to the network, re-sent ones included
    skipped: str | None = None  # why nothing was attempted (not enrolled, outside the window)

    @property
    def ok(self) -> bool:
        """Everything that should have been sent was sent, and the archive was reached."""
        unenrolled = self.skipped is not None and self.skipped.startswith("not enrolled")
        return not (self.failed or self.errors or self.needs_rewrap or self.queued or unenrolled)

    def as_dict(self) -> dict:
        return {"started_at": self.started_at, "finished_at": self.finished_at, "ok": self.ok, "sent": self.sent,
                "failed": self.failed, "needs_rewrap": self.needs_rewrap, "queued": self.queued,
                "requisitions": self.requisitions, "checkpoint": self.checkpoint, "errors": self.errors,
                "bytes_sent": self.bytes_sent, "skipped": self.skipped}


class Syncer:
    """One pass against the archive. Tests and the bench set `chunk_size` (the most bytes in flight
    beyond what the archive has written) and the retry timings."""

    def __init__(self, box: Box, *, chunk_size: int = CHUNK_SIZE, retry_base_s: float = 0.5,
                 pass_retry_s: float | None = None, bandwidth_kbps: float | None = None):
        self.box = box
        cfg = box.settings.sync
        self.chunk_size = chunk_size
        self.piece = min(BLOCK, chunk_size // 4)  # handed to the network at a time (the window is in these)
        self.retry_base_s = retry_base_s
        self.retry_max_s = cfg.retry_max_s
        self.pass_retry_s = cfg.pass_retry_s if pass_retry_s is None else pass_retry_s
        kbps = cfg.bandwidth_kbps if bandwidth_kbps is None else bandwidth_kbps
        self.pacer = Pacer(float(kbps) * 1024)
        self.enrolled = enrollment(box)
        self.box_id = self.enrolled["box_id"] if self.enrolled else ""
        self.base = archive_url(box, self.enrolled) if self.enrolled else ""
        self.link = Link(self.base, self.enrolled["cert_sha256"]) if self.enrolled else None
        self.result: PassResult  # the pass under way: set by run(), read by what it calls

    async def call(self, method: str, path: str, value: Any = None) -> dict:
        body = canonical(value) if value is not None else b""
        if self.link is None:
            raise SyncError("this box is not enrolled at an archive")
        return await self.link.request(method, path, signed_headers(self.box, self.box_id, method, path, body), body)

    async def run(self, ignore_window: bool = False) -> PassResult:
        box = self.box
        result = self.result = PassResult(started_at=box.now_iso())
        try:
            if self.enrolled is None:
                result.skipped = "not enrolled (kluis sync enroll)"
                return result
            fill_outbox(box)  # local work: what waits shows in the status even outside the window
            withdraw_stale(box)
            if not ignore_window and not in_window(box.settings.sync.window, box.clock(),
                                                   box.settings.box.timezone):
                result.skipped = f"outside the sync window {box.settings.sync.window}"
                return result
            for step in (self.send_checkpoint, self.requisitions):
                try:
                    await step()
                except SyncError as exc:
                    result.errors.append(f"{step.__name__}: {exc}")
            fill_outbox(box)  # again: requisitions may have placed holds
            withdraw_stale(box)
            await self.upload_all()
            await self.update_metadata()
        finally:
            counts = dict(box.catalog.db.execute("SELECT state, COUNT(*) FROM sync_outbox GROUP BY state").fetchall())
            result.needs_rewrap = counts.get("needs_rewrap", 0)
            result.queued = sum(counts.get(s, 0) for s in ("queued", "sending", "failing"))
            result.finished_at = box.now_iso()
            box.catalog.set_meta(META_LAST_PASS, json.dumps(result.as_dict()))
        return result

    # audit checkpoints ---------------------------------------------------------------------------------
    async def send_checkpoint(self) -> None:
        """The box's newest signed checkpoint, with the hash of the entry the archive saw last and of the
        one it witnessed last, so that the archive notices a log that went backwards or was rewritten; the
        archive's witness statement that comes back is checked and kept (appliance.witness)."""
        catalog = self.box.catalog
        cp = audit.checkpoint(catalog, self.box.signing_key(), clock=self.box.clock) or audit.latest_checkpoint(catalog)
        if cp is None:
            return
        last = await self.call("GET", f"{API}/checkpoints/last")
        prior = self._prior(last.get("count"))
        seen = last.get("witnessed")
        witnessed_prior = self._prior(seen.get("count")) if isinstance(seen, dict) else None
        answer = await self.call("POST", f"{API}/checkpoints",
                                 {"checkpoint": cp, "prior": prior, "witnessed_prior": witnessed_prior})
        self.result.checkpoint = {"count": cp["count"], "accepted": answer.get("accepted"),
                                  "alert": answer.get("alert"), "witnessed": False}
        if answer.get("witness") is None:
            if answer.get("alert"):
                log.warning("the archive did not witness the audit checkpoint at %s entries: %s", cp["count"],
                            answer["alert"])
            return
        enrolled = self._enrollment()
        try:
            witness.keep(catalog, answer["witness"], enrolled["signing_key"],
                         {"archive": enrolled["archive_id"], "box": self.box_id, "count": cp["count"],
                          "head": cp["head"]}, self.box.now_iso())
        except witness.BadWitness as exc:
            raise SyncError(str(exc)) from None
        self.result.checkpoint["witnessed"] = True

    def _prior(self, count) -> dict | None:
        """{count, hash}: this log's hash of entry `count` (None when the archive holds nothing yet)."""
        if count is None:
            return None
        seen = int(count)
        row = self.box.catalog.db.execute("SELECT hash FROM audit_log WHERE seq = ?", [seen]).fetchone()
        if row is None and seen:
            # pruned (appliance/audit_term.py stops at the last witnessed entry): a pruning checkpoint's own
            # last entry is still vouched for by its hash
            boundary = audit_prunes.last_hash_at(self.box.catalog, seen)
            row = (boundary,) if boundary else None
        return {"count": seen, "hash": audit.GENESIS if seen == 0 else (row[0] if row else None)}

    # requisitions --------------------------------------------------------------------------------------
    async def requisitions(self) -> None:
        answer = await self.call("GET", f"{API}/requisitions")
        for req in answer.get("requisitions", []):
            matched = match_requisition(self.box, req)
            place_requisition_holds(self.box, req, matched)
            await self.call("POST", f"{API}/requisitions/{int(req['id'])}/report", {"matched": matched})
            with self.box.catalog.transaction():
                self.box.catalog.db.execute("UPDATE sync_requisitions SET reported_at = ? WHERE id = ?",
                                            [self.box.now_iso(), int(req["id"])])
                audit.record(self.box.catalog, actor="system", action="requisition_report", clock=self.box.clock,
                             case_ref=req.get("case_ref"),
                             details={"requisition": req["id"], "matched": matched,
                                      "legal_basis": req.get("legal_basis")})
            self.result.requisitions[str(req["id"])] = matched

    # uploads -------------------------------------------------------------------------------------------
    async def upload_all(self) -> None:
        rows = list(self.box.catalog.db.query(
            "SELECT * FROM sync_outbox WHERE state IN ('queued', 'sending', 'failing') ORDER BY queued_at, recording_id"))
        deadline = time.monotonic() + self.pass_retry_s
        for row in rows:
            try:
                await self.upload(row, deadline)
                self.result.sent.append(row["recording_id"])
            except KluisError as exc:  # SyncError, or the recording went away meanwhile
                self.update_outbox(row["recording_id"], state="failing", last_error=str(exc))
                self.result.failed[row["recording_id"]] = str(exc)
                log.warning("sync of %s failed: %s", row["recording_id"], exc)
                if isinstance(exc, Unreachable):
                    break  # the archive is gone for now: the next pass tries the rest

    def update_outbox(self, recording_id: str, **values) -> None:
        sets = ", ".join(f"{k} = ?" for k in values)
        self.box.catalog.db.execute(f"UPDATE sync_outbox SET {sets} WHERE recording_id = ?",
                                    [*values.values(), recording_id])

    async def upload(self, row: dict, deadline: float) -> None:
        box, rid = self.box, row["recording_id"]
        recording = box.catalog.get_recording(rid)
        header = row["header"] or box.catalog.header_of(rid)
        metadata = metadata_for(box, rid)
        start = {"recording_id": rid, "sha256": row["sha256"], "size": row["size"], "metadata": metadata}
        self.update_outbox(rid, state="sending", last_attempt_at=box.now_iso(), attempts=row["attempts"] + 1)
        audit.record(box.catalog, actor="system", action="sync_send", recording_id=rid, clock=box.clock,
                     details={"archive": self._enrollment()["archive_id"], "sha256": row["sha256"], "size": row["size"],
                              "reason": row["reason"]})
        attempt = conflicts = 0
        while True:
            try:
                answer = await self.call("POST", f"{API}/uploads", start)
                offset = int(answer["offset"])
                if answer["state"] != "complete":
                    await ContainerStream(self, row, header, recording["stored_path"], offset).send()
                    answer = await self.call("POST", f"{API}/uploads/{row['sha256']}/complete", {})
                break
            except Unreachable as exc:
                wait = backoff(attempt, self.retry_base_s, self.retry_max_s)
                if time.monotonic() + wait > deadline:
                    raise
                log.info("upload of %s interrupted (%s); retrying in %.1f s", rid, exc, wait)
                attempt += 1
                await asyncio.sleep(wait)
            except Refused as exc:
                conflicts += 1
                if exc.status == 409 and "offset" in str(exc) and conflicts <= 3:  # ask for the offset again
                    continue
                raise
        self._keep_receipt(rid, row, answer.get("receipt"), metadata)

    def _enrollment(self) -> dict:
        if self.enrolled is None:
            raise SyncError("this box is not enrolled at an archive")
        return self.enrolled

    def _keep_receipt(self, rid: str, row: dict, receipt: dict | None, metadata: dict) -> None:
        try:
            fields = verify_receipt(receipt or {}, bytes.fromhex(self._enrollment()["signing_key"]))
        except ProtocolError as exc:
            raise SyncError(str(exc)) from None
        expected = {"archive": self._enrollment()["archive_id"], "box": self.box_id, "recording_id": rid,
                    "sha256": row["sha256"], "size": row["size"]}
        wrong = [k for k, v in expected.items() if fields[k] != v]
        if wrong:
            raise SyncError(f"receipt names another {', '.join(wrong)}")
        box = self.box
        with box.catalog.transaction():
            box.catalog.db.execute(
                "INSERT OR REPLACE INTO sync_receipts (recording_id, archive, sha256, size, received_at, receipt, "
                "stored_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [rid, fields["archive"], fields["sha256"], fields["size"], fields["received_at"],
                 json.dumps(receipt), box.now_iso()])
            self.update_outbox(rid, state="sent", sent_bytes=row["size"], last_error=None,
                      metadata_sent=sha256_hex(canonical(metadata)))
            audit.record(box.catalog, actor="system", action="sync_receipt", recording_id=rid, clock=box.clock,
                         details={"archive": fields["archive"], "sha256": fields["sha256"],
                                  "received_at": fields["received_at"]})

    async def update_metadata(self) -> None:
        """Hold releases and new case references follow a recording the archive already has."""
        for row in list(self.box.catalog.db.query(
                "SELECT recording_id, sha256, metadata_sent FROM sync_outbox WHERE state = 'sent'")):
            try:
                metadata = metadata_for(self.box, row["recording_id"])
            except KluisError:  # deleted on the box since: the archive keeps what it had
                continue
            digest = sha256_hex(canonical(metadata))
            if digest == row["metadata_sent"]:
                continue
            try:
                await self.call("POST", f"{API}/recordings/{row['sha256']}/metadata", {"metadata": metadata})
            except SyncError as exc:
                self.result.errors.append(f"metadata of {row['recording_id']}: {exc}")
                continue
            self.update_outbox(row["recording_id"], metadata_sent=digest)


# The service ----------------------------------------------------------------------------------------------

class SyncTask:
    """`kluis serve`'s sync loop: a pass every interval_s inside the window; backoff with jitter while
    the archive cannot be reached."""

    def __init__(self, box: Box):
        self.box = box
        self.task = asyncio.create_task(self._loop(), name="kluis-sync")

    async def _loop(self) -> None:
        failures = 0
        while True:
            interval = self.box.settings.sync.interval_s
            try:
                result = await Syncer(self.box).run()
                unreachable = bool(result.errors) or any("unreachable" in e for e in result.failed.values())
                failures = failures + 1 if unreachable else 0
            except Exception:  # a bug in one pass must not end the box's sync for good
                log.exception("sync pass failed")
                failures += 1
            retry_max = self.box.settings.sync.retry_max_s
            wait = interval if failures == 0 else 1 + backoff(failures, 5.0, retry_max)
            await asyncio.sleep(wait)

    async def stop(self) -> None:
        self.task.cancel()
        try:
            await self.task
        except asyncio.CancelledError:
            pass


def start_sync(box: Box) -> SyncTask:
    return SyncTask(box)


def run_pass(box: Box, ignore_window: bool = True, **options) -> PassResult:
    """One pass now, from synchronous code (the CLI)."""
    return asyncio.run(Syncer(box, **options).run(ignore_window=ignore_window))
