"""A plugged-in USB volume: where its files are, its label, the USB identity of the device behind it.

`kluis usb ingest` takes a mount point (the appliance's udev unit mounts as root, then runs the ingest
as the service's user) or a device / image file, which it mounts itself (root only) on a private
directory and unmounts afterwards. The label comes from `blkid` (it reads the file system's own label,
also of an image file); the USB vendor, product and serial from sysfs, walking up from the block device
to the USB device it belongs to.
"""

from __future__ import annotations

import contextlib
import os
import stat
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from ..errors import KluisError


@dataclass
class Volume:
    root: Path
    device: str | None = None  # /dev/sdb1, or an image file
    label: str | None = None
    fs_type: str | None = None
    usb: dict[str, str] = field(default_factory=dict)  # vendor, product, serial (hex ids as sysfs has them)

    @property
    def identity(self) -> str:
        """What an unknown volume is listed by: USB ids and serial, else the label."""
        if self.usb.get("serial"):
            return f"usb:{self.usb.get('vendor', '?')}:{self.usb.get('product', '?')}:{self.usb['serial']}"
        return f"label:{self.label or '?'}:{self.fs_type or '?'}"


def _blkid(device: str, tag: str) -> str | None:
    try:
        done = subprocess.run(["blkid", "-o", "value", "-s", tag, device], capture_output=True, text=True,
                              timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    value = done.stdout.strip()
    return value or None


def usb_identity(device: str) -> dict[str, str]:
    """idVendor, idProduct and serial of the USB device a block device sits on; {} when it is not USB."""
    try:
        name = Path(os.path.realpath(device)).name
        here = Path(os.path.realpath(f"/sys/class/block/{name}"))
    except OSError:
        return {}
    while here != here.parent and str(here).startswith("/sys/devices"):
        if (here / "idVendor").exists():
            found = {}
            for key, file in (("vendor", "idVendor"), ("product", "idProduct"), ("serial", "serial")):
                with contextlib.suppress(OSError):
                    found[key] = (here / file).read_text().strip()
            return found
        here = here.parent
    return {}


def _source_of(mountpoint: Path) -> str | None:
    try:
        done = subprocess.run(["findmnt", "-n", "-o", "SOURCE", "--mountpoint", str(mountpoint)],
                              capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None


def parse_usb_id(text: str | None) -> dict[str, str]:
    """'vendor:product:serial' (as the appliance's usb-mount writes it) as a dict; {} for none."""
    parts = (text or "").split(":")
    if len(parts) != 3 or not parts[0]:
        return {}
    return {k: v for k, v in zip(("vendor", "product", "serial"), parts) if v}


def describe(root: Path, device: str | None, label: str | None = None, usb: dict | None = None) -> Volume:
    """What identifies the volume at `root`: given (the appliance's mount unit hands it over, as the
    sandboxed ingest sees no devices) or read from the device behind it."""
    device = device or _source_of(root)
    volume = Volume(root=root, device=device, label=label or None, usb=dict(usb or {}))
    if device:
        volume.label = volume.label or _blkid(device, "LABEL")
        volume.fs_type = _blkid(device, "TYPE")
        if device.startswith("/dev/") and not volume.usb:
            volume.usb = usb_identity(device)
    return volume


@contextlib.contextmanager
def opened(target: Path, device: str | None = None, label: str | None = None,
           usb: dict | None = None) -> Iterator[Volume]:
    """The volume at `target`: a mounted directory as it is, or a device / image file mounted here."""
    target = Path(target)
    if target.is_dir():
        yield describe(target, device, label, usb)
        return
    try:
        mode = target.stat().st_mode
    except OSError as exc:
        raise KluisError(f"{target}: {exc.strerror}") from None
    if not (stat.S_ISBLK(mode) or stat.S_ISREG(mode)):
        raise KluisError(f"{target}: neither a directory, a block device nor an image file")
    if os.geteuid() != 0:
        raise KluisError(f"{target}: mounting a device needs root; mount it and give the mount point")
    fs_type = _blkid(str(target), "TYPE")
    if fs_type not in ("vfat", "exfat", "ntfs", "ext4", "ext3", "ext2", "iso9660", "udf"):
        raise KluisError(f"{target}: no file system a camera uses ({fs_type or 'none found'})")
    mountpoint = Path(tempfile.mkdtemp(prefix="kluis-usb-"))
    fuse = _kernel_lacks(fs_type) and fs_type in FUSE_DRIVERS
    loop_device = None
    if fuse and fs_type == "exfat" and stat.S_ISREG(mode):  # exfat-fuse mounts block devices only
        attached = subprocess.run(["losetup", "--find", "--show", str(target)], capture_output=True, text=True,
                                  timeout=30)
        if attached.returncode != 0:
            mountpoint.rmdir()
            raise KluisError(f"{target}: cannot attach it ({attached.stderr.strip() or attached.returncode})")
        loop_device = attached.stdout.strip()
    if fuse:  # a kernel without the file system (a container): the same file system in user space
        command = [*FUSE_DRIVERS[fs_type], loop_device or str(target), str(mountpoint)]
    else:
        options = ["nodev", "nosuid", "noexec"] + (["loop"] if stat.S_ISREG(mode) else [])
        command = ["mount", "-t", fs_type, "-o", ",".join(options), str(target), str(mountpoint)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        done = subprocess.CompletedProcess(command, 127, "", f"{command[0]} is not installed")
    if done.returncode != 0:
        mountpoint.rmdir()
        _detach(loop_device)
        raise KluisError(f"{target}: cannot mount it ({done.stderr.strip() or done.returncode})")
    try:
        yield describe(mountpoint, str(target), label, usb)
    finally:
        unmount(mountpoint, fuse)
        _detach(loop_device)
        with contextlib.suppress(OSError):
            mountpoint.rmdir()


def _detach(loop_device: str | None) -> None:
    if loop_device:
        subprocess.run(["losetup", "--detach", loop_device], capture_output=True, timeout=30)


# User-space drivers (Debian fusefat, exfat-fuse) for kernels without vfat or exfat.
FUSE_DRIVERS = {"vfat": ["fusefat", "-o", "rw+"], "exfat": ["mount.exfat-fuse"]}


def _kernel_lacks(fs_type: str) -> bool:
    try:
        known = {line.split()[-1] for line in Path("/proc/filesystems").read_text().splitlines() if line.strip()}
    except OSError:
        return False
    return fs_type not in known


def unmount(mountpoint: Path, fuse: bool = False) -> None:
    command = ["fusermount", "-u"] if fuse else ["umount"]
    done = subprocess.run([*command, str(mountpoint)], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:  # a camera pulled out: detach it lazily, nothing is left to write
        subprocess.run([*command[:-1], "-z" if fuse else "-l", str(mountpoint)], capture_output=True, timeout=60)


def sync_volume(root: Path) -> None:
    """Flush the camera's file system (deletions included) before anyone pulls it out."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.sync()  # Python has no syncfs(2); the whole system's sync covers the camera's file system
