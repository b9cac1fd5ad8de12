"""The box's side of archive sync: enrollment, the outbox, streamed resumable upload, requisitions,
audit checkpoints, status. The box always dials out; a pass never blocks the box on the network.

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
import hashlib
import json
import logging
import random
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from nacl.public import PrivateKey

from appliance import audit
from appliance.box import Box
from appliance.config_models import parse_window
from appliance.container import parse_header
from appliance.errors import KluisError

from .link import Exchange, Link, Refused, SyncError, Unreachable
from .protocol import API, CHUNK_SIZE, ProtocolError, box_id_of, sign_request, sha256_hex, verify_receipt
from appliance.audit import canonical

log = logging.getLogger("kluis.sync")

META_ARCHIVE = "sync_archive"
META_LAST_PASS = "sync_last_pass"
PIECE = 64 * 1024  # pacing granularity of the bandwidth limit
BLOCK = 1024 * 1024  # one read
STATES = ("needs_rewrap", "queued", "sending", "failing", "sent")


# Enrollment ---------------------------------------------------------------------------------------------

def enrollment(box: Box) -> dict | None:
    text = box.catalog.get_meta(META_ARCHIVE)
    return json.loads(text) if text else None


def _url(box: Box, enrolled: dict) -> str:
    return (box.settings.sync.archive_url or enrolled["url"]).rstrip("/")


def _signed_headers(box: Box, box_id: str, method: str, path: str, body: bytes) -> dict:
    headers = sign_request(_signing_key(box), box_id, method, path, sha256_hex(body), box.clock())
    headers["Content-Type"] = "application/json"
    return headers


def _signing_key(box: Box):
    """The box's signing key, read once per Box (not once per 4 MiB part)."""
    key = getattr(box, "_sync_signing_key", None)
    if key is None:
        key = box._sync_signing_key = box.signing_key()
    return key


def parse_token(token: str) -> tuple[str, str]:
    secret, _, fingerprint = token.strip().rpartition(".")
    fingerprint = fingerprint.replace(":", "").lower()
    if not secret or len(fingerprint) != 64 or any(c not in "0123456789abcdef" for c in fingerprint):
        raise KluisError("that is not an enrollment token (from `kluis archive token`)")
    return secret, fingerprint


async def enroll(box: Box, url: str, token: str, actor: str = "system") -> dict:
    """Enroll at the archive: pin its certificate and keys, and make the archive a recipient of every
    recording sealed from now on (cameras paired after this provision it too)."""
    secret, fingerprint = parse_token(token)
    if not url.startswith("https://"):
        raise KluisError("the archive URL must start with https://")
    base = url.rstrip("/")
    signing = box.signing_key()
    box_id = box_id_of(bytes(signing.verify_key))
    body = canonical({"token": secret, "name": box.settings.box.name,
                      "signing_key": bytes(signing.verify_key).hex(), "public_key": bytes(box.public_key).hex()})
    try:
        info = await Link(base, fingerprint).request("POST", f"{API}/enroll",
                                                     _signed_headers(box, box_id, "POST", f"{API}/enroll", body), body)
    except SyncError as exc:
        raise KluisError(f"enrollment failed: {exc}") from None
    if info.get("box_id") != box_id:
        raise KluisError("the archive answered for another box")
    enrolled = {"url": base, "cert_sha256": fingerprint, "box_id": box_id, "archive_id": info["archive_id"],
                "archive_name": info["name"], "public_key": info["public_key"], "signing_key": info["signing_key"],
                "enrolled_at": box.now_iso()}
    with box.catalog.transaction():
        box.catalog.set_meta(META_ARCHIVE, json.dumps(enrolled))
        extra = json.loads(box.catalog.get_meta("extra_recipients", "[]"))
        if info["public_key"] not in extra:
            box.catalog.set_meta("extra_recipients", json.dumps(extra + [info["public_key"]]))
        audit.record(box.catalog, actor=actor, action="settings_change", clock=box.clock,
                     details={"sync": "enrolled", "archive": info["archive_id"], "url": base,
                              "cert_sha256": fingerprint})
    return enrolled


# The outbox ---------------------------------------------------------------------------------------------

def _has_table(box: Box, name: str) -> bool:
    return box.catalog.db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                                  [name]).fetchone() is not None


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
    if enrollment(box) is None or not _has_table(box, "holds"):
        return 0
    central = box.settings.sync.central_purposes
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
    if not _has_table(box, "holds"):
        return []
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
    holds = []
    if _has_table(box, "holds"):
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
            "url": _url(box, enrolled), "archive_id": enrolled["archive_id"], "name": enrolled["archive_name"],
            "box_id": enrolled["box_id"], "cert_sha256": enrolled["cert_sha256"],
            "enrolled_at": enrolled["enrolled_at"]},
        "window": cfg.window or None,
        "bandwidth_kbps": cfg.bandwidth_kbps or None,
        "counts": counts,
        "outbox": rows,
        "last_pass": json.loads(last) if last else None,
    }


# Pacing, windows, backoff ---------------------------------------------------------------------------------

class Pacer:
    """Holds the upload to `rate` bytes per second on average (0: no limit)."""

    def __init__(self, rate: float):
        self.rate = rate
        self.start = 0.0
        self.sent = 0

    async def take(self, n: int) -> None:
        if not self.rate:
            return
        now = time.monotonic()
        if now > self.start + self.sent / self.rate + 1.0:  # idle for a while: no burst credit
            self.start, self.sent = now, 0
        self.sent += n
        due = self.start + self.sent / self.rate
        if due > now:
            await asyncio.sleep(due - now)


def in_window(window: str, moment: datetime, tz_name: str) -> bool:
    """Is `moment` inside a daily window "HH:MM-HH:MM" (local time; may wrap past midnight)?"""
    if (span := parse_window(window)) is None:
        return True
    first, last = span
    now = moment.astimezone(ZoneInfo(tz_name)).time()
    return first <= now < last if first <= last else (now >= first or now < last)


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
        self.base = _url(box, self.enrolled) if self.enrolled else ""
        self.link = Link(self.base, self.enrolled["cert_sha256"]) if self.enrolled else None
        self.result: PassResult | None = None

    async def call(self, method: str, path: str, value: Any = None) -> dict:
        body = canonical(value) if value is not None else b""
        return await self.link.request(method, path, _signed_headers(self.box, self.box_id, method, path, body), body)

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
        """The box's newest signed checkpoint, with the hash of the entry the archive saw last, so that
        the archive notices a log that went backwards or was rewritten."""
        catalog = self.box.catalog
        cp = audit.checkpoint(catalog, self.box.signing_key(), clock=self.box.clock) or audit.latest_checkpoint(catalog)
        if cp is None:
            return
        last = await self.call("GET", f"{API}/checkpoints/last")
        prior = None
        if last.get("count") is not None:
            seen = int(last["count"])
            row = catalog.db.execute("SELECT hash FROM audit_log WHERE seq = ?", [seen]).fetchone()
            prior = {"count": seen, "hash": audit.GENESIS if seen == 0 else (row[0] if row else None)}
        answer = await self.call("POST", f"{API}/checkpoints", {"checkpoint": cp, "prior": prior})
        self.result.checkpoint = {"count": cp["count"], "accepted": answer.get("accepted"),
                                  "alert": answer.get("alert")}

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
                self._set(row["recording_id"], state="failing", last_error=str(exc))
                self.result.failed[row["recording_id"]] = str(exc)
                log.warning("sync of %s failed: %s", row["recording_id"], exc)
                if isinstance(exc, Unreachable):
                    break  # the archive is gone for now: the next pass tries the rest

    def _set(self, recording_id: str, **values) -> None:
        sets = ", ".join(f"{k} = ?" for k in values)
        self.box.catalog.db.execute(f"UPDATE sync_outbox SET {sets} WHERE recording_id = ?",
                                    [*values.values(), recording_id])

    async def upload(self, row: dict, deadline: float) -> None:
        box, rid = self.box, row["recording_id"]
        recording = box.catalog.get_recording(rid)
        header = row["header"] or box.catalog.header_of(rid)
        metadata = metadata_for(box, rid)
        start = {"recording_id": rid, "sha256": row["sha256"], "size": row["size"], "metadata": metadata}
        self._set(rid, state="sending", last_attempt_at=box.now_iso(), attempts=row["attempts"] + 1)
        audit.record(box.catalog, actor="system", action="sync_send", recording_id=rid, clock=box.clock,
                     details={"archive": self.enrolled["archive_id"], "sha256": row["sha256"], "size": row["size"],
                              "reason": row["reason"]})
        attempt = conflicts = 0
        while True:
            try:
                answer = await self.call("POST", f"{API}/uploads", start)
                offset = int(answer["offset"])
                if answer["state"] != "complete":
                    await self._send_stream(rid, row, header, recording["stored_path"], offset)
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

    async def _send_stream(self, rid: str, row: dict, header: bytes, stored_path: str, offset: int) -> None:
        """The rest of the container from `offset` in one streamed request (sync/protocol.py), sent by a
        worker thread (sync/link.py): the event loop (web UI, offload) never waits on the disk or the
        network. From offset 0 the signed hash of the range is the container's own, known from the
        catalog; a resumed range is hashed first (one read of what is left)."""
        size, sha = row["size"], row["sha256"]
        with self.box.vault.open_payload(stored_path) as payload:
            claimed = sha if offset == 0 else await asyncio.to_thread(_hash_range, header, payload, offset, size)
            path = f"{API}/uploads/{sha}/stream?offset={offset}"
            headers = sign_request(_signing_key(self.box), self.box_id, "PUT", path, claimed, self.box.clock())
            headers["Content-Type"] = "application/octet-stream"
            acks = _Acks(self, f"{API}/uploads/{sha}", offset, self.chunk_size)
            progress = asyncio.ensure_future(self._progress(rid, acks))
            try:
                answered = await self.link.stream(
                    "PUT", path, headers, size - offset,
                    lambda exchange: self._pieces(exchange, acks, header, payload, offset, size))
            finally:
                progress.cancel()
                await acks.close()
        if int(answered["offset"]) != size:  # the archive holds another offset: ask again
            raise Refused(409, f"archive is at offset {answered['offset']}, not {size}")
        self._set(rid, sent_bytes=size)

    async def _progress(self, rid: str, acks: "_Acks") -> None:
        """What the archive has, for the UI, about once a second while a stream runs."""
        while True:
            await asyncio.sleep(1.0)
            self._set(rid, sent_bytes=acks.acked)

    def _pieces(self, exchange: Exchange, acks: "_Acks", header: bytes, payload, offset: int, size: int):
        """The body, in the sending thread: blocks of the container cut into pieces. Before a piece the
        event loop is asked to keep the window (at most a chunk beyond what the archive wrote) and the
        bandwidth limit, when either may hold it back."""
        step = PIECE if self.pacer.rate else self.piece
        while offset < size:
            block = memoryview(_read_container(header, payload, offset, min(BLOCK, size - offset)))
            for pos in range(0, len(block), step):
                piece = block[pos:pos + step]
                end = offset + pos + len(piece)
                if self.pacer.rate or acks.must_allow(end):
                    exchange.on_loop(self._admit(acks, end, len(piece)))
                self.result.bytes_sent += len(piece)
                yield piece
            offset += len(block)

    async def _admit(self, acks: "_Acks", end: int, n: int) -> None:
        await acks.allow(end)
        await self.pacer.take(n)

    def _keep_receipt(self, rid: str, row: dict, receipt: dict | None, metadata: dict) -> None:
        try:
            fields = verify_receipt(receipt or {}, bytes.fromhex(self.enrolled["signing_key"]))
        except ProtocolError as exc:
            raise SyncError(str(exc)) from None
        expected = {"archive": self.enrolled["archive_id"], "box": self.box_id, "recording_id": rid,
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
            self._set(rid, state="sent", sent_bytes=row["size"], last_error=None,
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
            self._set(row["recording_id"], metadata_sent=digest)


class _Acks:
    """How much of a stream the archive has written, followed on a second connection while the stream
    runs (GET uploads/{sha256}/progress: a line per MiB written, and when writing pauses). The box keeps
    at most `window` bytes beyond that in flight: what a cut link loses (in socket buffers on the way,
    which the kernel lets grow to many MiB) stays under one chunk, as with parts."""

    def __init__(self, syncer: "Syncer", path: str, acked: int, window: int):
        self.syncer, self.path, self.acked, self.window = syncer, path, acked, window
        self.following: asyncio.Task | None = None
        self.error: SyncError | None = None
        self._moved = asyncio.Event()

    def _heard(self, answer: dict) -> None:
        self.acked = max(self.acked, int(answer["offset"]))
        self._wake(None)

    def _wake(self, error: SyncError | None) -> None:
        self.error = error
        self._moved.set()
        self._moved = asyncio.Event()

    async def _follow(self) -> None:
        """Follow the feed; it ends with its stream (or answers once when the archive has not opened the
        stream yet): follow it again, soon at first, then less often."""
        syncer, pause = self.syncer, 0.005
        while True:
            path = self.path + "/progress"
            try:
                await syncer.link.follow(path, _signed_headers(syncer.box, syncer.box_id, "GET", path, b""),
                                         self._heard)
            except SyncError as exc:  # the stream itself will tell; raised below if we must wait on it
                self._wake(exc)
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.5)

    def must_allow(self, end: int) -> bool:
        """Whether bytes up to `end` need allow() first (asked by the sending thread, to spare a hop
        to the event loop per piece): the window is full, or it is time to start following."""
        return end - self.acked > (self.window if self.following is not None else self.window // 2)

    async def allow(self, end: int) -> None:
        """Wait until handing over bytes up to `end` keeps the window; start following the archive's
        progress from half of it."""
        if end - self.acked > self.window // 2 and self.following is None:
            self.following = asyncio.ensure_future(self._follow())
        while end - self.acked > self.window:
            if self.error is not None:
                raise self.error
            await self._moved.wait()

    async def close(self) -> None:
        if self.following is not None:
            self.following.cancel()
            await asyncio.gather(self.following, return_exceptions=True)


def _hash_range(header: bytes, payload, offset: int, size: int) -> str:
    """SHA-256 of container bytes [offset, size): the signed hash of a resumed stream."""
    digest = hashlib.sha256()
    while offset < size:
        block = _read_container(header, payload, offset, min(BLOCK, size - offset))
        digest.update(block)
        offset += len(block)
    return digest.hexdigest()


def _read_container(header: bytes, payload, offset: int, n: int) -> bytes:
    """Bytes [offset, offset+n) of the container header + payload, without building it whole. Past the
    header this is one read and no copy (here buffers of several MiB cost page faults on every use)."""
    head = header[offset:offset + n] if offset < len(header) else b""
    payload.seek(max(offset - len(header), 0))
    out = payload.read(n - len(head))
    if head:
        out = head + out
    if len(out) != n:
        raise KluisError("the stored recording is shorter than its catalog says (run kluis verify)")
    return out


# Requisitions ---------------------------------------------------------------------------------------------

def match_requisition(box: Box, req: dict) -> list[str]:
    """The box's recordings a requisition names: by recording id, or by camera/officer and time overlap."""
    if req.get("recording_id"):
        filters = [("id = ?", req["recording_id"])]
    else:
        filters = [("camera_serial = ?", req.get("camera_serial")), ("officer = ?", req.get("officer"))]
        if not any(value for _, value in filters):
            return []  # a requisition naming nothing matches nothing, never everything
        filters += [("end_time > ?", req.get("start_time")), ("start_time < ?", req.get("end_time"))]
    where = " AND ".join(["state = 'stored'"] + [cond for cond, value in filters if value])
    params = [value for _, value in filters if value]
    sql = f"SELECT id FROM recordings WHERE {where}"
    matched = [r[0] for r in box.catalog.db.execute(sql + " ORDER BY start_time, id", params)]
    box.catalog.db.execute(
        "INSERT OR REPLACE INTO sync_requisitions (id, fetched_at, details, matched) VALUES (?, ?, ?, ?)",
        [int(req["id"]), box.now_iso(), json.dumps(req), json.dumps(matched)])
    return matched


def place_requisition_holds(box: Box, req: dict, matched: list[str]) -> None:
    """A "requisition" hold (vordering OM, audited by retention) on each match, and into the outbox."""
    from appliance import retention

    for recording_id in matched:
        held = [h for h in retention.active_holds(box.catalog, recording_id)
                if h["purpose"] == "requisition" and h["case_ref"] == req["case_ref"]]
        if not held:
            retention.add_hold(box, recording_id, "requisition", req["case_ref"], actor="system")
        queue(box, recording_id, f"requisition:{int(req['id'])}")


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
