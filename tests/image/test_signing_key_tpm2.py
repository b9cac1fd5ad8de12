"""The audit signing key's TPM2 seal, as the image does it (image/rootfs/usr/lib/kluis/seal-signing-key,
unseal-signing-key, tpm2-seal.sh), run here against a real software TPM2 (swtpm) with tpm2-tools, power cuts
being swtpm killed (-9: no TPM2_Shutdown) and started again.

The defect this guards: systemd-creds' TPM2 seal is subject to the TPM's dictionary-attack protection, which
counts every unclean power-off after such a use; after three the TPM2 refused the key and kluis.service
stopped. Sealed as the data partition's key is (under the SRK, noda), unsealing never moves the lockout
counter, and works even while the TPM2 is locked out. The boot test (image/test) does the same in the VM.

The scripts run in a mount namespace of their own (as root): /var/lib/kluis is the test's directory, /run a
fresh tmpfs (the script mounts its ramfs there), /sys/class says there is a TPM2 0 of version 2."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

KLUIS_LIB = Path(__file__).resolve().parents[2] / "image/rootfs/usr/lib/kluis"
SRK = "0x81000001"
# The SRK as systemd-tpm2-setup makes it (tpm2_get_srk_template: ECC P-256, AES-128-CFB, noda).
SRK_ATTRIBUTES = "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda|restricted|decrypt"


@pytest.fixture(autouse=True)
def _as_root() -> None:
    # CI and `make test` run as root; elsewhere this says why instead of checking nothing.
    assert os.geteuid() == 0, "needs root: a mount namespace for the image's paths (run the suite as root)"


class SoftTPM:
    def __init__(self, work: Path):
        self.work = work
        self.state = work / "tpm"
        self.state.mkdir()
        self.sock = work / "swtpm.sock"
        self.tcti = f"swtpm:path={self.sock}"
        self.proc: subprocess.Popen | None = None
        for tool in ("swtpm", "swtpm_setup", "tpm2_create", "tpm2_unseal", "unshare"):
            assert shutil.which(tool), f"{tool} is missing: make debs"
        subprocess.run(["swtpm_setup", "--tpm2", "--tpmstate", str(self.state), "--createek", "--overwrite"],
                       check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        self.sock.unlink(missing_ok=True)
        self.proc = subprocess.Popen(["swtpm", "socket", "--tpm2", "--log", f"file={self.work / 'swtpm.log'}", "--tpmstate", f"dir={self.state}",
                                      "--server", f"type=unixio,path={self.sock}",
                                      "--ctrl", f"type=unixio,path={self.sock}.ctrl",
                                      "--flags", "not-need-init,startup-clear"])
        for _ in range(100):
            if self.sock.exists():
                return
            time.sleep(0.05)
        raise AssertionError("swtpm did not start")

    def cut(self) -> None:
        """The power cut: the TPM2 gets no TPM2_Shutdown."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.start()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def tool(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(list(args), env={**os.environ, "TPM2TOOLS_TCTI": self.tcti}, capture_output=True,
                              text=True, timeout=60, check=check)

    def lockout(self) -> tuple[int, bool]:
        """(the dictionary-attack failure counter, locked out)."""
        out = self.tool("tpm2_getcap", "properties-variable").stdout
        counter = re.search(r"TPM2_PT_LOCKOUT_COUNTER:\s*(0x[0-9a-fA-F]+)", out)
        locked = re.search(r"inLockout:\s*(\d)", out)
        assert counter and locked, out
        return int(counter.group(1), 16), locked.group(1) == "1"


@pytest.fixture
def tpm(tmp_path):
    t = SoftTPM(tmp_path)
    t.start()
    # The SRK that systemd-tpm2-setup (or systemd-cryptenroll) leaves at 0x81000001 on the appliance.
    t.tool("tpm2_createprimary", "-C", "o", "-g", "sha256", "-G", "ecc256:aes128cfb", "-a", SRK_ATTRIBUTES,
           "-c", str(tmp_path / "srk.ctx"))
    t.tool("tpm2_evictcontrol", "-C", "o", "-c", str(tmp_path / "srk.ctx"), SRK)
    t.tool("tpm2_flushcontext", "-t")
    yield t
    t.stop()


def on_the_box(tpm: SoftTPM, data: Path, script: str) -> subprocess.CompletedProcess:
    """`script` (bash) with the image's paths: /var/lib/kluis = `data`, a fresh /run, a TPM2 in /sys/class."""
    setup = (f"set -e; mount --make-rprivate /; mount -t tmpfs none /run; mount -t tmpfs none /sys/class; "
             f"mkdir -p /sys/class/tpm/tpm0; echo 2 > /sys/class/tpm/tpm0/tpm_version_major; "
             f"mount -t tmpfs none /mnt; mkdir /mnt/kluis; mount --bind {data} /mnt/kluis; "
             f"mount -t tmpfs none /var/lib; mkdir /var/lib/kluis; mount --bind /mnt/kluis /var/lib/kluis; "
             f"set +e; LIB={KLUIS_LIB}; ")
    return subprocess.run(["unshare", "-m", "bash", "-c", setup + script], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "TPM2TOOLS_TCTI": tpm.tcti})


def unsealed_same(tpm: SoftTPM, data: Path, seed: Path) -> subprocess.CompletedProcess:
    return on_the_box(tpm, data, f'"$LIB/unseal-signing-key" && cmp -s /run/kluis-signing-key/signing.key {seed} '
                                 f'&& echo SAME; stat -c %s /run/kluis-signing-key/signing.key; '
                                 f'head -c 200 /run/kluis-signing-key/signing.key | grep -a unavailable')


def sealed_box(tmp_path: Path, tpm: SoftTPM) -> tuple[Path, Path]:
    data = tmp_path / "data"
    (data / "keys").mkdir(parents=True)
    seed = tmp_path / "seed"
    seed.write_bytes(os.urandom(32))
    shutil.copy(seed, data / "keys/signing.key")
    result = on_the_box(tpm, data, '"$LIB/seal-signing-key"')
    assert result.returncode == 0, result.stdout + result.stderr
    assert "the audit signing key is sealed to the TPM2" in result.stdout
    assert sorted(p.name for p in (data / "keys").iterdir()) == ["signing.tpm2"]  # the plaintext is gone
    return data, seed


def test_power_cuts_never_lock_the_sealed_key_out(tmp_path, tpm):
    data, seed = sealed_box(tmp_path, tpm)
    start, locked = tpm.lockout()
    assert not locked
    for cut in range(5):
        result = unsealed_same(tpm, data, seed)
        assert "SAME" in result.stdout, f"cut {cut}: {result.stdout}{result.stderr}"
        tpm.cut()
        assert tpm.lockout() == (start, False), f"the lockout counter moved after cut {cut + 1}"

    # The instrument sees what it guards against: a DA-protected use (an object opened by its password,
    # as systemd-creds' transient primary is) followed by a power cut counts as a failure.
    secret = tmp_path / "other"
    secret.write_bytes(b"a secret behind a password")
    tpm.tool("tpm2_create", "-C", SRK, "-p", "right", "-i", str(secret), "-u", str(tmp_path / "o.pub"),
             "-r", str(tmp_path / "o.priv"))
    tpm.tool("tpm2_load", "-C", SRK, "-u", str(tmp_path / "o.pub"), "-r", str(tmp_path / "o.priv"),
             "-c", str(tmp_path / "o.ctx"))
    tpm.tool("tpm2_unseal", "-c", str(tmp_path / "o.ctx"), "-p", "right")
    tpm.cut()
    assert tpm.lockout()[0] == start + 1

    # Locked out (swtpm: three failures): the key still unseals, as the data partition's key does.
    for _ in range(3):
        tpm.tool("tpm2_load", "-C", SRK, "-u", str(tmp_path / "o.pub"), "-r", str(tmp_path / "o.priv"),
                 "-c", str(tmp_path / "o.ctx"))
        tpm.tool("tpm2_unseal", "-c", str(tmp_path / "o.ctx"), "-p", "wrong", check=False)
        tpm.tool("tpm2_flushcontext", "-t")
    assert tpm.lockout()[1], "the TPM2 should be locked out by now"
    result = unsealed_same(tpm, data, seed)
    assert "SAME" in result.stdout, result.stdout + result.stderr


def test_a_cleared_tpm_is_a_stated_unavailable_key_not_a_failed_unit(tmp_path, tpm):
    data, seed = sealed_box(tmp_path, tpm)
    tpm.tool("tpm2_clear", "-c", "p")  # the owner's "clear TPM" in the firmware: the SRK and its seed go
    result = unsealed_same(tpm, data, seed)
    assert "SAME" not in result.stdout
    # It exits 0 (kluis.service starts), says why in one line, and leaves the word for the service.
    assert "kluis-signing-key: the audit signing key sealed to the TPM2" in result.stdout
    assert "did not unseal: the TPM2 refused to unseal it" in result.stdout
    assert re.search(r"^unavailable: the TPM2 refused to unseal it", result.stdout, re.M), result.stdout
    assert sorted(p.name for p in (data / "keys").iterdir()) == ["signing.tpm2"]  # kept, never a fallback file
