"""The appliance's systemd units (image/rootfs/usr/lib/systemd/system): `systemd-analyze verify` finds
nothing to say about them, and `systemd-analyze security --offline=yes` rates kluis.service "OK" or
better (exposure below 5.0 on its 0-10 scale), with the hardening settings the unit sets."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

IMAGE = Path(__file__).resolve().parents[2] / "image"
UNITS = IMAGE / "rootfs/usr/lib/systemd/system"
OUR_UNITS = ["kluis.service", "kluis-data.service", "kluis-ssh.service", "kluis-update.service", "kluis-update.path",
             "kluis-backup.service", "kluis-backup.timer", "kluis-backup-network.service",
             "kluis-backup-network.timer", "media-kluis\\x2dbackup.mount", "kluis-usb@.service",
             "kluis-usb-mount@.service", "kluis-seal-key.service", "kluis-seal-key.path",
             "kluis-signing-key.service"]
# The units' programs, as the image has them (an executable the unit names must exist in the root).
PROGRAMS = {"opt/kluis/bin/kluis": None, "usr/lib/kluis/data-setup": "rootfs/usr/lib/kluis/data-setup",
            "usr/lib/kluis/usb-mount": "rootfs/usr/lib/kluis/usb-mount",
            "usr/local/sbin/kluis-ssh": "rootfs/usr/local/sbin/kluis-ssh", "usr/bin/install": None,
            "usr/lib/kluis/seal-signing-key": "rootfs/usr/lib/kluis/seal-signing-key",
            "usr/lib/kluis/unseal-signing-key": "rootfs/usr/lib/kluis/unseal-signing-key"}
GOOD_BANDS = ("OK", "SAFE", "PERFECT")  # systemd-analyze's bands below 5.0: OK < 5, SAFE < 1, PERFECT 0

pytestmark = pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """A root file system for `systemd-analyze verify --root`: the host's units (sysinit.target and the
    like, which ours depend on), ours on top, and the programs our units run."""
    root = tmp_path_factory.mktemp("root")
    system = root / "usr/lib/systemd/system"
    shutil.copytree("/usr/lib/systemd/system", system, symlinks=True)
    for unit in UNITS.glob("*"):
        shutil.copy2(unit, system / unit.name)
    for target, source in PROGRAMS.items():
        path = root / target
        path.parent.mkdir(parents=True, exist_ok=True)
        if source:
            shutil.copy2(IMAGE / source, path)
        else:
            path.write_text("#!/bin/sh\n")
            path.chmod(0o755)
    return root


def verify(root: Path, *units: str) -> subprocess.CompletedProcess:
    return subprocess.run(["systemd-analyze", "verify", "--man=no", f"--root={root}", *units],
                          capture_output=True, text=True, timeout=60)


def test_units_are_the_ones_the_image_enables():
    assert sorted(p.name for p in UNITS.glob("*")) == sorted(OUR_UNITS)
    for program in ("usr/lib/kluis/data-setup", "usr/local/sbin/kluis-ssh", "usr/lib/kluis/usb-mount",
                    "usr/lib/kluis/seal-signing-key", "usr/lib/kluis/unseal-signing-key", "usr/local/sbin/kluis-cli"):
        assert (IMAGE / "rootfs" / program).stat().st_mode & 0o111, f"{program} is not executable"


def test_systemd_analyze_verify_has_nothing_to_say(root):
    result = verify(root, *OUR_UNITS)
    assert result.returncode == 0 and (result.stdout + result.stderr).strip() == "", result.stdout + result.stderr


def test_usb_ingest_instance_verifies_and_is_sandboxed(root):
    # The template runs once per plugged-in disk (90-kluis-usb.rules): an instance verifies, is rated
    # SAFE and runs as the service's user without network; the mount is another unit's, as root outside
    # the sandbox (a sandboxed "+" step does not see the device), stopped once the ingest is done.
    result = verify(root, "kluis-usb@sdb1.service", "kluis-usb-mount@sdb1.service")
    assert result.returncode == 0 and (result.stdout + result.stderr).strip() == "", result.stdout + result.stderr
    report = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--no-pager", f"--root={root}",
                             "kluis-usb@sdb1.service"], capture_output=True, text=True, timeout=60).stdout
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d) (\w+)", report)
    assert match and match.group(2) in GOOD_BANDS, report
    s = settings(UNITS / "kluis-usb@.service")
    assert s["User"] == ["kluis"] and s["PrivateNetwork"] == ["yes"] and s["BindsTo"] == ["dev-%i.device"]
    assert "kluis-usb-mount@%i.service" in s["Requires"][0] and s["ConditionPathIsMountPoint"] == ["/run/kluis-usb/%I"]
    assert not any(v.startswith("+") for key, values in s.items() if key.startswith("Exec") for v in values)
    m = settings(UNITS / "kluis-usb-mount@.service")
    assert m["ExecCondition"] == ["/usr/lib/kluis/usb-mount %I check"] and m["StopWhenUnneeded"] == ["yes"]
    assert m["ExecStop"] == ["/usr/lib/kluis/usb-mount %I stop"] and "User" not in m
    rule = (IMAGE / "rootfs/usr/lib/udev/rules.d/90-kluis-usb.rules").read_text()
    assert 'ENV{ID_BUS}=="usb"' in rule and 'ENV{ID_FS_LABEL}!="KLUIS-BACKUP"' in rule
    assert 'ENV{SYSTEMD_WANTS}+="kluis-usb@%k.service"' in rule


def test_verify_would_notice_a_broken_unit(root):
    # The check above means something: a misspelt setting or a missing program is reported.
    unit = root / "usr/lib/systemd/system/kluis.service"
    good = unit.read_text()
    try:
        unit.write_text(good.replace("ProtectSystem=strict", "ProtectSystem=strictly\nProtectSytem=yes"))
        output = verify(root, "kluis.service")
        text = output.stdout + output.stderr
        assert "ProtectSytem" in text and "strictly" in text
        unit.write_text(good.replace("/opt/kluis/bin/kluis", "/opt/kluis/bin/kluis-missing"))
        assert verify(root, "kluis.service").returncode != 0
    finally:
        unit.write_text(good)


def exposure(unit: Path) -> tuple[float, str, str]:
    result = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--no-pager", str(unit)],
                            capture_output=True, text=True, timeout=60)
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d) (\w+)", result.stdout)
    assert match, result.stdout + result.stderr
    return float(match.group(1)), match.group(2), result.stdout


@pytest.mark.parametrize("unit", ["kluis.service", "kluis-backup.service", "kluis-update.service",
                                  "kluis-backup-network.service"])
def test_services_are_rated_ok_or_better(unit):
    level, band, report = exposure(UNITS / unit)
    assert band in GOOD_BANDS and level < 5.0, report


def test_the_rating_would_drop_without_the_hardening(tmp_path):
    # The same service without its sandbox is rated worse than OK: the rating above is the settings' doing.
    lines = [line for line in (UNITS / "kluis.service").read_text().splitlines()
             if not re.match(r"(Protect|Private|Restrict|SystemCall|Capability|NoNewPriv|Lock|Memory)", line)]
    bare = tmp_path / "kluis.service"
    bare.write_text("\n".join(lines) + "\n")
    level, band, report = exposure(bare)
    assert band not in GOOD_BANDS and level >= 5.0, report


def settings(unit: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in unit.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def test_kluis_service_has_the_settings_the_issue_names():
    s = settings(UNITS / "kluis.service")
    one = {k: v[-1] for k, v in s.items()}
    assert one["User"] == "kluis" and one["StateDirectory"] == "kluis"
    assert one["ExecStart"].startswith("/opt/kluis/bin/kluis serve --data /var/lib/kluis --listen 0.0.0.0:443")
    assert one["ProtectSystem"] == "strict" and one["PrivateTmp"] == "yes" and one["NoNewPrivileges"] == "yes"
    assert s["SystemCallFilter"][0] == "@system-service"
    assert set(one["RestrictAddressFamilies"].split()) == {"AF_INET", "AF_INET6", "AF_UNIX", "AF_NETLINK"}
    assert one["AmbientCapabilities"] == one["CapabilityBoundingSet"] == "CAP_NET_BIND_SERVICE"
    assert one["Type"] == "notify" and one["WatchdogSec"] and one["Restart"] == "on-failure"
    assert one["TimeoutStopSec"] and one["KillMode"] == "mixed"


def test_network_backup_unit_has_the_network_and_fuse_and_nothing_more():
    # The network target's unit: the network and /dev/fuse with the one capability sshfs needs to mount,
    # in its own mount namespace; otherwise the disk backup's sandbox. The image installs sshfs and
    # enables its timer.
    s = settings(UNITS / "kluis-backup-network.service")
    one = {k: v[-1] for k, v in s.items()}
    assert one["ExecStart"] == "/opt/kluis/bin/kluis backup --data /var/lib/kluis --only network --due"
    assert one["User"] == "kluis" and "PrivateNetwork" not in one and one["PrivateMounts"] == "yes"
    assert one["AmbientCapabilities"] == one["CapabilityBoundingSet"] == "CAP_SYS_ADMIN"
    assert one["DevicePolicy"] == "closed" and s["DeviceAllow"] == ["/dev/fuse rw"]
    assert set(one["RestrictAddressFamilies"].split()) == {"AF_UNIX", "AF_INET", "AF_INET6"}
    disk = settings(UNITS / "kluis-backup.service")
    for key in ("NoNewPrivileges", "ProtectSystem", "ProtectHome", "PrivateTmp", "RestrictSUIDSGID",
                "RestrictNamespaces", "MemoryDenyWriteExecute", "SystemCallArchitectures", "LoadCredentialEncrypted",
                "SetCredential", "ConditionPathExists"):
        assert s.get(key) == disk.get(key) or (key == "ConditionPathExists"
                                               and s[key] == ["/var/lib/kluis/catalog.db"]), key
    build = (IMAGE / "build").read_text()
    assert re.search(r"^PACKAGES=\([^)]*\bsshfs\b", build, re.M) and "kluis-backup-network.timer" in build


@pytest.mark.parametrize("script", ["build", "test", "lock", "rootfs/usr/lib/kluis/data-setup",
                                    "rootfs/usr/local/sbin/kluis-ssh", "rootfs/usr/lib/kluis/usb-mount"])
def test_image_scripts_parse(script):
    # `bash -n`: the scripts the image is made and run with at least parse (they run only as root, slowly).
    path = IMAGE / script
    assert path.stat().st_mode & 0o111, f"{script} is not executable"
    result = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_requirements_lock_covers_pyproject():
    # image/build installs exactly image/requirements.lock: a dependency added to pyproject.toml without
    # `image/lock` would only fail at the (slow) image build; here it fails in the quick suite.
    import tomllib

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    project = tomllib.loads((IMAGE.parent / "pyproject.toml").read_text())["project"]
    locked = {}
    for line in (IMAGE / "requirements.lock").read_text().splitlines():
        if line and not line.startswith("#"):
            spec, _, digest = line.partition(" --hash=sha256:")
            name, _, version = spec.partition("==")
            assert version and len(digest) == 64, line
            locked[canonicalize_name(name)] = version
    for text in project["dependencies"]:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{name} is in pyproject.toml but not in image/requirements.lock: run image/lock"
        assert requirement.specifier.contains(locked[name], prereleases=True), (text, locked[name])
