"""appliance.platform: is the data directory on dm-crypt/LUKS, is there a TPM2? Fake /proc and /sys trees
in tmp for every shape of disk, and the real machine's answer held against what the kernel says."""

from __future__ import annotations

import os
from pathlib import Path

from appliance import platform


def fake_tree(root: Path, mounts: list[tuple[str, str, str, str]], devices: dict[str, dict],
              tpm_major: str | None = None) -> tuple[Path, Path]:
    """mounts: (MAJ:MIN, mount point as in mountinfo, fs type, source); devices: MAJ:MIN -> {"uuid": ...,
    "slaves": [MAJ:MIN, ...]}. Returns (proc root, sys root)."""
    proc, sys_root = root / "proc", root / "sys"
    (proc / "self").mkdir(parents=True)
    lines = [f"{20 + i} 1 {dev} / {point} rw,relatime - {fs} {source} rw"
             for i, (dev, point, fs, source) in enumerate(mounts)]
    (proc / "self" / "mountinfo").write_text("\n".join(lines) + "\n")
    for dev, spec in devices.items():
        base = sys_root / "dev" / "block" / dev
        base.mkdir(parents=True)
        if "uuid" in spec:
            (base / "dm").mkdir()
            (base / "dm" / "uuid").write_text(spec["uuid"] + "\n")
        for i, below in enumerate(spec.get("slaves", [])):
            (base / "slaves" / f"dm-{i}").mkdir(parents=True)
            (base / "slaves" / f"dm-{i}" / "dev").write_text(below + "\n")
    if tpm_major is not None:
        (sys_root / "class" / "tpm" / "tpm0").mkdir(parents=True)
        (sys_root / "class" / "tpm" / "tpm0" / "tpm_version_major").write_text(tpm_major + "\n")
    return proc, sys_root


ROOT_MOUNT = ("8:1", "/", "ext4", "/dev/sda1")


def test_luks2_data_partition_with_tpm2(tmp_path):
    proc, sys_root = fake_tree(tmp_path, [ROOT_MOUNT, ("253:0", "/var/lib/kluis", "ext4", "/dev/mapper/kluis")],
                               {"8:1": {}, "253:0": {"uuid": "CRYPT-LUKS2-0f1e2d3c4b5a69788796a5b4c3d2e1f0-kluis"}},
                               tpm_major="2")
    found = platform.at_rest(Path("/var/lib/kluis/data"), proc, sys_root)
    assert found.encrypted and found.kind == "LUKS2" and found.crypt_device == "253:0"
    assert found.mount_point == "/var/lib/kluis" and found.source == "/dev/mapper/kluis"
    assert found.tpm == "2.0" and found.tpm2 and found.as_dict()["tpm2"] is True


def test_lvm_on_luks_is_followed_down_through_slaves(tmp_path):
    proc, sys_root = fake_tree(tmp_path, [ROOT_MOUNT, ("253:2", "/srv", "xfs", "/dev/mapper/vg-data")],
                               {"253:2": {"uuid": "LVM-abcdef", "slaves": ["253:1"]},
                                "253:1": {"slaves": ["253:0"]},
                                "253:0": {"uuid": "CRYPT-LUKS1-00112233445566778899aabbccddeeff-sda3_crypt"}})
    found = platform.at_rest(Path("/srv/kluis"), proc, sys_root)
    assert found.encrypted and found.kind == "LUKS1"
    assert found.chain == ["253:2", "253:1", "253:0"] and found.crypt_device == "253:0"
    assert found.tpm is None and not found.tpm2


def test_plain_disk_and_lvm_without_crypt_are_not_encrypted(tmp_path):
    proc, sys_root = fake_tree(tmp_path / "a", [ROOT_MOUNT], {"8:1": {}}, tpm_major="1")
    found = platform.at_rest(Path("/var/lib/kluis"), proc, sys_root)
    assert not found.encrypted and found.kind is None and found.device == "8:1" and found.tpm == "1.2"
    assert "not on dm-crypt" in found.detail

    proc, sys_root = fake_tree(tmp_path / "b", [ROOT_MOUNT, ("253:3", "/data", "ext4", "/dev/mapper/vg-lv")],
                               {"253:3": {"uuid": "LVM-xyz", "slaves": ["8:2"]}, "8:2": {}})
    found = platform.at_rest(Path("/data/kluis"), proc, sys_root)
    assert not found.encrypted and found.chain == ["253:3", "8:2"]


def test_the_longest_mount_that_really_contains_the_directory_wins(tmp_path):
    # /var/lib/kluisx is not a parent of /var/lib/kluis; a later mount over the same point hides the first;
    # a space in a mount point is escaped as \040 in mountinfo.
    proc, sys_root = fake_tree(tmp_path, [
        ROOT_MOUNT,
        ("253:0", "/var/lib/kluisx", "ext4", "/dev/mapper/other"),
        ("8:5", "/mnt/usb\\040disk", "vfat", "/dev/sdb1"),
        ("253:1", "/mnt/usb\\040disk", "ext4", "/dev/mapper/usb"),
    ], {"8:1": {}, "253:0": {"uuid": "CRYPT-LUKS2-aa-other"}, "8:5": {}, "253:1": {"uuid": "CRYPT-LUKS2-bb-usb"}})
    assert not platform.at_rest(Path("/var/lib/kluis"), proc, sys_root).encrypted
    on_usb = platform.at_rest(Path("/mnt/usb disk/kluis"), proc, sys_root)
    assert on_usb.encrypted and on_usb.mount_point == "/mnt/usb disk" and on_usb.crypt_device == "253:1"


def test_unreadable_tree_is_reported_not_encrypted(tmp_path):
    found = platform.at_rest(tmp_path, tmp_path / "no-proc", tmp_path / "no-sys")
    assert not found.encrypted and "mountinfo unreadable" in found.detail


def test_the_real_machine(tmp_path, kluis, box_dir):
    """This machine's answer, held against the kernel: the device is the one the directory lives on, and
    encrypted exactly when that device (or one below it) is dm-crypt."""
    found = platform.at_rest(tmp_path)
    dev = os.stat(tmp_path).st_dev
    if os.major(dev) != 0:  # btrfs, overlayfs: an anonymous device number, not the block device
        assert found.device == f"{os.major(dev)}:{os.minor(dev)}"

    def crypt_below(device: str, depth: int = 0) -> bool:
        base = Path("/sys/dev/block") / device
        uuid = (base / "dm" / "uuid").read_text() if (base / "dm" / "uuid").exists() else ""
        if uuid.startswith("CRYPT-"):
            return True
        slaves = base / "slaves"
        return depth < 8 and slaves.is_dir() and any(
            crypt_below((s / "dev").read_text().strip(), depth + 1) for s in slaves.iterdir())

    if found.device and (Path("/sys/dev/block") / found.device).exists():
        assert found.encrypted == crypt_below(found.device)
    assert (found.tpm is not None) == Path("/sys/class/tpm/tpm0").exists()

    # `kluis status` says the same, and in Dutch when the metadata is not protected.
    data = box_dir[0]
    status = kluis("status", "--data", data)
    text = status.stdout.decode() if isinstance(status.stdout, bytes) else status.stdout
    real = platform.at_rest(data)
    assert ("data at rest: encrypted" in text) == real.encrypted
    assert (platform.NOT_ENCRYPTED_NL in text) == (not real.encrypted)
