"""Fixtures and helpers of the USB camera tests (appliance/usb/): real FAT32 and exFAT file system images, made
in the test, filled with real MP4 footage, and ingested by the real `kluis usb ingest`.

The kernel of the test machine has no vfat or exfat, so Kluis mounts images with the FUSE drivers
(fusefat, exfat-fuse). Files go into a FAT image with mtools (no mount needed); into an exFAT image by
mounting it with mount.exfat-fuse. exfat-fuse always mounts as a FUSE block device ("blkdev"), so an exFAT
image is attached to a loop device first, and that device is what the camera "is" (as /dev/sdX1 would be).

fusefat reports file modification times one month late; the footage here is dated well over a month in
the past where a test relies on the file time being in the past, and no test asserts the 'file' time source.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import shutil
import sqlite3
import struct
import subprocess
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import av
import pytest

from appliance.box import CATALOG
from appliance.dock.footage import make_mp4
from tests.conftest import run_kluis

UTC = timezone.utc
AMSTERDAM = ZoneInfo("Europe/Amsterdam")

# The tools the tests need, and the Debian package of each (the Makefile's DEBS installs them).
TOOLS = {
    "mkfs.vfat": "dosfstools", "fsck.fat": "dosfstools", "mkfs.exfat": "exfatprogs",
    "mcopy": "mtools", "mmd": "mtools", "mdir": "mtools", "mdel": "mtools", "mtype": "mtools",
    "mshowfat": "mtools", "fusefat": "fusefat", "mount.exfat-fuse": "exfat-fuse", "fusermount": "fuse",
    "losetup": "mount", "blkid": "util-linux", "findmnt": "util-linux",
}

# mtools refuses a FAT with out-of-range cluster numbers (the damaged file system test) without this.
MTOOLS_ENV = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}


@pytest.fixture(autouse=True)
def _usb_tools() -> None:
    """Fail (not skip) with a clear message when the machine cannot run these tests."""
    missing = sorted(f"{tool} (Debian package {pkg})" for tool, pkg in TOOLS.items() if shutil.which(tool) is None)
    if missing:
        pytest.fail("the USB camera tests need: " + ", ".join(missing) + "; `make test` installs them (DEBS)",
                    pytrace=False)
    if os.geteuid() != 0:
        pytest.fail("the USB camera tests run as root: Kluis mounts the camera images itself (root only)",
                    pytrace=False)
    if not Path("/dev/fuse").exists():
        pytest.fail("the USB camera tests need /dev/fuse (fusefat, exfat-fuse)", pytrace=False)


def run(*command, env=None, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
    done = subprocess.run([str(c) for c in command], capture_output=True, text=True, timeout=timeout, env=env)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, command))} failed ({done.returncode}): {done.stderr.strip()}")
    return done


# footage ------------------------------------------------------------------------------------------------
@dataclass
class Clip:
    """A real MP4 as a camera would hold it: its bytes, their SHA-256, its length, a marker of its bytes."""

    path: Path
    data: bytes
    seconds: float
    name: str = ""  # its name on the camera
    start: datetime | None = None  # the start the camera's file name (or container) says, in UTC

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def marker(self) -> bytes:
        """64 bytes from the middle of the video data: found nowhere but in this file's plaintext."""
        at = len(self.data) * 2 // 3
        piece = self.data[at:at + 64]
        assert self.data.count(piece) == 1
        return piece


def duration_of(path: Path) -> float:
    with av.open(str(path)) as media:
        assert media.duration is not None, f"{path}: no duration"
        return media.duration / 1_000_000


def make_clip(directory: Path, stem: str, seconds: float, started_at: datetime, label: str = "") -> Clip:
    """A few seconds of real H.264 footage (appliance.dock.footage.make_mp4)."""
    path = directory / f"{stem}.mp4"
    make_mp4(path, seconds, started_at.replace(tzinfo=None), label=label or stem.upper()[:12])
    return Clip(path, path.read_bytes(), duration_of(path))


def make_big_clip(directory: Path, stem: str, frames: int = 60, seed: int = 16) -> Clip:
    """A real MP4 of some tens of MB (lossless H.264 of noise, 640x480): long enough to read that a camera
    can be pulled out while Kluis reads it."""
    path = directory / f"{stem}.mp4"
    rnd = random.Random(seed)
    width, height, fps = 640, 480, 10
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "0"}
        for n in range(frames):
            frame = av.VideoFrame(width, height, "yuv420p")
            frame.planes[0].update(rnd.randbytes(width * height))
            frame.planes[1].update(rnd.randbytes(width * height // 4))
            frame.planes[2].update(rnd.randbytes(width * height // 4))
            frame.pts = n
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return Clip(path, path.read_bytes(), duration_of(path))


def set_creation_time(clip: Clip, moment: datetime) -> None:
    """Write `moment` as the MP4's 'mvhd' creation (and modification) time, as a camera with a set clock does."""
    data = bytearray(clip.path.read_bytes())
    seconds = int((moment - datetime(1904, 1, 1, tzinfo=UTC)).total_seconds())

    def boxes(start: int, end: int):
        at = start
        while at + 8 <= end:
            size, kind = struct.unpack_from(">I4s", data, at)
            header = 8
            if size == 1:
                size, header = struct.unpack_from(">Q", data, at + 8)[0], 16
            elif size == 0:
                size = end - at
            yield kind, at, at + header, at + size
            at += size

    moov = next((b, e) for kind, _, b, e in boxes(0, len(data)) if kind == b"moov")
    mvhd = next(b for kind, _, b, e in boxes(*moov) if kind == b"mvhd")
    if data[mvhd] == 0:
        struct.pack_into(">II", data, mvhd + 4, seconds, seconds)
    else:
        struct.pack_into(">QQ", data, mvhd + 4, seconds, seconds)
    clip.path.write_bytes(bytes(data))
    clip.data = bytes(data)
    with av.open(str(clip.path)) as media:  # the container says it now, as PyAV (and so Kluis) reads it
        said = datetime.fromisoformat(media.metadata["creation_time"].replace("Z", "+00:00"))
    assert said == moment, (said, moment)


# file system images -------------------------------------------------------------------------------------
class FatImage:
    """A FAT32 image made with mkfs.vfat, filled and read with mtools (no mount)."""

    def __init__(self, path: Path, label: str, size_mb: int = 64):
        self.path, self.label = Path(path), label
        with open(self.path, "wb") as f:
            f.truncate(size_mb * 1024 * 1024)
        run("mkfs.vfat", "-F", "32", "-n", label, self.path)
        self._dirs: set[str] = set()

    def mkdir(self, directory: str) -> None:
        parts = directory.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            sub = "/".join(parts[:i])
            if sub not in self._dirs:
                run("mmd", "-i", self.path, f"::{sub}", env=MTOOLS_ENV)
                self._dirs.add(sub)

    def put(self, source: Path, dest: str, mtime: datetime | None = None) -> None:
        """Copy a file onto the image at `dest` (e.g. DCIM/MOVIE/x.MP4), with `mtime` as its file time."""
        if "/" in dest:
            self.mkdir(dest.rsplit("/", 1)[0])
        if mtime is not None:
            stamp = mtime.timestamp()
            os.utime(source, (stamp, stamp))
        run("mcopy", "-m", "-o", "-i", self.path, source, f"::{dest}", env=MTOOLS_ENV)

    def put_bytes(self, data: bytes, dest: str, mtime: datetime | None = None) -> None:
        with tempfile.TemporaryDirectory() as scratch:
            source = Path(scratch) / "f"
            source.write_bytes(data)
            self.put(source, dest, mtime)

    def files(self) -> set[str]:
        """Every file on the image, by its path from the root (long names)."""
        done = run("mdir", "-/", "-b", "-i", self.path, "::", env=MTOOLS_ENV)
        return {line.strip()[3:] for line in done.stdout.splitlines()
                if line.strip().startswith("::/") and not line.strip().endswith("/")}

    def read(self, dest: str) -> bytes:
        done = subprocess.run(["mtype", "-i", str(self.path), f"::{dest}"], capture_output=True, env=MTOOLS_ENV,
                              timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def clusters(self, dest: str) -> list[int]:
        """The clusters of a file, in chain order (mshowfat prints <a-b> ranges)."""
        out = run("mshowfat", "-i", self.path, f"::{dest}", env=MTOOLS_ENV).stdout
        found = []
        for part in out[out.index("<"):].replace("<", " ").replace(">", " ").split():
            first, _, last = part.partition("-")
            found.extend(range(int(first), int(last or first) + 1))
        return found

    def damage_chain(self, dest: str, keep: int = 1, seed: int = 7) -> None:
        """Overwrite the FAT entries (both copies) of `dest`'s clusters after the first `keep` with garbage:
        cluster numbers beyond the end of the volume, as a FAT scribbled over by a failing camera."""
        clusters = self.clusters(dest)[keep:]
        assert clusters, f"{dest} has only {keep} cluster(s)"
        rnd = random.Random(seed)
        with open(self.path, "r+b") as f:
            boot = f.read(512)
            bytes_per_sector, _spc, reserved, fats = struct.unpack_from("<HBHB", boot, 11)
            fat_sectors = struct.unpack_from("<I", boot, 36)[0]
            for copy in range(fats):
                base = (reserved + copy * fat_sectors) * bytes_per_sector
                for cluster in clusters:
                    f.seek(base + 4 * cluster)
                    f.write(struct.pack("<I", 0x0A000000 | rnd.getrandbits(24)))


class ExfatImage:
    """An exFAT image made with mkfs.exfat on a loop device (exfat-fuse mounts block devices only); files
    go in and are listed through mount.exfat-fuse."""

    def __init__(self, path: Path, label: str, size_mb: int = 32):
        self.path, self.label = Path(path), label
        with open(self.path, "wb") as f:
            f.truncate(size_mb * 1024 * 1024)
        run("mkfs.exfat", "-L", label, self.path)
        self.device = run("losetup", "--find", "--show", self.path).stdout.strip()
        assert self.device.startswith("/dev/loop"), self.device

    @contextlib.contextmanager
    def mounted(self):
        mountpoint = Path(tempfile.mkdtemp(prefix="kluis-test-exfat-"))
        run("mount.exfat-fuse", self.device, mountpoint)
        try:
            yield mountpoint
        finally:
            for _ in range(50):
                if run("fusermount", "-u", mountpoint, check=False).returncode == 0:
                    break
                time.sleep(0.1)
            else:
                run("fusermount", "-uz", mountpoint, check=False)
            mountpoint.rmdir()

    def files(self) -> set[str]:
        with self.mounted() as root:
            return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}

    def detach(self) -> None:
        if self.device:  # once: the number may go to another image afterwards
            run("losetup", "-d", self.device, check=False)
            self.device = None


@pytest.fixture
def exfat_image():
    made: list[ExfatImage] = []

    def make(path: Path, label: str, size_mb: int = 32) -> ExfatImage:
        image = ExfatImage(path, label, size_mb)
        made.append(image)
        return image

    yield make
    for image in made:
        image.detach()


# a novatek camera on a FAT32 image ------------------------------------------------------------------------
def novatek_name(local: datetime, number: int) -> str:
    return f"{local:%Y_%m%d_%H%M%S}_{number:03d}.MP4"


def novatek_camera(tmp_path: Path, label: str, starts_local: list[datetime], seconds: float = 3,
                   size_mb: int = 64) -> tuple[FatImage, list[Clip]]:
    """A Novatek-style camera (novatek profile): DCIM/MOVIE/YYYY_MMDD_HHMMSS_NNN.MP4 on the camera's local
    time (Europe/Amsterdam), its serial the volume label. Each file's time is its end on that clock, which
    lies (and via fusefat's month-late times still lies) in the past: no clock offset is claimed."""
    image = FatImage(tmp_path / f"{label}.img", label, size_mb)
    clips = []
    for number, local in enumerate(starts_local, 1):
        clip = make_clip(tmp_path, f"{label}-{number}", seconds, local, label=f"{label} {number}")
        clip.name = f"DCIM/MOVIE/{novatek_name(local, number)}"
        clip.start = local.replace(tzinfo=AMSTERDAM).astimezone(UTC)
        image.put(clip.path, clip.name, mtime=clip.start + timedelta(seconds=clip.seconds))
        clips.append(clip)
    return image, clips


def long_ago(days: int = 45) -> datetime:
    """A local (Amsterdam) wall-clock time `days` ago, on whole seconds."""
    return (datetime.now(AMSTERDAM) - timedelta(days=days)).replace(microsecond=0, tzinfo=None)


# the box --------------------------------------------------------------------------------------------------
def query(data: Path, sql: str, params=()) -> list[dict]:
    db = sqlite3.connect(str(Path(data) / CATALOG), timeout=30)
    try:
        db.row_factory = sqlite3.Row
        return [dict(row) for row in db.execute(sql, params)]
    finally:
        db.close()


def recordings_of(data: Path, serial: str | None = None) -> list[dict]:
    if serial:
        return query(data, "SELECT * FROM recordings WHERE camera_serial = ? ORDER BY source_ref", [serial])
    return query(data, "SELECT * FROM recordings ORDER BY camera_serial, source_ref")


def alerts_of(data: Path, serial: str | None = None) -> list[dict]:
    """The device alerts, oldest first, as appliance.dock.devices.alerts reads them."""
    from appliance.box import Box
    from appliance.dock import devices

    with Box(data) as box:
        return list(reversed(devices.alerts(box.catalog, serial, limit=10_000)))


def alert_kinds(data: Path, serial: str | None = None) -> list[str]:
    return [a["kind"] for a in alerts_of(data, serial)]


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def unreferenced_blobs(data: Path) -> list[str]:
    """Blobs in DATA/blobs that no catalog row names: a half import."""
    referenced = {r["stored_path"] for r in query(data, "SELECT stored_path FROM recordings")}
    blobs = Path(data) / "blobs"
    return sorted(p.relative_to(data).as_posix() for p in blobs.glob("*/*")
                  if p.relative_to(data).as_posix() not in referenced)


def temp_leftovers(data: Path) -> list[str]:
    """Partial writes left in DATA/tmp (the ingest slots' lock files are no leftovers)."""
    tmp = Path(data) / "tmp"
    return sorted(p.name for p in tmp.rglob("*") if p.is_file() and "usb-slots" not in p.parts)


def assert_nothing_half(data: Path) -> None:
    assert unreferenced_blobs(data) == [], "a blob without its catalog row: half an import"
    assert temp_leftovers(data) == [], "a partial write left behind"


def assert_no_plaintext(data: Path, clips: list[Clip]) -> None:
    """No file under the data directory holds a byte sequence of any clip's plaintext."""
    markers = [c.marker for c in clips]
    for path in Path(data).rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            for clip, marker in zip(clips, markers):
                assert marker not in content, f"{path} holds plaintext of {clip.name or clip.path.name}"


def set_config(data: Path, section: str, key: str, value: str) -> None:
    """Set `key = value` in [section] of DATA/kluis.toml (the template lists every key, commented out)."""
    path = Path(data) / "kluis.toml"
    lines = path.read_text().splitlines()
    start = lines.index(f"[{section}]")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("[")), len(lines))
    for i in range(start + 1, end):
        bare = lines[i].lstrip("# ").split("=", 1)[0].strip()
        if bare == key and "=" in lines[i]:
            lines[i] = f"{key} = {value}"
            break
    else:
        lines.insert(start + 1, f"{key} = {value}")
    path.write_text("\n".join(lines) + "\n")


# the CLI --------------------------------------------------------------------------------------------------
def usb_ingest(data: Path, target, *extra: str, expect_rc: int | None = 0) -> dict:
    """`kluis usb ingest --json`: its report; never a traceback."""
    done = run_kluis("usb", "ingest", "--data", data, target, "--json", *extra, check=False, timeout=120)
    stderr = done.stderr.decode(errors="replace")
    assert "Traceback" not in stderr, stderr
    assert done.stdout.strip(), f"kluis usb ingest printed no report (rc {done.returncode}): {stderr}"
    report = json.loads(done.stdout)
    if expect_rc is not None:
        assert done.returncode == expect_rc, (done.returncode, report, stderr)
    return report


def pair_usb(data: Path, serial: str, password_file: Path, officer: str | None = None) -> str:
    """`kluis cameras pair --usb SERIAL` by the keeper: personal with `officer`, else pooled."""
    who = ["--officer", officer] if officer else ["--pooled"]
    done = run_kluis("cameras", "pair", "--data", data, "--usb", serial, *who, "--password-file", password_file)
    return done.stdout.decode()


def register_in_process(data: Path, target, officer: str | None = None) -> str:
    """First plug-in and the keeper's registration through the domain functions (appliance.usb)."""
    from appliance.box import Box
    from appliance.usb import ingest, volume

    with Box(data) as box:
        with volume.opened(target) as vol:
            report = ingest.ingest(box, vol)
        assert report.state == "found", report
        ingest.register(box, report.serial, officer=officer, pooled=officer is None, actor="admin")
    return report.serial


def by_name(report: dict) -> dict[str, dict]:
    return {f["path"]: f for f in report["files"]}


def fuse_daemons(image: Path) -> list[int]:
    """The FUSE driver processes serving `image` (started by the Kluis process the test runs)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            if argv and Path(argv[0].decode(errors="replace")).name in ("fusefat", "mount.exfat-fuse") \
                    and str(image).encode() in argv:
                found.append(int(entry.name))
    return found


def kluis_mounts() -> set[str]:
    """Mount points Kluis made for a camera (kluis-usb-*) that are still mounted."""
    return {line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()
            if "/kluis-usb-" in line.split()[1]}
