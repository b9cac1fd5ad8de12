"""What protects the data at rest: is the data directory on an encrypted block device (dm-crypt/LUKS),
and does the machine have a TPM2 to unlock it without a typed passphrase?

Footage is always encrypted by Kluis itself (the container format). The catalog, the key slots' metadata
and the audit log are plain SQLite: only full-disk encryption (the appliance image puts the data
partition on LUKS2, unlocked by the TPM2 through systemd-cryptenroll) protects them from someone who
carries the box away. When that is missing, the web UI and `kluis status` say so plainly.

Detection: the mount that holds the data directory (the longest mount point in /proc/self/mountinfo
that contains it) names a block device MAJ:MIN; /sys/dev/block/MAJ:MIN/dm/uuid starts with "CRYPT-"
for dm-crypt ("CRYPT-LUKS2-..." for LUKS2); a device mapper device stacked on top (LVM on LUKS) is
followed down through its slaves/. Every root is a parameter, so tests hand in a fake tree.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

# What the UI and `kluis status` say when the data directory is not encrypted at rest; in Dutch, because the
# keeper reads it in the Dutch UI.
NOT_ENCRYPTED_NL = ("Het beeldmateriaal is versleuteld, maar de metagegevens (de catalogus: namen, tijden, "
                    "het auditlogboek) zijn op deze kluis niet versleuteld opgeslagen.")
NOT_ENCRYPTED_EN = ("The footage is encrypted, but metadata (the catalog: names, times, the audit log) is not "
                    "encrypted at rest on this box.")


@dataclass(frozen=True)
class AtRest:
    encrypted: bool             # the data directory's block device is (on) dm-crypt
    kind: str | None            # "LUKS2", "LUKS1", "PLAIN" (dm-crypt without LUKS), None
    mount_point: str | None
    fs_type: str | None
    source: str | None          # the mount's source, e.g. /dev/mapper/kluis-data
    device: str | None          # MAJ:MIN of the mount
    crypt_device: str | None    # MAJ:MIN of the dm-crypt device found
    tpm: str | None             # "2.0", "1.2", "present" (version unknown) or None
    detail: str = ""
    chain: list[str] = field(default_factory=list)  # the devices walked, top first

    @property
    def tpm2(self) -> bool:
        return self.tpm == "2.0"

    def as_dict(self) -> dict:
        return {**asdict(self), "tpm2": self.tpm2}


def _unescape(text: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and text[i + 1:i + 4].isdigit():
            out.append(chr(int(text[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def mount_of(path: Path, mountinfo: Path) -> dict | None:
    """The mountinfo entry that holds `path` (the last of the longest matching mount points)."""
    target = os.path.realpath(path)
    best: dict | None = None
    for line in mountinfo.read_text().splitlines():
        fields = line.split()
        if "-" not in fields or len(fields) < 7:
            continue
        sep = fields.index("-")
        point = _unescape(fields[4])
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and (best is None or len(point) >= len(best["mount_point"])):
            best = {"device": fields[2], "mount_point": point, "fs_type": fields[sep + 1],
                    "source": _unescape(fields[sep + 2]) if len(fields) > sep + 2 else None}
    return best


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def find_crypt(device: str, sys_root: Path, chain: list[str], depth: int = 0) -> tuple[str, str] | None:
    """(MAJ:MIN, kind) of a dm-crypt device at or below `device`, following slaves/ (LVM, RAID)."""
    chain.append(device)
    base = sys_root / "dev" / "block" / device
    uuid = _read(base / "dm" / "uuid") or ""
    if uuid.startswith("CRYPT-"):
        kind = uuid.split("-")[1] or "PLAIN"  # CRYPT-LUKS2-<uuid>-<name>, CRYPT-PLAIN-<name>
        return device, kind
    if depth >= 8:
        return None
    try:
        slaves = sorted(p for p in (base / "slaves").iterdir())
    except OSError:
        return None
    for slave in slaves:
        below = _read(slave / "dev")
        if below:
            found = find_crypt(below, sys_root, chain, depth + 1)
            if found:
                return found
    return None


def tpm_version(sys_root: Path) -> str | None:
    tpm = sys_root / "class" / "tpm" / "tpm0"
    if not tpm.exists():
        return None
    major = _read(tpm / "tpm_version_major")
    return {"2": "2.0", "1": "1.2"}.get(major or "", "present")


def at_rest(data_dir: Path, proc_root: Path = Path("/proc"), sys_root: Path = Path("/sys")) -> AtRest:
    """How the data directory is protected at rest; never raises (an unreadable tree: not encrypted)."""
    tpm = tpm_version(sys_root)
    try:
        mount = mount_of(Path(data_dir), proc_root / "self" / "mountinfo")
    except OSError as exc:
        return AtRest(False, None, None, None, None, None, None, tpm, f"mountinfo unreadable: {exc}")
    if mount is None:
        return AtRest(False, None, None, None, None, None, None, tpm, "no mount holds the data directory")
    device = mount["device"]
    if device.startswith("0:") and (mount["source"] or "").startswith("/dev/"):
        try:  # btrfs and friends report an anonymous device; the source names the real one
            rdev = os.stat(mount["source"]).st_rdev
            device = f"{os.major(rdev)}:{os.minor(rdev)}"
        except OSError:
            pass
    chain: list[str] = []
    found = find_crypt(device, sys_root, chain)
    common = dict(mount_point=mount["mount_point"], fs_type=mount["fs_type"], source=mount["source"],
                  device=device, tpm=tpm, chain=chain)
    if found:
        return AtRest(True, found[1], crypt_device=found[0], detail=f"dm-crypt {found[1]} on {found[0]}", **common)
    return AtRest(False, None, crypt_device=None,
                  detail=f"{mount['fs_type']} on {mount['source']} ({device}) is not on dm-crypt", **common)
