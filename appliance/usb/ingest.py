"""One USB camera's ingest: every recording not yet in the vault is sealed while it is read, committed,
read back from the camera and compared, and only then deleted there (when its profile allows).

Order per file, so that a pulled camera, a read error or a crash at any moment leaves the file on the
camera unless the box holds it complete and verified:
  1. probe: a video PyAV can read (else it is refused and left on the camera, listed for the keeper);
  2. seal while reading (no plaintext copy on the box's disk), hashing the camera's bytes (SHA-256);
  3. commit the blob (fsync, rename, directory fsync);
  4. read the file from the camera again (its pages dropped from the cache first) and compare SHA-256;
  5. commit the catalog row, its 'ingest' audit entry and the usb_files row in one transaction;
  6. delete the file on the camera; after the last one, fsync the camera's file system.
A file already in the vault (by its keyed fingerprint) is read once more and deleted only if its
SHA-256 is the one recorded when it was stored.

An unknown volume (no profile matches: a USB stick, a phone) is listed once with an alert and never
read beyond what identifies it. A camera that is found but not registered by the keeper is listed
(`kluis cameras list`) and read no further. Progress goes to the catalog's usb_sessions row, so the
overview shows it whichever process ingests.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import logging
import os
import re
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Iterator

from .. import recordings, retention, space, timesync
from ..box import Box
from ..clock import to_iso
from ..container import Encryptor
from ..dock import devices
from ..errors import KluisError, StorageFull
from . import profiles as profiles_mod
from .profiles import Profile
from .volume import Volume, sync_volume

log = logging.getLogger("kluis.usb")

MAX_FILES = 20_000  # a volume with more files than a camera holds is not walked further
READ_BLOCK = 1024 * 1024
PROGRESS_EVERY_S = 0.5
SERIAL_CLEAN = re.compile(r"[^A-Z0-9-]+")


@dataclass
class FileResult:
    path: str
    size: int
    state: str  # stored, already, refused, error
    recording_id: str | None = None
    message: str = ""
    deleted: bool = False


@dataclass
class Report:
    state: str  # done, unknown_volume, found, not_registered, error, storage_full, gone
    message: str = ""
    serial: str | None = None
    profile: str | None = None
    clock_offset_s: float | None = None
    files: list[FileResult] = field(default_factory=list)
    left_on_camera: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


class Gone(KluisError):
    """The camera went away (pulled out) or its file system failed mid-read."""


def _now(box: Box) -> datetime:
    return box.clock()


def _remember_volume(box: Box, volume: Volume, profile: Profile | None, serial: str | None) -> bool:
    """Note a volume; True when it is seen for the first time (an alert is due then, not every plug-in)."""
    now = box.now_iso()
    db = box.catalog.db
    new = db.execute("SELECT 1 FROM usb_volumes WHERE identity = ?", [volume.identity]).fetchone() is None
    with box.catalog.transaction():
        db.execute(
            "INSERT INTO usb_volumes (identity, label, usb_vendor, usb_product, usb_serial, profile, serial, "
            "first_seen, last_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(identity) DO UPDATE SET "
            "label = excluded.label, profile = excluded.profile, serial = excluded.serial, "
            "last_seen = excluded.last_seen",
            [volume.identity, volume.label, volume.usb.get("vendor"), volume.usb.get("product"),
             volume.usb.get("serial"), profile.name if profile else None, serial, now, now])
    return new


def read_serial(profile: Profile, volume: Volume) -> str | None:
    """The camera's serial as its profile says to read it, normalised to a serial Kluis takes."""
    for source in profile.serial_sources:
        raw = None
        if source == "usb_serial":
            raw = volume.usb.get("serial")
        elif source == "volume_label":
            raw = volume.label
        elif source == "file":
            path = profiles_mod.find_nocase(volume.root, profile.serial_file)
            if path is not None and profile.serial_pattern is not None:  # a profile with 'file' has both
                with contextlib.suppress(OSError, UnicodeDecodeError):
                    text = path.read_bytes()[:4096].decode("utf-8", "replace")
                    match = profile.serial_pattern.search(text)
                    raw = match.group("serial") if match else None
        serial = SERIAL_CLEAN.sub("-", (raw or "").strip().upper()).strip("-")[:32]
        if serial:
            return serial
    return None


def recording_files(profile: Profile, root: Path) -> list[Path]:
    """The files the profile's globs match, case-insensitively (FAT), in path order; bounded."""
    patterns = [g.lower() for g in profile.globs]
    found, seen = [], 0
    for directory, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            seen += 1
            if seen > MAX_FILES:
                raise KluisError(f"more than {MAX_FILES} files on the volume: not a camera's")
            rel = (Path(directory) / name).relative_to(root).as_posix()
            if any(fnmatchcase(rel.lower(), p) for p in patterns):
                found.append(Path(directory) / name)
    return found


def _stamp(match: re.Match, tz) -> datetime:
    parts = {k: int(match.group(k)) for k in ("Y", "m", "d", "H", "M", "S")}
    return datetime(parts["Y"], parts["m"], parts["d"], parts["H"], parts["M"], parts["S"], tzinfo=tz) \
        .astimezone(timezone.utc)


def container_time(path: Path) -> datetime | None:
    """The MP4/MOV 'mvhd' creation time, as PyAV reports it (creation_time), or None."""
    import av

    try:
        with av.open(str(path)) as media:
            text = media.metadata.get("creation_time")
    except (av.error.FFmpegError, OSError, ValueError):
        return None
    if not text:
        return None
    with contextlib.suppress(ValueError):
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if moment.year > 2000:  # cameras without a set clock write 1904/1970 (the container's epoch)
            return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    return None


def start_time(profile: Profile, path: Path) -> tuple[datetime, str]:
    """A recording's start on the camera's clock, from the most trusted source that has one."""
    for source in profile.time_sources:
        if source == "filename":
            match = profile.filename_pattern.search(path.name) if profile.filename_pattern else None
            if match:
                with contextlib.suppress(ValueError):
                    return _stamp(match, profile.timezone), "filename"
        elif source == "container":
            moment = container_time(path)
            if moment is not None:
                return moment.astimezone(timezone.utc), "container"
        elif source == "file":
            return datetime.fromtimestamp(path.stat().st_mtime, timezone.utc), "file"
    return datetime.fromtimestamp(path.stat().st_mtime, timezone.utc), "file"


def clock_offset(profile: Profile, volume: Volume, files: list[Path], now: datetime) -> float | None:
    """Box clock minus camera clock, as the profile can tell it; None when it cannot."""
    if profile.clock_source == "file":
        path = profiles_mod.find_nocase(volume.root, profile.clock_file)
        if path is None or profile.clock_pattern is None:  # a profile with 'file' has a pattern
            return None
        with contextlib.suppress(OSError):
            match = profile.clock_pattern.search(path.read_bytes()[:4096].decode("utf-8", "replace"))
            if match:
                with contextlib.suppress(ValueError):
                    return round((now - _stamp(match, profile.timezone)).total_seconds(), 3)
        return None
    if profile.clock_source == "newest_file" and files:
        newest = datetime.fromtimestamp(max(p.stat().st_mtime for p in files), timezone.utc)
        # The newest file was closed some time before the dock: its time bounds the camera's clock from
        # one side only. A file from the future says the clock is ahead by at least that much; a file from
        # the past says nothing (the camera may just have lain in a drawer), so no offset is claimed.
        return round((now - newest).total_seconds(), 3) if newest > now else None
    return None


class _Hashing:
    """Reads a file for the sealer, hashing what it reads; a read error says the camera went away."""

    def __init__(self, f, on_bytes):
        self.f, self.sha, self.on_bytes = f, hashlib.sha256(), on_bytes

    def readinto(self, view) -> int:
        try:
            n = self.f.readinto(view)
        except OSError as exc:
            raise Gone(f"read error: {exc.strerror or exc}") from None
        if n:
            self.sha.update(view[:n])
            self.on_bytes(n)
        return n


def read_back(path: Path) -> str:
    """SHA-256 of the camera's file read again from the device (its cached pages dropped first)."""
    sha = hashlib.sha256()
    try:
        with open(path, "rb", buffering=0) as f:
            with contextlib.suppress(OSError):
                os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
            buf = bytearray(READ_BLOCK)
            view = memoryview(buf)
            while n := f.readinto(buf):
                sha.update(view[:n])
    except OSError as exc:
        raise Gone(f"read error while checking: {exc.strerror or exc}") from None
    return sha.hexdigest()


class Session:
    """The usb_sessions row of one camera's plug-in: what the overview shows."""

    def __init__(self, box: Box, serial: str):
        self.box, self.serial = box, serial
        self.values: dict[str, Any] = {"serial": serial, "state": "reading", "message": "", "files_total": 0,
                                       "files_done": 0, "bytes_total": 0, "bytes_done": 0,
                                       "started_at": box.now_iso()}
        self._written = 0.0
        self.set(force=True)

    def set(self, force: bool = False, **values) -> None:
        self.values.update(values)
        if not force and time.monotonic() - self._written < PROGRESS_EVERY_S:
            return
        self._written = time.monotonic()
        with contextlib.suppress(sqlite3.Error):  # progress must never stop an ingest (a locked or full catalog)
            with self.box.catalog.transaction():
                self.box.catalog.db.table("usb_sessions").upsert({**self.values, "updated_at": self.box.now_iso()},
                                                           pk="serial")


def ingest(box: Box, volume: Volume, *, dry_run: bool = False, actor: str = "system") -> Report:
    """Ingest one plugged-in volume (see the module docstring). Never raises for what the camera or its
    files do wrong: that is in the report, an alert and the log."""
    profile = profiles_mod.choose(profiles_mod.load_all(box.data_dir), volume.root, volume.usb, volume.label)
    if profile is None:
        if _remember_volume(box, volume, None, None):
            devices.alert(box, "usb_unknown", f"a USB volume that is no known camera was plugged in "
                          f"({volume.identity}, label {volume.label or '-'}): listed, not read",
                          action="usb_unknown")
        return Report("unknown_volume", f"no camera profile matches {volume.identity}: not read")
    serial = read_serial(profile, volume)
    if serial is None:
        if _remember_volume(box, volume, profile, None):
            devices.alert(box, "usb_no_serial", f"a {profile.name} camera without a readable serial "
                          f"({volume.identity}): not read", action="usb_unknown")
        return Report("unknown_volume", f"{profile.name}: no serial to tell the camera by", profile=profile.name)
    first = _remember_volume(box, volume, profile, serial)
    device = devices.find_device(box.catalog, serial)
    now = box.now_iso()
    if device is None:
        with box.catalog.transaction():
            box.catalog.db.table("devices").insert({
                "serial": serial, "proto": "usb", "model": profile.name, "paired": 0, "online": 0,
                "first_seen": now, "last_seen": now, "status": "found", "status_at": now,
                "pre_record_s": profile.pre_record_s, "post_record_s": profile.post_record_s,
                "txt": f'{{"profile": "{profile.name}"}}'})
        devices.alert(box, "usb_found", f"USB camera {serial} ({profile.name}) found: the keeper registers "
                      f"it (kluis cameras pair --usb {serial}) before anything is read", serial=serial,
                      action="usb_found")
        return Report("found", f"{serial}: found, not registered yet", serial=serial, profile=profile.name)
    if device["proto"] != "usb":
        devices.alert(box, "spoofed_serial", f"a USB volume claims the serial of dock camera {serial}: refused",
                      serial=serial, action="usb_unknown")
        return Report("error", f"{serial} is a dock camera's serial: refused", serial=serial, profile=profile.name)
    with box.catalog.transaction():
        box.catalog.db.table("devices").update(serial, {"last_seen": now})
    if not device["paired"]:
        if first:
            log.info("usb: camera %s (%s) plugged in again, still not registered", serial, profile.name)
        return Report("not_registered", f"{serial}: not registered yet", serial=serial, profile=profile.name)
    return _ingest_camera(box, volume, profile, device, dry_run=dry_run)


def _ingest_camera(box: Box, volume: Volume, profile: Profile, device: dict, *, dry_run: bool) -> Report:
    serial = device["serial"]
    report = Report("done", serial=serial, profile=profile.name)
    session = Session(box, serial)
    needed = 0
    try:
        files = recording_files(profile, volume.root)
        now = _now(box)
        report.clock_offset_s = offset = clock_offset(profile, volume, files, now)
        if offset is not None and not dry_run:
            camera_now = now - timedelta(seconds=offset)
            devices.record_dock(box, serial, camera_now, offset, None, new_dock=True)
        session.set(force=True, files_total=len(files), bytes_total=sum(p.stat().st_size for p in files))
        category = profile_category(box, profile)
        for path in files:
            needed = _size_or_zero(path)  # what a full disk must make room for before this file can go on
            try:
                result = _one(box, volume, profile, device, path, offset or 0.0, session, dry_run, category)
            except (Gone, OSError) as exc:
                if not _reachable(volume.root):
                    raise Gone(str(exc)) from None
                # The camera is there but this file cannot be read (a broken FAT chain, a bad block): it
                # stays on the camera, listed for the keeper, and the other files go on.
                rel = path.relative_to(volume.root).as_posix()
                why = f"unreadable: {getattr(exc, 'strerror', None) or exc}"
                result = _refuse(box, serial, rel, _size_or_zero(path), None, why, dry_run)
            report.files.append(result)
            session.set(files_done=session.values["files_done"] + 1)
        if not dry_run and any(r.deleted for r in report.files):
            sync_volume(volume.root)
        report.left_on_camera = [r.path for r in report.files if not r.deleted]
        stored = sum(r.state == "stored" for r in report.files)
        refused = [r for r in report.files if r.state == "refused"]
        report.message = (f"{stored} stored, {sum(r.deleted for r in report.files)} deleted on the camera"
                          + (f", {len(refused)} refused (left on the camera)" if refused else ""))
        session.set(force=True, state="done", message=report.message)
    except Gone as exc:
        report.state, report.message = "gone", f"{serial}: {exc}; what was not committed stays on the camera"
        devices.alert(box, "usb_gone", report.message, serial=serial, action="usb_error")
        session.set(force=True, state="gone", message=report.message)
    except StorageFull as exc:
        report.state, report.message = "storage_full", f"{serial}: {exc}; the camera keeps its recordings"
        text = space.full(box, needed, report.message)
        if text is not None:  # one alert per full-disk episode
            devices.alert(box, "storage_full", text, serial=serial, action="usb_error")
        session.set(force=True, state="storage_full", message=report.message)
    except (KluisError, OSError) as exc:
        report.state, report.message = "error", f"{serial}: {exc}"
        devices.alert(box, "usb_error", report.message, serial=serial, action="usb_error")
        session.set(force=True, state="error", message=report.message)
    log.info("usb: camera %s (%s): %s", serial, profile.name, report.message)
    return report


def _reachable(root: Path) -> bool:
    """Is the camera's file system still there (not pulled out, its driver alive)?"""
    try:
        os.stat(root)
        os.listdir(root)
    except OSError:
        return False
    return True


def _size_or_zero(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _file_row(box: Box, serial: str, rel: str, size: int) -> dict | None:
    rows = list(box.catalog.db.query("SELECT * FROM usb_files WHERE serial = ? AND path = ? AND size = ?",
                                     [serial, rel, size]))
    return rows[0] if rows else None


def profile_category(box: Box, profile: Profile) -> str | None:
    """The retention category the profile gives its cameras' recordings, if the box knows it; one that
    [retention.categories] does not name is left off (one log line per camera plugged in, and `kluis usb
    profiles` says so), never a reason to keep a recording off the box."""
    if profile.category is None:
        return None
    if profile.category in retention.current_policy(box).categories:
        return profile.category
    log.warning("usb: profile %s names the retention category %r, which [retention.categories] does not: "
                "its recordings get the default term", profile.name, profile.category)
    return None


def _one(box: Box, volume: Volume, profile: Profile, device: dict, path: Path, offset: float, session: Session,
         dry_run: bool, category: str | None = None) -> FileResult:
    serial = device["serial"]
    rel = path.relative_to(volume.root).as_posix()
    try:
        size = path.stat().st_size
        mtime = to_iso(datetime.fromtimestamp(path.stat().st_mtime, timezone.utc))
    except OSError as exc:
        raise Gone(f"{rel}: {exc.strerror}") from None
    done_before = session.values["bytes_done"]
    fingerprint = recordings.fingerprint_file(path, bytes.fromhex(box.catalog.required_meta("fingerprint_key")))
    earlier = box.catalog.find_by_fingerprint(fingerprint)
    if earlier is not None:
        row = box.catalog.db.execute("SELECT sha256 FROM usb_files WHERE recording_id = ?", [earlier["id"]]).fetchone()
        result = FileResult(rel, size, "already", earlier["id"], "in the vault already")
        if not dry_run and profile.delete_after_ingest and row and row[0] and read_back(path) == row[0]:
            _delete(box, serial, rel, size, path)
            result.deleted = True
        session.set(bytes_done=done_before + size)
        return result
    seconds = recordings.probe_duration(path)
    if seconds is None:
        return _refuse(box, serial, rel, size, mtime, "not a video Kluis can read", dry_run)
    camera_start, source = start_time(profile, path)
    if dry_run:
        return FileResult(rel, size, "would_store", None, f"{to_iso(camera_start)} ({source}), {seconds:.1f} s")
    room = space.reserve(box, size, rel)  # given back once the file is committed, or on failure
    start = camera_start + timedelta(seconds=offset)
    encryptor = Encryptor(box.recipients(), chunk_size=box.settings.storage.chunk_size)
    writer = box.vault.writer()
    read = 0

    def progress(n: int) -> None:
        nonlocal read
        read += n
        session.set(bytes_done=session.values["bytes_done"] + n)
        room.wrote(read)  # sealed, a little more is on the disk: what is still counted in flight errs high
    with ThreadPoolExecutor(max_workers=1) as asking:
        clock_synced = asking.submit(timesync.ingest_flag)
        f = None
        try:
            f = open(path, "rb", buffering=0)
            source_reader = _Hashing(f, progress)
            writer.write(encryptor.header.raw)
            for sealed in encryptor.chunks(source_reader):
                writer.write(sealed)
        except BaseException:
            writer.abort()
            room.release()
            session.set(bytes_done=done_before)
            raise
        finally:
            with contextlib.suppress(OSError):  # closing a file of a camera pulled out fails too: the
                if f is not None:                # read error above is what counts
                    f.close()
        try:
            stored = writer.commit()
        finally:
            room.release()
    sealed_sha = source_reader.sha.hexdigest()
    if read_back(path) != sealed_sha:  # the camera gave other bytes the second time: trust neither
        if not stored.existed:
            box.vault.remove(stored.stored_path)
        devices.alert(box, "usb_read_mismatch", f"{serial}: {rel} read differently twice: not stored, kept on "
                      "the camera", serial=serial, action="usb_error")
        return FileResult(rel, size, "error", None, "read differently twice: kept on the camera")
    fields = {
        "camera_serial": serial, "officer": devices.officer_at(box.catalog, serial, start),
        "start_time": to_iso(start), "end_time": to_iso(start + timedelta(seconds=seconds)),
        "camera_start_time": to_iso(camera_start), "camera_end_time": to_iso(camera_start + timedelta(seconds=seconds)),
        "clock_offset_s": offset, "pre_record_s": device["pre_record_s"], "post_record_s": device["post_record_s"],
        "source": "usb", "source_ref": rel, "fingerprint": fingerprint, "clock_synced": clock_synced.result(),
    }
    with box.catalog.transaction():
        recording_id = recordings.catalog_stored(box, stored, fields)
        if category and recording_id:
            retention.set_category(box, recording_id, "system", add=[category], source="usb")
        box.catalog.db.table("usb_files").upsert({
            "serial": serial, "path": rel, "size": size, "mtime": mtime, "state": "stored", "reason": None,
            "sha256": sealed_sha, "recording_id": recording_id, "time_source": source, "seen_at": box.now_iso(),
        }, pk=("serial", "path", "size"))
    result = FileResult(rel, size, "stored", recording_id, f"start {to_iso(start)} ({source})")
    if profile.delete_after_ingest:
        _delete(box, serial, rel, size, path)
        result.deleted = True
    return result


def _delete(box: Box, serial: str, rel: str, size: int, path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise Gone(f"{rel}: cannot delete it on the camera ({exc.strerror})") from None
    with box.catalog.transaction():
        box.catalog.db.execute("UPDATE usb_files SET deleted_at = ? WHERE serial = ? AND path = ? AND size = ?",
                               [box.now_iso(), serial, rel, size])


def _refuse(box: Box, serial: str, rel: str, size: int, mtime: str | None, why: str, dry_run: bool) -> FileResult:
    if not dry_run and _file_row(box, serial, rel, size) is None:
        with box.catalog.transaction():
            box.catalog.db.table("usb_files").insert({"serial": serial, "path": rel, "size": size, "mtime": mtime,
                                                "state": "refused", "reason": why, "seen_at": box.now_iso()})
        devices.alert(box, "usb_refused_file", f"{serial}: {rel}: {why}; left on the camera", serial=serial,
                      action="usb_error")
    return FileResult(rel, size, "refused", None, why)


@contextlib.contextmanager
def slot(box: Box, wait_s: float = 3600) -> Iterator[int]:
    """One of `[usb] concurrency` ingest slots (a lock file each): several cameras of a 10-port dock are
    read at once, but not more than the disk and the box's memory take."""
    count = box.settings.usb.concurrency
    directory = box.data_dir / "tmp" / "usb-slots"
    directory.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait_s
    while True:
        for i in range(count):
            fd = os.open(directory / str(i), os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise
                continue
            try:
                yield i
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
            return
        if time.monotonic() > deadline:
            raise KluisError("no USB ingest slot came free")
        time.sleep(0.2)


def register(box: Box, serial: str, *, officer: str | None, pooled: bool, actor: str) -> dict:
    """The keeper confirms a found USB camera and assigns it (personal or pooled); audited as 'pair'."""
    device = devices.find_device(box.catalog, serial)
    if device is None or device["proto"] != "usb":
        raise KluisError(f"no USB camera {serial} has been found (plug it in first; kluis cameras list)")
    if device["paired"]:
        raise KluisError(f"USB camera {serial} is registered already")
    with box.catalog.transaction():
        box.catalog.db.table("devices").update(serial, {"paired": 1, "paired_at": box.now_iso(), "paired_by": actor,
                                                  "status": "idle", "status_at": box.now_iso()})
        devices.audit(box, "pair", actor=actor, details={"camera": serial, "usb": True, "profile": device["model"]})
    if officer:
        devices.set_personal(box, serial, officer, actor)
    elif pooled:
        devices.set_pooled(box, serial, actor)
    return devices.get_device(box.catalog, serial)
