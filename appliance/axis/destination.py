"""What a W800 stores: users, devices, recording containers and their objects; and the moment a
container becomes catalogued recordings.

The evidence rules are those of dock offload:
- A clip is sealed into a Kluis container while it streams in (appliance.sealing: no plaintext on
  disk, public keys only) and is durable (fsync, rename, directory fsync) before the W800 hears 201.
- Nothing is visible before the container's Status is Complete. Then, in one catalog transaction, each
  clip becomes a recording with its 'ingest' audit entry; a crash before that commit leaves sealed
  blobs that a retried Complete catalogues, a crash after it leaves the recording complete.
- The W800 keeps a recording until every request for it succeeded and retries what failed, so a
  repeated PUT of the same clip is answered like the first (the same bytes: the same SHA-256 of what
  came), and a repeated Complete too.
- A clip's MD5 (Swift's ETag) is computed only when a client asks for it: when its PUT carries an ETag
  (a mismatch is 422, as in Swift) or the client is known to compare the answer's Etag with its own
  (spec.wants_md5). The Axis spec asks for no hash of a clip, and MD5 was ~30 % of the box's CPU per
  byte (docs/axis.md, "Hashes").

A clip of an encrypted system (`WantEncryption`) is decrypted in memory while it is sealed, with the
content key of its key object (transport.py). Should the clip come before its key object, its
ciphertext is staged durably as it came (it is useless without the key object, which is never written
to disk while a staged clip exists) and sealed the moment the key object arrives.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from .. import audit, recording_places, recordings, retention, space, teams
from ..dock import devices
from ..box import Box
from ..clock import to_iso
from ..container import parse_header
from ..errors import StorageFull
from ..sealing import PushSealer, Sealed
from ..durable import fsync_dir
from ..vault import Stored
from . import spec, transport
from .spec import AxisError

log = logging.getLogger("kluis.axis")

STAGE_BLOCK = 1024 * 1024


def officer_name(user: dict | None) -> str | None:
    """How an Axis user is named on a recording: "Name (UserID)" (the spec's advice: Name is not unique)."""
    if user is None:
        return None
    name, user_id = (user["name"] or "").strip(), (user["user_id"] or "").strip()
    if name and user_id:
        return f"{name} ({user_id})"
    return name or user_id or None


@dataclass
class Limits:
    max_uploads: int = 4            # clip uploads at once; more wait for a slot, then get 503 "busy, retry soon"
    queue_wait_s: float = 10.0      # how long a clip upload waits for a slot before that 503
    max_clip_bytes: int = 8 << 30   # a clip larger than this is never storable (400)
    reserve_bytes: int = 512 << 20  # [storage] reserve_mb: 507 before free space would drop below it


class Destination:
    """The content destination of one box. Lives in the event loop's thread (the catalog is used
    there only); clip bytes are sealed on worker threads."""

    def __init__(self, box: Box, limits: Limits | None = None):
        self.box = box
        self.limits = limits or Limits(reserve_bytes=box.settings.storage.reserve_mb << 20)
        self.uploads = 0
        self._freed: asyncio.Event | None = None  # set when an upload ends (made in the loop, on first use)
        self.stage_dir = box.vault.tmp / "axis"

    @property
    def rsa(self):
        return transport.transport_key(self.box.data_dir)

    # --- rows ------------------------------------------------------------------------------------------
    def _db(self):
        return self.box.catalog.db

    def recording(self, account: str, container: str) -> dict | None:
        rows = list(self._db().query("SELECT * FROM axis_recordings WHERE account = ? AND container = ?",
                                     [account, container]))
        return rows[0] if rows else None

    def object(self, account: str, container: str, name: str) -> dict | None:
        rows = list(self._db().query("SELECT * FROM axis_objects WHERE account = ? AND container = ? AND name = ?",
                                     [account, container, name]))
        return rows[0] if rows else None

    def objects(self, account: str, container: str, kind: str | None = None) -> list[dict]:
        sql = "SELECT * FROM axis_objects WHERE account = ? AND container = ?"
        params = [account, container]
        if kind:
            sql += " AND kind = ?"
            params.append(kind)
        return list(self._db().query(sql + " ORDER BY name", params))

    # --- users and devices -----------------------------------------------------------------------------
    def put_user(self, account: str, uuid: str, meta: dict) -> bool:
        """A W800 user (Users/<uuid>); True when new."""
        return self._put_member("axis_users", "uuid", account, uuid,
                                {"name": meta.get("name"), "user_id": meta.get("userid")}, meta,
                                officer_name({"name": meta.get("name"), "user_id": meta.get("userid")}))

    def put_device(self, account: str, serial: str, meta: dict) -> bool:
        """A camera (Devices/<BWCSerialNumber>); True when new."""
        return self._put_member("axis_devices", "serial", account, serial,
                                {"name": meta.get("name"), "model": meta.get("model")}, meta, meta.get("model") or "?")

    def _put_member(self, table: str, key: str, account: str, value: str, fields: dict, meta: dict,
                    shown: str | None) -> bool:
        existed = self._db().execute(f"SELECT 1 FROM {table} WHERE account = ? AND {key} = ?",
                                     [account, value]).fetchone() is not None
        with self.box.catalog.transaction():
            self._db()[table].upsert({
                "account": account, key: value, **fields,
                "active": int(spec.parse_bool(meta.get("active")) is not False), "updated_at": self.box.now_iso(),
            }, pk=("account", key))
        log.info("axis %s: %s %s %s (%s)", account, table.removeprefix("axis_").rstrip("s"), value,
                 "updated" if existed else "registered", shown)
        return not existed

    def _user(self, account: str, uuid: str) -> dict | None:
        rows = list(self._db().query("SELECT * FROM axis_users WHERE account = ? AND uuid = ?", [account, uuid]))
        return rows[0] if rows else None

    def _device(self, account: str, serial: str) -> dict | None:
        rows = list(self._db().query("SELECT * FROM axis_devices WHERE account = ? AND serial = ?", [account, serial]))
        return rows[0] if rows else None

    # --- recording containers -----------------------------------------------------------------------------
    def _check_known(self, account: str, container: str) -> None:
        """A recording names a user and a device the W800 registered; otherwise 400 (the spec)."""
        match = spec.matched(spec.RECORDING_RE, container, "recording")
        if self._user(account, match.group("user")) is None:
            raise AxisError(400, f"recording {container}: unknown user {match.group('user')}")
        if self._device(account, match.group("serial")) is None:
            raise AxisError(400, f"recording {container}: unknown device {match.group('serial')}")

    def put_container(self, account: str, container: str) -> bool:
        """Create a recording container; True when it is new (201), False when it existed (202)."""
        self._check_known(account, container)
        if self.recording(account, container):
            return False
        with self.box.catalog.transaction():
            self._db()["axis_recordings"].insert({"account": account, "container": container,
                                                  "status": "transferring", "created_at": self.box.now_iso()})
        return True

    def _open_recording(self, account: str, container: str) -> dict:
        row = self.recording(account, container)
        if row is None:
            raise AxisError(404, f"no container {container}")
        return row

    def post_container(self, account: str, container: str, meta: dict) -> list[str]:
        """Update a recording's metadata (non-empty values replace, as the spec's example server does).
        Status Complete catalogues the recording; returns the recording ids it made (or already had)."""
        row = self._open_recording(account, container)
        merged = json.loads(row["meta"])
        # Status is the row's: it says Complete only once complete() catalogued the recording.
        merged.update({k: v for k, v in meta.items() if v != "" and k != "status"})
        for key in ("TriggerOnTime", "TriggerOffTime", "StartTime", "StopTime"):
            spec.parse_epoch(merged, key, required=False)  # a malformed time is refused now, not at Complete
        if row["status"] == "complete":
            if (meta.get("status") or "").lower() == "complete":
                return self._recording_ids(account, container)
            raise AxisError(403, f"recording {container} is complete: no more updates")
        with self.box.catalog.transaction():
            self._db().execute("UPDATE axis_recordings SET meta = ? WHERE account = ? AND container = ?",
                               [json.dumps(merged, sort_keys=True), account, container])
        if (meta.get("status") or "").lower() == "complete":
            return self.complete(account, container)
        return []

    def container_meta(self, account: str, container: str) -> dict:
        row = self._open_recording(account, container)
        return {**json.loads(row["meta"]), "status": "Complete" if row["status"] == "complete" else "Transferring"}

    def post_object(self, account: str, container: str, name: str, meta: dict) -> None:
        """Replace an object's metadata (Swift POST). A complete recording's objects stay as they are."""
        row = self.object(account, container, name)
        if row is None:
            raise AxisError(404, f"no object {container}/{name}")
        if self._open_recording(account, container)["status"] == "complete":
            if json.loads(row["meta"]) == meta:
                return
            raise AxisError(403, f"recording {container} is complete: stored evidence is not changed")
        if row["kind"] == "clip":
            for key in ("StartTime", "StopTime"):
                spec.parse_epoch(meta, key)
        kept = {k: v for k, v in json.loads(row["meta"]).items() if k.startswith("_")}
        with self.box.catalog.transaction():
            self._db().execute("UPDATE axis_objects SET meta = ? WHERE account = ? AND container = ? AND name = ?",
                               [json.dumps({**meta, **kept}, sort_keys=True), account, container, name])

    @staticmethod
    def object_meta(row: dict) -> dict:
        return json.loads(row["meta"])

    def _recording_ids(self, account: str, container: str) -> list[str]:
        return [r["recording_id"] for r in self.objects(account, container, "clip") if r["recording_id"]]

    # --- small objects: key objects, bookmarks, GNSS tracks -------------------------------------------------
    async def put_small(self, account: dict, container: str, name: str, kind: str, meta: dict, body: bytes) -> str:
        """Store a key object, bookmark or GNSS track; returns the MD5 (ETag) of the body."""
        row = self._open_recording(account["name"], container)
        if row["status"] == "complete":
            return self._same_or_refuse(account["name"], container, name, hashlib.md5(body).hexdigest())
        record = {"account": account["name"], "container": container, "name": name, "kind": kind,
                  "meta": json.dumps(meta, sort_keys=True), "size": len(body),
                  "md5": hashlib.md5(body).hexdigest(), "created_at": self.box.now_iso()}
        if kind == "key":
            content_key = transport.unwrap_key_object(body, self.rsa)  # refuses one that does not unwrap
            previous = self.object(account["name"], container, name)
            record["body"] = body
            self._save(record)
            try:
                await self._use_key(account["name"], container, name, content_key)
            except AxisError:  # it unwrapped but does not open what it is for: refused, not kept
                with self.box.catalog.transaction():
                    self._db().execute("DELETE FROM axis_objects WHERE account = ? AND container = ? AND name = ?",
                                       [account["name"], container, name])
                    if previous is not None:
                        self._db()["axis_objects"].insert(previous)
                raise
        elif kind == "bookmark":
            try:
                body.decode("utf-8")
            except UnicodeDecodeError:
                raise AxisError(400, "bookmark: its text is not UTF-8") from None
            record["body"] = body
            self._save(record)
        elif kind == "gnss":
            if account["encrypt"]:
                key_row = self._key_for(account["name"], container, name)
                if key_row is None:  # its key object comes later: keep the ciphertext (not footage) till then
                    record["body"], record["meta"] = body, json.dumps({**meta, "_encrypted": "1"}, sort_keys=True)
                    self._save(record)
                    return record["md5"]
                body = transport.decrypt_small(body, transport.unwrap_key_object(key_row["body"], self.rsa))
            record["body"] = json.dumps(spec.parse_gnss(body)).encode()
            self._save(record)
        return record["md5"]

    def _save(self, record: dict) -> None:
        with self.box.catalog.transaction():
            self._db()["axis_objects"].upsert(record, pk=("account", "container", "name"))

    def _same_or_refuse(self, account: str, container: str, name: str, md5: str) -> str:
        existing = self.object(account, container, name)
        if existing is not None and existing["md5"] == md5:
            return md5  # a retry of what was stored: the same answer
        raise AxisError(403, f"recording {container} is complete: stored evidence is not changed")

    def _key_for(self, account: str, container: str, name: str) -> dict | None:
        """The key object of an object (`<name>.key` or `<stem>.key`), if it has come."""
        stem = name.rsplit(".", 1)[0]
        for key_name in (f"{name}.key", f"{stem}.key"):
            row = self.object(account, container, key_name)
            if row is not None and row["body"] is not None:
                return row
        return None

    async def _use_key(self, account: str, container: str, key_name: str, content_key) -> None:
        """A key object came: seal a clip staged before it, or read a GNSS track that waited for it."""
        target = spec.matched(spec.KEY_RE, key_name, "key object").group("target")
        for obj in self.objects(account, container):
            if obj["kind"] == "key" or not (obj["name"] == target or obj["name"].rsplit(".", 1)[0] == target):
                continue
            if obj["kind"] == "clip" and obj["stored_sha256"] is None:
                await self._seal_staged(obj, content_key)
            elif obj["kind"] == "gnss" and json.loads(obj["meta"]).get("_encrypted"):
                points = spec.parse_gnss(transport.decrypt_small(obj["body"], content_key))
                meta = {k: v for k, v in json.loads(obj["meta"]).items() if k != "_encrypted"}
                self._save({**obj, "meta": json.dumps(meta, sort_keys=True), "body": json.dumps(points).encode()})

    # --- clips ----------------------------------------------------------------------------------------------
    async def admit(self) -> None:
        """Wait (up to `queue_wait_s`) for an upload slot: a W800 held a moment instead of told to come back
        later keeps the disk busy when a slot frees. Still no slot: 503, the spec's "busy, retry soon"."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.limits.queue_wait_s
        if self._freed is None:
            self._freed = asyncio.Event()
        while self.uploads >= self.limits.max_uploads:
            self._freed.clear()
            try:
                await asyncio.wait_for(self._freed.wait(), max(0.0, deadline - loop.time()))
            except asyncio.TimeoutError:
                raise AxisError(503, "busy: too many uploads at once, retry soon") from None

    def begin_clip(self, account: dict, container: str, name: str, meta: dict, length: int | None,
                   md5: bool = False) -> ClipUpload:
        """Admit one clip upload: 503 when too many run, 507 when the disk has no room for it, 400 when it
        can never be stored. The caller streams the body into the returned upload. `md5`: compute the
        clip's MD5 (the client sent an ETag, or checks the answer's: spec.wants_md5)."""
        self._check_known(account["name"], container)  # the spec's 400, before Swift's 404 for the container
        row = self._open_recording(account["name"], container)
        if length is not None and length > self.limits.max_clip_bytes:
            raise AxisError(400, f"clip {name}: {length} bytes, more than this box takes "
                                 f"({self.limits.max_clip_bytes}; [axis] max_clip_mb)")
        for key in ("StartTime", "StopTime"):
            spec.parse_epoch(meta, key)
        if self.uploads >= self.limits.max_uploads:
            raise AxisError(503, "busy: too many uploads at once, retry soon")
        needed = length if length is not None else STAGE_BLOCK * 64
        complete = row["status"] == "complete"
        key_row = self._key_for(account["name"], container, name) if account["encrypt"] else None
        earlier = self.object(account["name"], container, name)
        if earlier is not None and not earlier["received_sha256"] and earlier["md5"]:
            md5 = True  # a clip stored before SHA-256s were kept: a retry of it is known by its MD5
        content_key = transport.unwrap_key_object(key_row["body"], self.rsa) if key_row else None
        try:  # the box's one account of free space, shared with every other ingest (appliance/space.py)
            room = space.reserve(self.box, needed, f"clip {name}", reserve=self.limits.reserve_bytes)
        except StorageFull as exc:
            self.disk_full(needed, f"Axis clip {name} of {account['name']}", exc)
            raise AxisError(507, f"out of space: {exc}; the W800 keeps the recording") from None
        return ClipUpload(self, account["name"], container, name, meta, room, account["encrypt"],
                          content_key, complete, md5)

    def disk_full(self, needed: int, what: str, exc: StorageFull) -> None:
        """A clip refused (or cut off: ENOSPC) for lack of space: one alert per full-disk episode, not one
        per retry of the W800 (appliance/space.py)."""
        text = space.full(self.box, needed, f"{what} refused (507), the W800 keeps the recording: {exc}")
        if text is not None:
            devices.alert(self.box, "storage_full", text, action="offload_error")

    def _clip_done(self, upload: ClipUpload, sealed: Sealed | None, staged: Path | None, received: dict[str, str],
                   size: int) -> tuple[str | None, bool]:
        """Record a clip that is durable on disk; returns (its MD5 if known, True when it is new; False: a
        retry of the same bytes, answered like the first)."""
        existing = self.object(upload.account, upload.container, upload.name)
        if (existing is not None and same_bytes(existing, received)
                and (existing["stored_sha256"] or existing["recording_id"])):
            _discard(self.box, sealed, staged)  # the same clip again: keep the first copy
            return received.get("md5") or existing["md5"], False
        if upload.complete:
            _discard(self.box, sealed, staged)
            raise AxisError(403, f"recording {upload.container} is complete: stored evidence is not changed")
        if sealed is not None:
            stored_path = sealed.stored.stored_path
        elif staged is not None:
            stored_path = str(staged.relative_to(self.box.data_dir))
        else:
            raise ValueError(f"clip {upload.name}: neither sealed nor staged")
        record = {"account": upload.account, "container": upload.container, "name": upload.name, "kind": "clip",
                  "meta": json.dumps(upload.meta, sort_keys=True), "size": size, "md5": received.get("md5"),
                  "received_sha256": received["sha256"],
                  "stored_sha256": sealed.stored.sha256 if sealed else None,
                  "stored_path": stored_path,
                  "header": sealed.stored.header.raw if sealed else None, "body": None,
                  "created_at": self.box.now_iso()}
        self._save(record)
        if existing is not None and existing["stored_path"] and existing["stored_path"] != record["stored_path"]:
            _remove(self.box, existing["stored_path"])  # replaced before Complete (Swift PUT replaces)
        log.info("axis %s: clip %s/%s %s (%d bytes, SHA-256 %s)", upload.account, upload.container, upload.name,
                 "sealed" if sealed else "staged until its key object comes", size, received["sha256"])
        return received.get("md5"), True

    async def _seal_staged(self, obj: dict, content_key) -> None:
        """Seal a staged ciphertext clip now that its key has come; then remove the staged file."""
        staged = self.box.data_dir / obj["stored_path"]
        cbc = transport.CbcStream(content_key)
        # No digests: those of the bytes as they came were taken while they were staged.
        sealer = PushSealer(self.box, transform=cbc.update, final=cbc.finish)
        try:
            with open(staged, "rb") as src:
                while block := src.read(STAGE_BLOCK):
                    await sealer.push(block)
            sealed = await sealer.finish()
        except BaseException:
            await sealer.abort()
            raise
        self._save({**obj, "stored_sha256": sealed.stored.sha256, "stored_path": sealed.stored.stored_path,
                    "header": sealed.stored.header.raw, "size": sealed.size})
        _remove(self.box, str(staged.relative_to(self.box.data_dir)))
        log.info("axis %s: staged clip %s/%s sealed (%d bytes)", obj["account"], obj["container"], obj["name"],
                 sealed.size)

    # --- Complete ---------------------------------------------------------------------------------------------
    def complete(self, account: str, container: str) -> list[str]:
        """Catalogue a recording whose W800 says it is Complete: every clip a recording, in one transaction."""
        row = self._open_recording(account, container)
        meta = json.loads(row["meta"])
        clips = self.objects(account, container, "clip")
        if not clips:
            raise AxisError(400, f"recording {container}: Complete before any clip")
        waiting = [c["name"] for c in clips if c["stored_sha256"] is None]
        if waiting:
            raise AxisError(400, f"recording {container}: clip(s) {', '.join(waiting)} without their key object")
        self._check_known(account, container)
        match = spec.matched(spec.RECORDING_RE, container, "recording")
        user = self._user(account, match.group("user"))
        serial = match.group("serial")
        trigger_on = spec.parse_epoch(meta, "TriggerOnTime", required=False)
        trigger_off = spec.parse_epoch(meta, "TriggerOffTime", required=False)
        start = spec.parse_epoch(meta, "StartTime", required=False)
        stop = spec.parse_epoch(meta, "StopTime", required=False)
        pre = round((trigger_on - start).total_seconds()) if trigger_on and start and trigger_on >= start else None
        post = round((stop - trigger_off).total_seconds()) if trigger_off and stop and stop >= trigger_off else None
        categories = self._categories(account, container)
        places = self._places(account, container, meta)
        officer = officer_name(user)
        team = teams.officer_team(self.box.catalog, officer, axis_user_id=user["user_id"] if user else None)
        made = []
        with self.box.catalog.transaction():
            for part, clip in enumerate(clips, start=1):
                clip_meta = json.loads(clip["meta"])
                clip_start = spec.parse_epoch(clip_meta, "StartTime")
                clip_stop = spec.parse_epoch(clip_meta, "StopTime")
                if clip_stop < clip_start:
                    raise AxisError(400, f"clip {clip['name']}: stops before it starts")
                stored = self._stored(clip)
                fields = {
                    "camera_serial": serial, "officer": officer, "team": team,
                    "start_time": to_iso(clip_start), "end_time": to_iso(clip_stop),
                    "camera_start_time": to_iso(clip_start), "camera_end_time": to_iso(clip_stop),
                    # The W800 keeps its cameras on NTP time; the API carries no clock of its own to measure.
                    "clock_offset_s": 0.0,
                    "pre_record_s": pre if part == 1 else None, "post_record_s": post if part == len(clips) else None,
                    "source": "axis", "source_ref": f"{container}/{clip['name']}",
                }
                recording_id = recordings.catalog_stored(self.box, stored, fields)
                recording_places.add(self._db(), recording_id, places)
                if categories:
                    retention.set_category(self.box, recording_id, "system", add=categories, source="axis")
                self._db().execute(
                    "UPDATE axis_objects SET recording_id = ?, part = ?, header = NULL, stored_path = NULL "
                    "WHERE account = ? AND container = ? AND name = ?",
                    [recording_id, part, account, container, clip["name"]])
                made.append(recording_id)
            # key objects are not needed once every clip is sealed: none stays on the disk
            self._db().execute("UPDATE axis_objects SET body = NULL WHERE account = ? AND container = ? AND kind = 'key'",
                               [account, container])
            now = self.box.now_iso()
            self._db().execute("UPDATE axis_recordings SET status = 'complete', completed_at = ? "
                               "WHERE account = ? AND container = ?", [now, account, container])
            self._db().execute("UPDATE axis_devices SET last_recording = ? WHERE account = ? AND serial = ?",
                               [now, account, serial])
        log.info("axis %s: recording %s complete: %d clip(s) catalogued as %s", account, container, len(made),
                 ", ".join(made))
        return made

    def drop_abandoned(self, older_than_days: int | None = None) -> int:
        """Give up recordings that never became Complete within the retention term: their sealed clips
        and the header copies that open them are destroyed (audited as 'axis_abandoned'). Keeping them
        longer would keep footage past the term nobody decided on; a W800 still holding such a recording
        sends it again in full."""
        days = older_than_days if older_than_days is not None else self.box.settings.retention.default_days
        cutoff = to_iso(self.box.clock() - timedelta(days=days))
        stale = list(self._db().query("SELECT account, container, created_at FROM axis_recordings "
                                      "WHERE status = 'transferring' AND created_at < ?", [cutoff]))
        for row in stale:
            objs = self.objects(row["account"], row["container"])
            paths = [o["stored_path"] for o in objs if o["kind"] == "clip" and o["stored_path"]]
            with self.box.catalog.transaction():
                self._db().execute("DELETE FROM axis_objects WHERE account = ? AND container = ?",
                                   [row["account"], row["container"]])
                self._db().execute("DELETE FROM axis_recordings WHERE account = ? AND container = ?",
                                   [row["account"], row["container"]])
                audit.record(self.box.catalog, actor="system", action="axis_abandoned", clock=self.box.clock,
                             details={"account": row["account"], "container": row["container"],
                                      "created_at": row["created_at"], "clips": len(paths), "term_days": days})
            for path in paths:  # after the commit: the header copies are gone, the blobs open with no key
                _remove(self.box, path)
            log.warning("axis %s: recording %s was never completed within %d days: its %d clip(s) destroyed",
                        row["account"], row["container"], days, len(paths))
        return len(stale)

    def _stored(self, clip: dict) -> Stored:
        header = parse_header(clip["header"])
        payload = self.box.vault.payload_size(clip["stored_path"])
        return Stored(clip["stored_sha256"], header, clip["stored_path"], header.size + payload, True)

    def _places(self, account: str, container: str, meta: dict) -> list[tuple[str, float, float, float | None]]:
        """The container's trigger locations and GNSS track, for each of its recordings (the access
        request's search by place: appliance/recording_places.py)."""
        points: list[tuple[str, float, float, float | None]] = []
        for source, key in (("trigger_on", "triggeronlocation"), ("trigger_off", "triggerofflocation")):
            location = spec.parse_location(meta.get(key))
            if location is not None:
                points.append((source, *location, None))
        for track in self.objects(account, container, "gnss"):
            if track["body"] and not json.loads(track["meta"]).get("_encrypted"):
                points += [("track", p["lat"], p["lon"], p.get("seconds")) for p in json.loads(track["body"])]
        return points

    def _categories(self, account: str, container: str) -> list[str]:
        """The retention categories the recording's bookmarks name, those the box knows ([retention.categories]):
        every one of them, since the longest term of a recording's categories is its term."""
        known = retention.current_policy(self.box).categories
        names = (json.loads(bookmark["meta"]).get("categoryname")
                 for bookmark in self.objects(account, container, "bookmark"))
        return sorted({name for name in names if isinstance(name, str) and name in known})


def same_bytes(row: dict, received: dict[str, str]) -> bool:
    """Whether a stored clip row holds the bytes that just came: the same SHA-256 (or, for a row from
    before the SHA-256 was kept, the same MD5: begin_clip then asks for one)."""
    if row["received_sha256"]:
        return row["received_sha256"] == received["sha256"]
    return bool(row["md5"]) and row["md5"] == received.get("md5")


def _discard(box: Box, sealed: Sealed | None, staged: Path | None) -> None:
    if sealed is not None and not sealed.stored.existed:
        box.vault.remove(sealed.stored.stored_path)
    if staged is not None:
        staged.unlink(missing_ok=True)


def _remove(box: Box, stored_path: str) -> None:
    try:
        box.vault.remove(stored_path)
    except FileNotFoundError:
        pass


class ClipUpload:
    """One clip streaming in: sealed (plain, or decrypted with its key), or staged as ciphertext."""

    def __init__(self, destination: Destination, account: str, container: str, name: str, meta: dict,
                 room: space.Reservation, encrypted: bool, content_key, complete: bool, md5: bool):
        self.destination, self.box = destination, destination.box
        self.account, self.container, self.name, self.meta = account, container, name, meta
        self.complete = complete
        self.received = 0
        # Of the bytes as they come: SHA-256 always (what tells a retry of the same clip), MD5 when asked.
        self.digests = ("sha256", "md5") if md5 else ("sha256",)
        self._room: space.Reservation | None = room
        destination.uploads += 1
        self._staged: Path | None = None
        self._stage_file = None
        self._sealer: PushSealer | None = None
        if encrypted and content_key is None:
            destination.stage_dir.mkdir(parents=True, exist_ok=True)
            tag = hashlib.sha256(f"{account}/{container}/{name}/{os.urandom(8).hex()}".encode()).hexdigest()[:32]
            self._staged = destination.stage_dir / f"{tag}.cbc"
            self._stage_file = open(self._staged, "wb")
            self._hashes = [hashlib.new(name) for name in self.digests]
        elif encrypted:
            cbc = transport.CbcStream(content_key)
            self._sealer = PushSealer(self.box, transform=cbc.update, final=cbc.finish, digests=self.digests)
        else:
            self._sealer = PushSealer(self.box, digests=self.digests)

    def _release(self) -> None:
        if self._room is not None:
            self.destination.uploads -= 1
            self._room.release()
            self._room = None
            if self.destination._freed is not None:
                self.destination._freed.set()

    async def push(self, data: bytes) -> None:
        self.received += len(data)
        if self.received > self.destination.limits.max_clip_bytes:
            raise AxisError(400, f"clip {self.name}: larger than this box takes ([axis] max_clip_mb)")
        if self._sealer is not None:
            await self._sealer.push(data)
        else:
            assert self._stage_file is not None  # staging: there is no sealer
            try:
                self._stage_file.write(data)
            except OSError as exc:
                raise StorageFull(f"staging clip {self.name}: {exc.strerror}") from None
            for digest in self._hashes:
                digest.update(data)

    async def finish(self, expected_md5: str | None = None) -> tuple[str | None, bool]:
        """Make the clip durable and record it; returns (its MD5 when known, new). A client's ETag that
        does not match what arrived is 422, as in Swift (begin_clip was told to compute the MD5)."""
        try:
            if self._sealer is not None:
                sealed = await self._sealer.finish()
                self._sealer = None
                received, size, staged = sealed.received, sealed.size, None
            else:
                assert self._stage_file is not None and self._staged is not None  # staging: there is no sealer
                self._stage_file.flush()
                os.fsync(self._stage_file.fileno())
                self._stage_file.close()
                fsync_dir(self._staged.parent)
                received = {name: digest.hexdigest() for name, digest in zip(self.digests, self._hashes)}
                sealed, size, staged = None, self.received, self._staged
                self._staged = None
            if expected_md5 and expected_md5.strip('"').lower() != received.get("md5"):
                _discard(self.box, sealed, staged)
                raise AxisError(422, f"clip {self.name}: the body does not match its ETag")
            return self.destination._clip_done(self, sealed, staged, received, size)
        finally:
            self._release()

    async def abort(self) -> None:
        try:
            if self._sealer is not None:
                await self._sealer.abort()
            if self._stage_file is not None:
                self._stage_file.close()
            if self._staged is not None:
                self._staged.unlink(missing_ok=True)
        finally:
            self._release()
