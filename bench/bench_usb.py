"""USB camera ingest: `kluis usb ingest` of one recording from a FAT32 image, MB/s vs. `cp` + fsync.

Targets: ingest of one 1 GiB recording (`--size`) from a FAT32 file system is at least 0.8 of
`cp` of the same file from the same mounted image to the same disk followed by an fsync of the copy
(ratio >= 0.8), and its peak memory stays under 150 MB.

Set-up (untimed): a FAT32 image (mkfs.vfat) holding DCIM/100MEDIA/CLIP0001.MP4, a real MP4 padded to
the size with a top-level 'free' box (players skip it; PyAV reads its length), mounted once (loop mount
as root where the kernel has vfat, else fusefat, as `kluis usb ingest` itself would). Per round, taking
turns: the baseline `cp` + `sync FILE`; then a fresh box (`kluis init`), the camera found and registered
(`kluis cameras pair --usb`), and the timed `kluis usb ingest` of the mount point: fingerprint, probe,
seal while reading, SHA-256, fsync, a second read of the camera's file from the device (its cached pages
dropped) and compare, catalog commit. The generic profile keeps the file on the camera, so every round
reads the same bytes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import benchlib
from benchlib import MB, fmt_size, result

NAME = "usb"
PASSWORD = "bench horse battery staple"
LABEL = "BENCHCAM"


def padded_mp4(path: Path, size: int) -> None:
    """A real MP4 of a few seconds, then a 'free' box up to `size` bytes (written in blocks)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from appliance.dock.footage import make_mp4

    make_mp4(path, 2, datetime(2026, 12, 7, 9, 0, tzinfo=timezone.utc), label="USB")
    left = size - path.stat().st_size
    if left < 16:
        return
    with open(path, "ab") as f:
        f.write((1).to_bytes(4, "big") + b"free" + left.to_bytes(8, "big"))  # 64-bit 'largesize' box
        block = os.urandom(4 << 20)
        left -= 16
        while left:
            n = min(left, len(block))
            f.write(block[:n])
            left -= n


def make_image(work: Path, size: int) -> Path:
    image, clip = work / "camera.img", work / "clip.mp4"
    padded_mp4(clip, size)
    with open(image, "wb") as f:
        f.truncate(size + (256 << 20))
    subprocess.run(["mkfs.vfat", "-F", "32", "-n", LABEL, str(image)], check=True, capture_output=True)
    subprocess.run(["mmd", "-i", str(image), "::DCIM", "::DCIM/100MEDIA"], check=True)
    subprocess.run(["mcopy", "-i", str(image), str(clip), "::DCIM/100MEDIA/CLIP0001.MP4"], check=True)
    clip.unlink()
    return image


def mount(image: Path, mountpoint: Path) -> list[str]:
    """Mount the image; returns the command that unmounts it."""
    kernel = "vfat" in Path("/proc/filesystems").read_text()
    if kernel and os.geteuid() == 0:
        subprocess.run(["mount", "-o", "loop", str(image), str(mountpoint)], check=True)
        return ["umount", str(mountpoint)]
    subprocess.run(["fusefat", "-o", "rw+", str(image), str(mountpoint)], check=True, capture_output=True)
    return ["fusermount", "-u", str(mountpoint)]


def one_round(kluis: list[str], work: Path, mountpoint: Path, source: Path) -> tuple[float, float, float]:
    """(ingest seconds, cp seconds, ingest peak RSS MB)."""
    copy = work / "copy.mp4"
    began = time.perf_counter()
    subprocess.run(["cp", str(source), str(copy)], check=True)
    subprocess.run(["sync", str(copy)], check=True)
    cp_s = time.perf_counter() - began
    copy.unlink()

    data = work / "data"
    password = work / "password.txt"
    password.write_text(PASSWORD + "\n")
    benchlib.run_child([*kluis, "init", "--data", data, "--password-file", password, "--totp-required", "", "--kdf-profile", "interactive"])
    ingest: list[str | os.PathLike[str]] = [*kluis, "usb", "ingest", "--data", data, mountpoint, "--label", LABEL]
    benchlib.run_child(ingest)  # found
    benchlib.run_child([*kluis, "cameras", "pair", "--data", data, "--usb", LABEL, "--officer", "J. Jansen",
                        "--password-file", password])
    child = benchlib.run_child([*ingest, "--json"])
    if b'"state": "stored"' not in child.stdout:
        raise RuntimeError(f"the ingest stored nothing: {child.stdout[-500:]!r}")
    shutil.rmtree(data)
    return child.seconds, cp_s, child.peak_rss_mb


def run(args) -> list[dict]:
    kluis = benchlib.kluis_command()
    size = args.size
    image = make_image(args.work, size)
    mountpoint = Path(tempfile.mkdtemp(prefix="kluis-bench-usb-"))
    unmount = mount(image, mountpoint)
    ours, base, peaks = [], [], []
    try:
        source = mountpoint / "DCIM" / "100MEDIA" / "CLIP0001.MP4"
        if not source.exists():
            source = next(p for p in (mountpoint / "DCIM").rglob("*") if p.name.upper() == "CLIP0001.MP4")
        for work in benchlib.rounds(args, "usb", f"{fmt_size(size)} from FAT32"):
            ingest_s, cp_s, peak = one_round(kluis, work, mountpoint, source)
            ours.append(size / ingest_s / MB)
            base.append(size / cp_s / MB)
            peaks.append(peak)
    finally:
        subprocess.run(unmount, capture_output=True)
        mountpoint.rmdir()
        image.unlink()
    label = fmt_size(size)
    a = result(NAME, f"kluis usb ingest ({label}, FAT32)", ours, "MB/s",
               note="process start to exit: probe, seal while reading, fsync, read back from the camera, commit")
    b = result(NAME, f"cp + sync ({label}, FAT32)", base, "MB/s", note="the same file from the same mount")
    return benchlib.versus(NAME, a, b, "usb/cp", "kluis usb ingest", label, peaks, "< 150")
