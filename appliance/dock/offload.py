"""Pulling recordings from paired cameras: resumable, durable, verified, and only then deleted there.

For one docked camera (a "dock session"), at its proven address (claims.py):
  1. GET info: the camera is there (a probe: mDNS is slow to notice a camera that left), it names the
     paired key, and its clock against ours (the offset, stored per dock and applied to its recordings).
  2. GET manifest, box-signed; the camera's signature over it, and the echo of our fresh nonce, are
     checked: the signed challenge that proves the paired camera is there. Only then is it online, seen,
     docked, its clock offset stored (checked against the signed manifest's clock: info is unsigned).
  3. Per recording not yet held: download into a named vault writer, from the last durable byte after
     a cut or a crash (`Range: bytes=N-`); as soon as the container header is in, check that the box is a
     recipient and that the header metadata says what the signed manifest says; at the end the vault
     checks the container's sha256 against the manifest's. Commit the blob, then the catalog row.
  4. Only then DELETE on the camera, box-signed, naming the committed sha256; the camera's signed
     confirmation is kept in the log.
A recording already held (a crash between commit and delete) is just deleted on the camera: it is
stored once. Several cameras offload at once, at most `[dock] concurrency`; memory per download is a
read buffer of about a megabyte.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

import aiohttp

from .. import recordings, space
from ..box import Box
from ..clock import from_iso, to_iso
from ..errors import ContainerError, KluisError, StorageFull
from ..keys import SigningKeyUnavailable
from . import devices, protocol
from .claims import Claim, Claims, impostor_episode
from .client import CameraClient, DockError, NotThere, Offline, error_text, why_of
from .devices import Advert
from .episodes import EpisodeStore, Episodes
from .protocol import ProtocolError

log = logging.getLogger("kluis.offload")

BUFFER = 1024 * 1024  # bytes gathered before one write to the vault
SYNC_EVERY = 256 * 1024 * 1024  # fsync this often: bounds what a power cut loses (a kill -9 loses nothing)
BAD_RECORDING_RETRY_S = 600  # a refused recording is tried again after this long, not on every probe
OFFSET_TOLERANCE_S = 2.0  # the unsigned info's clock may differ this much (plus the exchange) from the signed


class Refused(KluisError):
    """The camera (or what it sent) is not trusted: an alert has been recorded (or is, by the manager)."""


# --- progress (read by the demo and the web UI) --------------------------------------------------------
@dataclass
class CameraProgress:
    serial: str
    state: str = "waiting"  # waiting, checking, offloading, done, offline, error, refused, storage_full
    message: str = ""
    recordings_total: int = 0  # in this dock session's manifest
    recordings_done: int = 0
    bytes_total: int = 0
    bytes_done: int = 0
    current: str | None = None  # recording id being downloaded
    stored: int = 0  # recordings stored since the service started
    started: float = field(default_factory=time.monotonic)
    updated: float = field(default_factory=time.monotonic)

    def set(self, **values) -> None:
        for key, value in values.items():
            setattr(self, key, value)
        self.updated = time.monotonic()

    def as_dict(self) -> dict:
        return asdict(self)


# --- the offload of one camera -----------------------------------------------------------------------
def held(box: Box, serial: str, entry: dict) -> dict | None:
    """The catalog row of a camera recording the box holds already (by camera id, or by hash)."""
    rows = list(box.catalog.db.query(
        "SELECT * FROM recordings WHERE (camera_serial = ? AND source = 'dock' AND source_ref = ?) OR sha256 = ?",
        [serial, entry["id"], entry["sha256"]]))
    return rows[0] if rows else None


def reserve_room(box: Box, incoming: int, what: str) -> space.Reservation:
    """Room for a download from its declared size (appliance/space.py), or StorageFull: offload pauses."""
    try:
        return space.reserve(box, incoming, what)
    except StorageFull as exc:
        raise StorageFull(f"{exc}; offload paused, cameras keep their recordings") from None


def catalog_fields(box: Box, serial: str, entry: dict, offset_s: float) -> dict:
    """The catalog columns of a camera recording: camera times as the camera said, box times corrected
    by this dock's clock offset, and the officer assigned at the (corrected) start."""
    camera_start, camera_end = from_iso(entry["start"]), from_iso(entry["end"])
    start = camera_start + timedelta(seconds=offset_s)
    end = camera_end + timedelta(seconds=offset_s)
    officer = devices.officer_at(box.catalog, serial, start) or entry.get("officer")
    return {
        "camera_serial": serial, "officer": officer, "start_time": to_iso(start), "end_time": to_iso(end),
        "camera_start_time": entry["start"], "camera_end_time": entry["end"], "clock_offset_s": offset_s,
        "pre_record_s": entry["pre_record_s"], "post_record_s": entry["post_record_s"],
        "source": "dock", "source_ref": entry["id"],
    }


class Offload:
    """One dock session with one camera."""

    def __init__(self, box: Box, client: CameraClient, device: dict, progress: CameraProgress,
                 semaphore: asyncio.Semaphore, skip: dict[tuple, float], docked: set[str],
                 alerts: Episodes | None = None):
        self.box = box
        self.alerts = alerts or Episodes()  # (serial, kind, address): one alert per episode
        self.docked = docked  # serials seen docked since they last went away: a dock is recorded once
        self.client = client
        self.device = device
        self.serial = device["serial"]
        self.progress = progress
        self.semaphore = semaphore
        self.skip = skip  # (serial, id, sha256) -> monotonic time until which it is not tried again
        self.needed = 0  # bytes the recording in hand still needs (to know when a full disk has room again)
        self._room: space.Reservation | None = None  # the download in hand's reservation
        self._room_from = 0  # the byte it was reserved from

    async def run(self) -> int:
        """Returns how many recordings were stored. Raises DockError (camera gone), Refused, StorageFull."""
        serial = self.serial
        self.progress.set(state="checking", message="")
        began = time.monotonic()
        try:
            info, box_now = await self.client.info()
        except DockError as exc:
            raise Offline(str(exc)) from None
        if info["serial"] != serial or info["camera_key"] != self.device["public_key"]:
            raise NotThere(f"{serial}: another device answers at its address {self.client.base}",
                           f"device at {self.client.base} answers as {info['serial']} with key {info['fp']}; "
                           f"paired {serial} has key {self.device['fingerprint']}: refused")
        try:
            manifest, signed_now = await self._challenge()
        except ProtocolError as exc:
            self._alert("bad_manifest", f"{serial}: manifest refused: {exc}")
            raise Refused(f"{serial}: {exc}") from None
        # Proven: the paired key signed our fresh nonce. Only now is the camera online, docked, its clock read.
        devices.touch(self.box, serial, model=info["model"], firmware=info["fw"])
        self.alerts.end((serial, "bad_manifest", self.device["address"]))
        camera_time = from_iso(info["camera_time"])
        offset_s = round((box_now - camera_time).total_seconds(), 3)
        signed_offset = round((signed_now - from_iso(manifest["camera_time"])).total_seconds(), 3)
        if abs(offset_s - signed_offset) > OFFSET_TOLERANCE_S + (time.monotonic() - began):
            log.warning("camera %s: the clock in its info (offset %.3f s) differs from the one it signed "
                        "(offset %.3f s): the signed one is kept", serial, offset_s, signed_offset)
            camera_time, offset_s = from_iso(manifest["camera_time"]), signed_offset
        devices.record_dock(self.box, serial, camera_time, offset_s, self.device["address"],
                            new_dock=serial not in self.docked)
        self.docked.add(serial)
        await self._push_settings(info)
        entries = sorted(manifest["recordings"], key=lambda e: (e["start"], e["id"]))
        now = time.monotonic()
        todo = [e for e in entries if self.skip.get((serial, e["id"], e["sha256"]), 0) <= now]
        self.progress.set(recordings_total=len(todo), recordings_done=0, bytes_done=0,
                          bytes_total=sum(e["size"] for e in todo))
        if not todo:
            self.progress.set(state="done", message="nothing to offload", current=None)
            return 0
        stored = 0
        async with self.semaphore:
            self.progress.set(state="offloading")
            for entry in todo:
                if await self._one(entry, offset_s):
                    stored += 1
                self.progress.set(recordings_done=self.progress.recordings_done + 1)
        self.progress.set(state="done", current=None, message=f"{stored} stored")
        return stored

    async def _challenge(self) -> tuple[dict, datetime]:
        """The signed manifest for a fresh nonce (the proof), and the box's clock at the exchange's middle."""
        t0, before = time.monotonic(), self.box.clock()
        manifest = await self.client.manifest()
        return manifest, before + timedelta(seconds=(time.monotonic() - t0) / 2)

    def _alert(self, kind: str, message: str) -> None:
        """An alert about this camera, once per episode (the same failure on every probe is one episode)."""
        if self.alerts.seen((self.serial, kind, self.device["address"])):
            devices.alert(self.box, kind, message, serial=self.serial, address=self.device["address"])

    async def _push_settings(self, info: dict) -> None:
        """Hand the camera newer settings (pre/post-record, officer) if the box holds a newer version."""
        version = int(self.device["settings_version"] or 0)
        if version <= info["settings_version"]:
            return
        settings = device_settings(self.box, self.device)
        try:
            await self.client.put_settings(settings)
            log.info("camera %s: settings version %d sent", self.serial, version)
        except (DockError, ProtocolError) as exc:
            log.warning("camera %s: settings not accepted: %s", self.serial, exc)

    async def _one(self, entry: dict, offset_s: float) -> bool:
        serial, rec_id = self.serial, entry["id"]
        row = held(self.box, serial, entry)
        if row is None:
            row = await self._download(entry, offset_s)
            if row is None:
                return False
            stored = True
        else:
            stored = False
            self.progress.set(bytes_done=self.progress.bytes_done + entry["size"])
        confirmation = await self.client.delete(rec_id, entry["sha256"])
        if confirmation is None:
            log.info("camera %s: recording %s was already deleted on the camera", serial, rec_id)
        else:
            log.info("camera %s: recording %s deleted on the camera (signed confirmation, camera time %s)",
                     serial, rec_id, confirmation["camera_time"])
        return stored

    async def _download(self, entry: dict, offset_s: float) -> dict | None:
        serial, rec_id, size = self.serial, entry["id"], entry["size"]
        writer = self.box.vault.writer(name=f"{serial}-{rec_id}", resume=True)
        if writer.received > size:
            writer.abort()
            writer = self.box.vault.writer(name=f"{serial}-{rec_id}")
        start = writer.received
        self.needed = size - start
        base_done = self.progress.bytes_done
        self.progress.set(current=rec_id, bytes_done=base_done + start)
        room: space.Reservation | None = None
        try:
            room = reserve_room(self.box, size - start, f"recording {rec_id} of {serial}")
            self._room, self._room_from = room, start
            if start:
                log.info("camera %s: resuming recording %s at byte %d of %d", serial, rec_id, start, size)
            header_checked = False
            if writer.header is not None:
                self._check_header(writer, entry)
                header_checked = True
            if start < size:
                async with self.client.recording(rec_id, start) as resp:
                    if resp.status not in (200, 206):
                        raise DockError(f"{serial}: GET recording {rec_id}: HTTP {resp.status}: "
                                        f"{error_text(await resp.content.read(4096))}")
                    if start and resp.status != 206:
                        raise DockError(f"{serial}: camera ignored the resume Range for {rec_id}")
                    header_checked = await self._stream(resp, writer, entry, base_done, header_checked)
            if writer.received != size:
                raise DockError(f"{serial}: recording {rec_id} cut off at byte {writer.received} of {size}")
            if not header_checked:
                self._check_header(writer, entry)
            stored = await asyncio.to_thread(writer.commit, entry["sha256"])
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            durable = await _keep(writer)
            raise DockError(f"{serial}: download of {rec_id} interrupted at byte {durable} "
                            f"({why_of(exc)}); will resume") from None
        except DockError:
            await _keep(writer)
            raise
        except (asyncio.CancelledError, StorageFull):
            self.needed = size - await _keep(writer)  # all of it when ENOSPC freed the part file
            raise
        except (ContainerError, Refused, ProtocolError) as exc:
            writer.abort()
            self._refuse(entry, str(exc))
            return None
        finally:
            if room is not None:
                room.release()  # committed (its bytes are on the disk now) or given up
            self._room = None
        fields = catalog_fields(self.box, serial, entry, offset_s)
        recording_id = recordings.catalog_stored(self.box, stored, fields)  # row + its 'ingest' audit entry
        self.progress.set(stored=self.progress.stored + 1)
        log.info("camera %s: recording %s stored as %s (%d bytes, %s, officer %s)", serial, rec_id,
                 recording_id, size, fields["start_time"], fields["officer"] or "unassigned")
        return self.box.catalog.get_recording(recording_id)

    async def _stream(self, resp: aiohttp.ClientResponse, writer, entry: dict, base_done: int,
                      header_checked: bool) -> bool:
        """Read the body into ~1 MiB buffers; while one is written and hashed on a thread, the next is
        read from the socket. Returns whether the container header has been checked."""
        size, got = entry["size"], writer.received
        buf, pending, unsynced = bytearray(), None, 0

        async def settle() -> None:
            nonlocal pending, header_checked
            if pending is not None:
                done, pending = pending, None
                await done
            if not header_checked and writer.header is not None:
                self._check_header(writer, entry)
                header_checked = True
            self.progress.set(bytes_done=base_done + writer.received)
            if self._room is not None:  # what is on the disk is no longer counted in flight
                self._room.wrote(writer.received - self._room_from)

        try:
            async for block in resp.content.iter_chunked(256 * 1024):
                got += len(block)
                if got > size:
                    raise Refused(f"{self.serial}: recording {entry['id']} is longer than the manifest says")
                buf += block
                if len(buf) >= BUFFER:
                    await settle()
                    pending = asyncio.ensure_future(asyncio.to_thread(writer.write, buf))
                    unsynced += len(buf)
                    buf = bytearray()  # the writer owns the old one until it returns
                    if unsynced >= SYNC_EVERY:
                        await settle()
                        await asyncio.to_thread(writer.sync)
                        unsynced = 0
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
            await settle()
            if buf:  # what arrived before the cut is good: keep it, so the resume starts after it
                await asyncio.to_thread(writer.write, buf)
            raise
        except BaseException:
            if pending is not None:  # never leave a write running on a writer about to be closed
                await asyncio.gather(pending, return_exceptions=True)
            raise
        await settle()
        if buf:
            await asyncio.to_thread(writer.write, buf)
            await settle()
        return header_checked

    def _check_header(self, writer, entry: dict) -> None:
        header = writer.header
        if bytes(self.box.public_key) not in header.recipients:
            raise Refused(f"recording {entry['id']} is not encrypted to this box")
        protocol.check_recording_metadata(header.metadata_json(), self.serial, entry)

    def _refuse(self, entry: dict, why: str) -> None:
        self.skip[(self.serial, entry["id"], entry["sha256"])] = time.monotonic() + BAD_RECORDING_RETRY_S
        devices.alert(self.box, "bad_recording", f"{self.serial}: recording {entry['id']} refused, nothing "
                      f"stored, the camera keeps it: {why}", serial=self.serial, address=self.device["address"])


async def _keep(writer) -> int:
    """After a failure: make what arrived durable for the resume, and close the file."""
    try:
        durable = await asyncio.to_thread(writer.sync)
        writer.close()
        return durable
    except (KluisError, OSError, ValueError):  # ValueError: the writer had already aborted (disk full)
        writer.abort()
        return 0


def device_settings(box: Box, device: dict) -> dict:
    """The settings message for a camera from its device row."""
    return protocol.build_settings(
        max(1, int(device["settings_version"] or 1)),
        pre_record_s=int(device["pre_record_s"] if device["pre_record_s"] is not None else 30),
        post_record_s=int(device["post_record_s"] if device["post_record_s"] is not None else 30),
        officer=device["officer"] if device["mode"] == "personal" else None,
        assignment=device["mode"],
    )


# --- the manager: every paired camera, all the time ----------------------------------------------------
class OffloadManager:
    """Starts a dock session for every paired camera that is (or may be) online: on an mDNS
    advertisement, and every `probe_interval_s` (the probe that notices a camera left). Sessions go to
    the camera's proven address only; an advert from elsewhere is a claim, proven by the signed
    challenge before the camera's row moves there (claims.py)."""

    def __init__(self, box: Box, concurrency: int | None = None, probe_interval_s: float | None = None,
                 retry_s: float | None = None):
        dock = box.settings.dock
        self.box = box
        self.semaphore = asyncio.Semaphore(concurrency or dock.concurrency)
        self.probe_interval_s = probe_interval_s or dock.probe_interval_s
        self.retry_s = retry_s or dock.retry_s
        self.progress: dict[str, CameraProgress] = {}
        self.skip: dict[tuple, float] = {}
        self.docked: set[str] = set()
        self._alert_pending: tuple[str, str, str] | None = None  # a full disk's alert the catalog did not take
        self._http: aiohttp.ClientSession | None = None
        self._sessions: dict[str, asyncio.Task] = {}
        self._not_before: dict[str, float] = {}
        self._last_problem: dict[str, str] = {}
        self._probe: asyncio.Task | None = None
        # (serial, kind, address): alerts of the sessions and claims, once per episode, also across a restart
        self.alerts = Episodes(store=EpisodeStore(box.catalog, "sessions"))
        self.claims = Claims(box, self.retry_s, alerts=self.alerts)
        self._challenges: dict[str, asyncio.Task] = {}

    async def start(self) -> None:
        read_s = self.box.settings.dock.read_timeout_s
        timeout = aiohttp.ClientTimeout(total=None, connect=min(5.0, read_s), sock_read=read_s)
        self._http = aiohttp.ClientSession(timeout=timeout, auto_decompress=False, read_bufsize=BUFFER,
                                           connector=aiohttp.TCPConnector(limit=64, force_close=True))
        self._probe = asyncio.create_task(self._probe_loop())

    async def stop(self) -> None:
        tasks = [t for t in [self._probe, *self._sessions.values(), *self._challenges.values()] if t]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._http:
            await self._http.close()

    @property
    def http(self) -> aiohttp.ClientSession:
        assert self._http is not None, "OffloadManager.start() first"
        return self._http

    def snapshot(self) -> dict[str, dict]:
        """Per camera its session's progress, and `impostors`: devices that claim to be it and failed."""
        return {serial: {**p.as_dict(), "impostors": self.claims.impostors(serial)}
                for serial, p in sorted(self.progress.items())}

    def on_device(self, row: dict) -> None:
        """Discovery saw a paired camera's advert (devices.seen: under "advert", the row unchanged)."""
        if not row["paired"]:
            return
        advert: Advert | None = row.get("advert")
        if advert is None or (advert.address, advert.port) == (row["address"], row["port"]):
            self.kick(row["serial"], now=True)
            return
        self.claims.add(row["serial"], advert.address, advert.port, advert)
        self.challenge(row["serial"])

    def challenge(self, serial: str) -> None:
        """Challenge the claims for `serial` that are due (one task per camera at a time)."""
        running = self._challenges.get(serial)
        if (running and not running.done()) or not self.claims.due(serial):
            return
        self._challenges[serial] = asyncio.create_task(self._challenge_claims(serial))

    async def _challenge_claims(self, serial: str) -> None:
        try:
            for claim in self.claims.due(serial):
                device = devices.find_device(self.box.catalog, serial)
                if not device or not device["paired"] or not device["public_key"]:  # (a USB camera has none)
                    return
                if (claim.address, claim.port) == (device["address"], device["port"]):
                    self.claims.drop(claim)  # it is the proven address (again): nothing to prove
                elif await self._prove(device, claim):
                    return
        except (KluisError, sqlite3.OperationalError) as exc:  # the catalog full or locked: next probe again
            log.error("camera %s: a claim of its address not checked: %s", serial, exc)

    async def _prove(self, device: dict, claim: Claim) -> bool:
        """Whether the paired key signs our fresh challenge at the claim's address; if so the camera moves
        there. A device that answers but cannot prove it is an impostor (claims.failed alerts)."""
        serial, proven = device["serial"], f"{device['address']}:{device['port']}"
        client = CameraClient(self.http, self.box, serial, claim.address, claim.port, camera_key=device["public_key"])
        try:
            info, _ = await client.info()
            if info["serial"] != serial or info["camera_key"] != device["public_key"]:
                self.claims.failed(claim, f"answers as {info['serial']} with key {info['fp']}", proven)
                return False
            await client.manifest()
        except DockError as exc:
            if exc.status is None:  # nothing answers there: not an impostor, maybe a camera on its way
                self.claims.unreachable(claim)
            else:
                self.claims.failed(claim, f"refuses the box's signed challenge ({exc})", proven)
            return False
        except ProtocolError as exc:
            self.claims.failed(claim, f"fails the box's signed challenge ({exc})", proven)
            return False
        self.claims.proven(claim, device["address"], device["port"])
        self._not_before.pop(serial, None)
        running = self._sessions.get(serial)
        if running is None or running.done():
            self.kick(serial, now=True)
        return True

    def kick(self, serial: str, now: bool = False) -> None:
        running = self._sessions.get(serial)
        if running and not running.done():
            return
        if not now and self._not_before.get(serial, 0) > time.monotonic():
            return
        self._sessions[serial] = asyncio.create_task(self._session(serial))

    async def _probe_loop(self) -> None:
        while True:
            if self.storage_full and space.room_back(self.box):  # reads the disk only; logs the end once
                self._not_before.clear()
                self._record_pending_alert()
            if not self.storage_full:
                for device in devices.paired_devices(self.box.catalog):
                    if device["address"] and device["port"]:
                        self.kick(device["serial"])
                    self.challenge(device["serial"])  # impostors still there; a moved camera's new address
            await asyncio.sleep(self.probe_interval_s)

    async def _session(self, serial: str) -> None:
        device = devices.find_device(self.box.catalog, serial)
        if not device or not device["paired"] or self.storage_full:
            return  # nothing is tried (and nothing written) while the disk is full
        progress = self.progress.setdefault(serial, CameraProgress(serial))
        try:
            client = CameraClient(self.http, self.box, serial, device["address"], device["port"],
                                  camera_key=device["public_key"])
        except SigningKeyUnavailable as exc:
            # The camera takes only requests the box signs: its recordings stay on it until the key is back.
            # Said once where the service starts, on the overview and by an alert; not once per camera and try.
            progress.set(state="error", message=str(exc), current=None)
            devices.set_status(self.box, serial, "waiting: the box's signing key did not unseal from the TPM2")
            self._not_before[serial] = time.monotonic() + max(self.retry_s, 300)
            return
        backoff = self.retry_s
        offload = Offload(self.box, client, device, progress, self.semaphore, self.skip, self.docked, self.alerts)
        try:
            await offload.run()
            self.alerts.end((serial, "protocol_error", device["address"]))  # proven there again: over
            self._problem(serial, None)
            devices.set_status(self.box, serial, "idle")
            backoff = 0
        except Offline as exc:
            self.docked.discard(serial)
            progress.set(state="offline", message=str(exc), current=None)
            if isinstance(exc, NotThere) and self.alerts.seen(impostor_episode(serial, device["address"])):
                devices.alert(self.box, "key_mismatch", exc.alert, serial=serial, address=device["address"])
            devices.gone(self.box, serial, "does not answer" if not isinstance(exc, NotThere) else
                         "another device answers at its address")
            if isinstance(exc, NotThere):  # the alert was its one log line
                self._last_problem[serial] = str(exc)
            else:
                self._problem(serial, str(exc))
            self.challenge(serial)  # moved? its new (or former) address, once proven
        except DockError as exc:
            progress.set(state="error", message=str(exc))
            self._problem(serial, str(exc))
        except Refused as exc:
            progress.set(state="refused", message=str(exc), current=None)
            devices.set_status(self.box, serial, f"refused: {exc}")
            backoff = max(self.retry_s, 60)
        except StorageFull as exc:
            progress.set(state="storage_full", message=str(exc), current=None)
            self._disk_full(serial, offload.needed, str(exc))
        except ProtocolError as exc:
            progress.set(state="error", message=str(exc), current=None)
            if self.alerts.seen((serial, "protocol_error", device["address"])):
                devices.alert(self.box, "protocol_error", f"{serial}: {exc}", serial=serial,
                              address=device["address"], action="offload_error")
            backoff = max(self.retry_s, 60)
        except KluisError as exc:
            progress.set(state="error", message=str(exc), current=None)
            log.error("camera %s: offload failed: %s", serial, exc)
            devices.set_status(self.box, serial, f"error: {exc}")
        except sqlite3.OperationalError as exc:  # "database or disk is full", or locked for too long
            progress.set(state="error", message=f"catalog: {exc}", current=None)
            log.error("camera %s: offload paused, the catalog cannot be written: %s", serial, exc)
            if "full" in str(exc):
                self._disk_full(serial, offload.needed, f"the catalog cannot be written: {exc}")
        self._not_before[serial] = time.monotonic() + backoff

    @property
    def storage_full(self) -> bool:
        """A full-disk episode lasts (appliance/space.py): no dock session is started until it ends."""
        return space.in_episode(self.box)

    def _disk_full(self, serial: str, needed: int, message: str) -> None:
        """One alert per full-disk episode, not one per camera and retry: the first failure records it (in
        the room the reserve keeps for it, after the failed download's part file was freed); the others
        only widen what the episode waits for. A camera's status is written only when it still differs."""
        text = space.full(self.box, needed, message)
        if text is not None:
            since = self.box.now_iso()
            devices.alert(self.box, "storage_full", text, serial=serial, action="offload_error")
            if not _alert_recorded(self.box, since):  # not even the reserve was left: record it when room is back
                self._alert_pending = (serial, text, since)
        device = devices.find_device(self.box.catalog, serial)
        if device is not None and device["status"] != "waiting for disk space":
            devices.set_status(self.box, serial, "waiting for disk space")

    def _record_pending_alert(self) -> None:
        if self._alert_pending is not None:
            serial, message, since = self._alert_pending
            self._alert_pending = None
            devices.alert(self.box, "storage_full", f"{message} (since {since}; recorded when room was back)",
                          serial=serial, action="offload_error")

    def _problem(self, serial: str, message: str | None) -> None:
        """Log a failure once, not on every probe; and say when it is over."""
        previous = self._last_problem.get(serial)
        if message is None:
            if previous:
                log.info("camera %s: reachable again", serial)
            self._last_problem.pop(serial, None)
            return
        if previous != message:
            log.warning("camera %s: %s", serial, message)
            self._last_problem[serial] = message


def _alert_recorded(box: Box, since: str) -> bool:
    """Whether a storage_full alert from `since` on is in the catalog (a read: nothing is written)."""
    try:
        return box.catalog.db.execute("SELECT 1 FROM device_alerts WHERE kind = 'storage_full' AND at >= ? LIMIT 1",
                                      [since]).fetchone() is not None
    except sqlite3.OperationalError:
        return False
