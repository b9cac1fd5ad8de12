"""The camera simulator's state: everything a simulated bodycam keeps, under one directory (files only; no
asyncio, no HTTP). The running camera is simulators/dock/camera.py; the layout of the directory is in its
docstring."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import struct
from datetime import timedelta
from pathlib import Path

from nacl.public import PrivateKey
from nacl.signing import SigningKey

from appliance.clock import Clock, system_clock, to_iso
from appliance.container import Encryptor, parse_header
from appliance.errors import KluisError
from appliance.durable import fsync_dir, write_atomic
from appliance.dock import protocol as p
from appliance.dock.footage import make_mp4

log = logging.getLogger("kluis.camera")

MODEL = "Kluis-Sim"
FIRMWARE = "1.0.0"
SERVE_BLOCK = 1024 * 1024
DEFAULT_SETTINGS = {"version": 0, "pre_record_s": 30, "post_record_s": 30, "officer": None,
                    "assignment": "personal"}


# --- durable little files -------------------------------------------------------------------------------


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except ValueError:
        raise KluisError(f"camera state file damaged: {path}") from None


# --- footage source --------------------------------------------------------------------------------------


class _FootageSource(io.RawIOBase):
    """The MP4 bytes, then optionally an MP4 `free` box of filler (players skip it): lets a benchmark make
    recordings of any size without encoding hours of video, in bounded memory."""

    def __init__(self, mp4: bytes, filler: int = 0):
        self._parts: list[tuple[bytes, int]] = [(mp4, len(mp4))]
        if filler:
            filler = max(filler, 16)
            head = (struct.pack(">I4s", filler, b"free") if filler < 2**32
                    else struct.pack(">I4sQ", 1, b"free", filler))
            self._parts += [(head, len(head)), (b"", filler - len(head))]  # b"": that many zero bytes
        self._part, self._pos = 0, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        view, done = memoryview(buf), 0
        while done < len(view) and self._part < len(self._parts):
            data, length = self._parts[self._part]
            n = min(len(view) - done, length - self._pos)
            if data:
                view[done : done + n] = data[self._pos : self._pos + n]
            else:
                view[done : done + n] = bytes(n)
            done, self._pos = done + n, self._pos + n
            if self._pos == length:
                self._part, self._pos = self._part + 1, 0
        return done


# --- the camera's state (files only; no asyncio, no HTTP) ------------------------------------------------


class CameraState:
    """Everything a camera keeps, under one directory. Not thread-safe: the server serializes changes."""

    def __init__(self, state_dir: Path, serial: str | None = None, model: str = MODEL, fw: str = FIRMWARE,
                 clock: Clock = system_clock):
        self.dir = Path(state_dir)
        self.clock = clock  # the camera's clock (drift included)
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "recordings").mkdir(exist_ok=True)
        (self.dir / "requests").mkdir(exist_ok=True)
        info = _read_json(self.dir / "camera.json")
        if info is None:
            if serial is None:
                raise KluisError(f"{self.dir} is not a camera state directory (start `kluis camera-sim "
                                 f"--serial SERIAL --state {self.dir}` once)")
            if not p.SERIAL_RE.match(serial):
                raise KluisError(f"serial {serial!r} is not valid (A-Z, 0-9 and '-', at most 32)")
            info = {"serial": serial, "model": model, "fw": fw, "next_seq": 1}
            write_atomic(self.dir / "camera.key", bytes(SigningKey.generate()), 0o600)
            write_atomic(self.dir / "holding.key", bytes(PrivateKey.generate()), 0o600)
            write_atomic(self.dir / "camera.json", p.canonical(info))
        elif serial is not None and serial != info["serial"]:
            raise KluisError(f"{self.dir} holds camera {info['serial']}, not {serial}")
        self.info = info
        self.serial: str = info["serial"]
        self.model: str = info["model"]
        self.fw: str = info["fw"]
        self.key = SigningKey((self.dir / "camera.key").read_bytes())
        self.holding = PrivateKey((self.dir / "holding.key").read_bytes())
        self.pairing: dict | None = _read_json(self.dir / "pairing.json")
        self.replay = p.ReplayCache.from_json(_read_json(self.dir / "replay.json") or {})
        self._cleanup()

    # -- pairing and settings

    @property
    def paired(self) -> bool:
        return self.pairing is not None

    @property
    def box_key(self) -> str | None:
        return self.pairing["box_key"] if self.pairing else None

    @property
    def settings(self) -> dict:
        return self.pairing["settings"] if self.pairing else dict(DEFAULT_SETTINGS)

    def recipients(self) -> list[bytes]:
        if self.pairing:
            return [bytes.fromhex(k) for k in self.pairing["recipients"]]
        return [bytes(self.holding.public_key)]

    def pair(self, pairing: dict) -> int:
        """Store the pairing durably, then re-seal the recordings made while unpaired. Returns how many."""
        if self.pairing is not None:
            raise p.ProtocolError("this camera is already paired (unpair it first)", 409, "already_paired")
        stored = {k: pairing[k] for k in ("box_key", "box_name", "recipients", "settings")}
        stored["paired_at"] = to_iso(self.clock())
        write_atomic(self.dir / "pairing.json", p.canonical(stored))
        self.pairing = stored
        self.replay = p.ReplayCache()
        self.save_replay()
        return self._rewrap_held()

    def unpair(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.dir / "pairing.json").unlink()
        fsync_dir(self.dir)
        self.pairing = None

    def apply_settings(self, settings: dict) -> dict:
        if self.pairing is None:
            raise p.ProtocolError("this camera is not paired", 403, "not_paired")
        p.check_settings_newer(self.settings["version"], settings)
        updated = {**self.pairing, "settings": settings}
        write_atomic(self.dir / "pairing.json", p.canonical(updated))
        self.pairing = updated
        return settings

    def save_replay(self) -> None:
        write_atomic(self.dir / "replay.json", p.canonical(self.replay.to_json()))

    # -- recordings

    def _path(self, recording_id: str, ext: str) -> Path:
        if not p.RECORDING_ID_RE.match(recording_id):
            raise p.ProtocolError(f"not a recording id: {recording_id[:80]!r}", 404, "not_found")
        return self.dir / "recordings" / f"{recording_id}.{ext}"

    def entries(self) -> list[dict]:
        found = [_read_json(path) for path in (self.dir / "recordings").glob("*.json")]
        return sorted((e for e in found if e), key=lambda e: (e["start"], e["id"]))

    def entry(self, recording_id: str) -> dict:
        entry = _read_json(self._path(recording_id, "json"))
        if entry is None:
            raise p.ProtocolError(f"no recording {recording_id}", 404, "not_found")
        return entry

    def open_recording(self, recording_id: str) -> tuple[dict, bytes, Path]:
        """(entry, header bytes, payload path) of one recording."""
        entry = self.entry(recording_id)
        try:
            return entry, self._path(recording_id, "header").read_bytes(), self._path(recording_id, "payload")
        except FileNotFoundError:  # deleted in the meantime
            raise p.ProtocolError(f"no recording {recording_id}", 404, "not_found") from None

    def make_recording(self, seconds: float, filler_mb: float = 0) -> dict:
        """An incident that just ended on the camera clock: `pre_record_s` before the button, `seconds`
        of incident, `post_record_s` after. The MP4 exists only in memory; the container is durable (and
        listed) before this returns."""
        settings = self.settings
        pre, post = settings["pre_record_s"], settings["post_record_s"]
        now = self.clock()
        end = now.replace(microsecond=now.microsecond // 1000 * 1000)  # the protocol's millisecond times
        start = end - timedelta(seconds=pre + seconds + post)
        seq = self.info["next_seq"]
        recording_id = f"{self.serial}-{start:%Y%m%dT%H%M%S}-{seq:04d}"
        self.info["next_seq"] = seq + 1
        write_atomic(self.dir / "camera.json", p.canonical(self.info))  # never reuse an id

        entry = {"id": recording_id, "start": to_iso(start), "end": to_iso(end), "pre_record_s": pre,
                 "post_record_s": post, "officer": settings["officer"]}
        mp4 = io.BytesIO()
        make_mp4(mp4, pre + seconds + post, start, self.serial)
        source = _FootageSource(mp4.getvalue(), int(filler_mb * 1024 * 1024))
        del mp4
        encryptor = Encryptor(self.recipients(), metadata=p.recording_metadata(self.serial, entry))
        digest = hashlib.sha256(encryptor.header.raw)
        payload_path = self._path(recording_id, "payload")
        tmp = payload_path.with_name(payload_path.name + ".part")
        size = len(encryptor.header.raw)
        with open(tmp, "wb") as f:
            for chunk in encryptor.chunks(source):
                f.write(chunk)
                digest.update(chunk)
                size += len(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, payload_path)
        write_atomic(self._path(recording_id, "header"), encryptor.header.raw)
        entry = p.manifest_entry(recording_id, size, digest.hexdigest(), entry["start"], entry["end"], pre,
                                 post, entry["officer"])
        write_atomic(self._path(recording_id, "json"), p.canonical(entry))
        return entry

    def delete_recording(self, recording_id: str, sha256: str) -> dict:
        entry = self.entry(recording_id)
        if entry["sha256"] != sha256:
            raise p.ProtocolError(f"recording {recording_id} has another sha256 than the box names; kept",
                                  409, "sha256_mismatch")
        self._path(recording_id, "json").unlink()  # first: from now on it is not listed
        for ext in ("header", "payload"):
            with contextlib.suppress(FileNotFoundError):
                self._path(recording_id, ext).unlink()
        fsync_dir(self.dir / "recordings")
        return entry

    def _rewrap_held(self) -> int:
        """Re-seal recordings made while unpaired (sealed to the holding key) to the box's recipients."""
        mine, count = bytes(self.holding.public_key), 0
        for entry in self.entries():
            header = parse_header(self._path(entry["id"], "header").read_bytes())
            if header.recipients != [mine]:
                continue
            new = header.rewrap(header.unwrap(self.holding), self.recipients())
            digest = hashlib.sha256(new.raw)
            with open(self._path(entry["id"], "payload"), "rb") as f:
                while block := f.read(SERVE_BLOCK):
                    digest.update(block)
            write_atomic(self._path(entry["id"], "header"), new.raw)
            entry = {**entry, "size": entry["size"] - header.size + new.size, "sha256": digest.hexdigest()}
            write_atomic(self._path(entry["id"], "json"), p.canonical(entry))
            count += 1
        return count

    def _cleanup(self) -> None:
        """Drop what a crash left half-made: parts, and headers/payloads without their entry."""
        folder = self.dir / "recordings"
        complete = {path.stem for path in folder.glob("*.json")}
        for path in folder.iterdir():
            if path.name.endswith((".part", ".tmp")) or path.name.split(".")[0] not in complete:
                path.unlink()
