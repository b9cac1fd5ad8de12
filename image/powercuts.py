"""The power-cut phase of the appliance boot test (image/boottest.py runs it after the first power-off).

kill -9 leaves the page cache intact; a power cut does not. Here the box's power is cut for real: qemu is
ended through its monitor (`quit`: no shutdown, no flush of the guest's page cache; the disk is a host
file, so what the guest had written to its virtual disk stays and nothing else) at a random moment while
the box offloads recordings from the simulated camera on the test network, then booted again on the same
disk and the same (software) TPM2. The camera serves at a limited rate (a dock's link), so that a cut lands
in a download, or between a download and its commit, its catalog row or the camera's deletion.

  pair          the keeper pairs the camera on /cameras with the code on its screen
  power-cuts    --cuts times (default 10; --seed repeats a run): cut, boot again, and then on the box
                (over SSH) `kluis verify` and `kluis audit verify` are clean, and every recording made on
                the camera is on the camera or stored on the box, once, with the camera's sha256: none lost,
                none twice
  offload-done  after the last boot the offload finishes: every recording is on the box exactly once, the
                camera holds none, the vault's tmp/ holds no part file, verify and audit verify clean
  signing-key   with the TPM2: after every boot the sealed key unsealed (kluis-signing-key.service) and the
                TPM2's dictionary-attack lockout counter did not grow (an unclean power-off after a
                DA-protected use counts as a failure: systemd-creds' seal locked out after three cuts);
                after the cuts the key is still sealed (keys/ holds only signing.tpm2: no plaintext file,
                no fallback), no plaintext signing key on the data partition (not as a file, not in any
                block of the partition), every audit entry written since the first cut is signed, by the
                same key as before the cuts, a checkpoint signed after the reboots and the audit log
                verifies; the overview says the key is sealed. Without: the key file is there and the
                overview says it is not sealed
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import subprocess
import time
from collections import Counter
from pathlib import Path

import aiohttp

CAM_PORT = 8765
MIB = 1 << 20


class Machine:
    """qemu (and swtpm) on the boot test's disk, started again after every cut."""

    def __init__(self, bt, args, work: Path, disk: Path, accel: str, procs: list):
        self.bt, self.args, self.work, self.disk, self.accel, self.procs = bt, args, work, disk, accel, procs
        self.qemu: subprocess.Popen | None = None
        self.swtpm: subprocess.Popen | None = None
        self.boots = 0

    def start(self):
        """Boot; returns the Console of this boot."""
        if self.args.tpm and (self.swtpm is None or self.swtpm.poll() is not None):
            (self.work / "swtpm.sock").unlink(missing_ok=True)
            self.swtpm = self.bt.start_swtpm(self.work)
            self.procs.append(self.swtpm)
            for _ in range(50):
                if (self.work / "swtpm.sock").exists():
                    break
                time.sleep(0.1)
        self.boots += 1
        name = f"console-cut{self.boots}.log"
        self.qemu = self.bt.start_qemu(self.work, self.disk, self.args.tap, self.args.tpm, self.accel,
                                       self.args.memory, console=name)
        self.procs.append(self.qemu)
        return self.bt.Console(self.work / name)

    def cut(self) -> None:
        """The power cut: qemu ends at once, the guest gets no word of it."""
        assert self.qemu is not None
        self.bt.monitor(self.work, "quit")
        try:
            self.qemu.wait(30)
        except subprocess.TimeoutExpired:
            self.qemu.kill()
            self.qemu.wait(10)


def ssh_run(work: Path, address: str, command: str, stdin: str | None = None, timeout: float = 300,
            tty: bool = False) -> tuple[int, str]:
    """`command` on the box as root; `tty`: in a terminal (a command that asks the keeper's code)."""
    result = subprocess.run(["ssh", *(["-tt"] if tty else []), "-i", str(work / "id"), "-o", "BatchMode=yes",
                             "-o", "StrictHostKeyChecking=no",
                             "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=20", "-o", "LogLevel=ERROR",
                             f"root@{address}", command], input=stdin, capture_output=True, text=True,
                            timeout=timeout)
    return result.returncode, (result.stdout + result.stderr).strip()


async def wait_ssh(work: Path, address: str, deadline: float) -> bool:
    while time.monotonic() < deadline:
        rc, _ = await asyncio.to_thread(ssh_run, work, address, "true", None, 40)
        if rc == 0:
            return True
        await asyncio.sleep(3)
    return False


CATALOG_DUMP = """
import json, os, sqlite3
db = sqlite3.connect("file:/var/lib/kluis/catalog.db?mode=ro", uri=True)
rows = db.execute("SELECT source_ref, sha256, camera_serial FROM recordings WHERE source = 'dock'").fetchall()
tmp = sorted(os.listdir("/var/lib/kluis/tmp"))
print(json.dumps({"rows": rows, "tmp": tmp}))
"""

# No file and no block of the data partition holds the signing key's seed (which only the TPM2 opens now).
SEED_SCAN = """
import os, subprocess, sys
subprocess.run(["/usr/lib/kluis/unseal-signing-key"], check=True)
seed = open("/run/kluis-signing-key/signing.key", "rb").read()
assert len(seed) == 32, len(seed)
found = []
for base, dirs, files in os.walk("/var/lib/kluis"):
    for name in files:
        path = os.path.join(base, name)
        with open(path, "rb") as f:
            if seed in f.read():
                found.append(path)
blocks = 0
with open("/dev/mapper/kluis-data", "rb", buffering=0) as dev:
    tail = b""
    while chunk := dev.read(16 << 20):
        if seed in tail + chunk:
            blocks += 1
        tail = chunk[-31:]
print(f"files holding the seed: {found or 'none'}; partition chunks holding it: {blocks}")
sys.exit(1 if found or blocks else 0)
"""


# After every boot: did the sealed key unseal (32 bytes in kluis-signing-key.service's ramfs, never read
# here), and the TPM2's dictionary-attack lockout counter (swtpm locks out at 3).
KEY_PROBE = (r"stat -c %s /run/kluis-signing-key/signing.key 2>&1; "
             r"tpm2_getcap -T device:/dev/tpmrm0 properties-variable 2>&1 | grep -E 'LOCKOUT_COUNTER|inLockout'; "
             r"journalctl -b -o cat -u kluis-signing-key.service -u kluis.service 2>&1 | "
             r"grep -E 'signing key|CREDENTIALS' | tail -3")

# The audit entries after `after` (argv[1]): each signed, by the key whose public half the box recorded at
# its setup (meta signing_public_key), which is also the sealed key's.
SIGNED_SINCE = """
import json, sqlite3, sys
from nacl.signing import SigningKey, VerifyKey
from appliance import audit
db = sqlite3.connect("file:/var/lib/kluis/catalog.db?mode=ro", uri=True)
public = db.execute("SELECT value FROM meta WHERE key = 'signing_public_key'").fetchone()[0]
sealed = SigningKey(open("/run/kluis-signing-key/signing.key", "rb").read())
rows = db.execute("SELECT seq, hash, signature FROM audit_log WHERE seq > ? ORDER BY seq", (int(sys.argv[1]),)).fetchall()
verify = VerifyKey(bytes.fromhex(public))
unsigned = [seq for seq, _, sig in rows if not sig]
bad = [seq for seq, h, sig in rows if sig and not audit.entry_signature_valid(verify, h, sig)]
print(json.dumps({"entries": len(rows), "unsigned": unsigned, "bad": bad,
                  "same_key": bytes(sealed.verify_key).hex() == public}))
"""

AUDIT_HEAD = """
import sqlite3
db = sqlite3.connect("file:/var/lib/kluis/catalog.db?mode=ro", uri=True)
print(db.execute("SELECT COALESCE(MAX(seq), 0) FROM audit_log").fetchone()[0])
"""


async def camera_api(http: aiohttp.ClientSession, base: str, method: str, path: str, body: dict | None = None) -> dict:
    async with http.request(method, base + path, json=body) as resp:
        resp.raise_for_status()
        return await resp.json()


def on_camera(state: Path) -> dict[str, str]:
    """The camera's recordings (id -> sha256), read off its state directory."""
    found = {}
    for path in (state / "recordings").glob("*.json"):
        try:
            entry = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        found[entry["id"]] = entry["sha256"]
    return found


def tally(made: dict[str, str], camera: dict[str, str], rows: list, serial: str) -> list[str]:
    """What is wrong: a recording lost (on neither side), stored twice, stored with another hash, or a
    recording on the box that the camera never made."""
    rows = [r for r in rows if r[2] == serial]
    stored = {r[0]: r[1] for r in rows}
    problems = [f"{ref} stored {n} times" for ref, n in Counter(r[0] for r in rows).items() if n > 1]
    for rec_id, sha in made.items():
        if rec_id in stored and stored[rec_id] != sha:
            problems.append(f"{rec_id} stored with sha256 {stored[rec_id][:12]}, made as {sha[:12]}")
        if rec_id not in stored and rec_id not in camera:
            problems.append(f"{rec_id} LOST: neither on the camera nor on the box")
    problems += [f"{ref} on the box, never made by the camera" for ref in stored if ref not in made]
    return problems


PASSWORD_FILE = "/run/kluis-boottest.pw"  # the keeper's and the auditor's password, for kluis-cli (tmpfs)
AUDIT_VERIFY = f"kluis-cli audit verify --user controleur --password-file {PASSWORD_FILE}"


async def add_auditor(bt, work: Path, address: str, password: str) -> str:
    """An auditor (who may run `kluis audit verify`), added by the keeper on the command line; '' or why not.
    The keeper has a second factor (a new box requires it): the command runs in a terminal and is given a code."""
    rc, out = await asyncio.to_thread(
        ssh_run, work, address, f"umask 077 && cat > {PASSWORD_FILE} && chown kluis: {PASSWORD_FILE}", password + "\n")
    if rc != 0:
        return f"writing the password file failed ({rc}): {out[-300:]}"
    for _ in range(3):
        code = ""
        if bt.KEEPER in bt.TOTP_SECRETS:
            # A code from the start of its 30 s step: the box accepts it for up to a minute, and on a busy
            # machine the command needs most of that before it reads the code (seen: 75 s; refused once).
            while time.time() % 30 > 3:
                await asyncio.sleep(0.5)
            code = await bt.fresh_code(bt.TOTP_SECRETS[bt.KEEPER])
        rc, out = await asyncio.to_thread(
            ssh_run, work, address, f"kluis-cli users add controleur --role auditor --new-password-file "
            f"{PASSWORD_FILE} --user beheerder --password-file {PASSWORD_FILE}", code + "\n", 300, True)
        if rc == 0 or "wrong password or code" not in out:
            break
        bt.log(f"adding the auditor: the code was refused (late on a busy machine?); again: {out[-120:]}")
    return "" if rc == 0 else f"adding an auditor failed ({rc}): {out[-300:]}"


async def box_state(work: Path, address: str) -> tuple[list, list[str], list[str]]:
    """(catalog rows of dock recordings, tmp/ listing, problems of verify and audit verify)."""
    problems = []
    for command in ("kluis-cli verify", AUDIT_VERIFY):
        rc, out = await asyncio.to_thread(ssh_run, work, address, command)
        if rc != 0:
            problems.append(f"`{command}` exited {rc}: {out[-300:]}")
    rc, out = await asyncio.to_thread(ssh_run, work, address, "/opt/kluis/bin/python -", CATALOG_DUMP)
    if rc != 0:
        problems.append(f"catalog dump failed: {out[-300:]}")
        return [], [], problems
    dump = json.loads(out.splitlines()[-1])
    return dump["rows"], dump["tmp"], problems


async def in_flight(http, base: str, since: int, deadline: float) -> dict | None:
    """The download the box has begun since record `since` of the camera's stats, once bytes flow."""
    while time.monotonic() < deadline:
        try:
            served = (await camera_api(http, base, "GET", "/sim/stats"))["served"]
        except (aiohttp.ClientError, OSError):
            served = []
        for record in served[since:]:
            if not record["complete"] and record["sent"] > 0:
                return record
        await asyncio.sleep(0.25)
    return None


async def pair(bt, box_url: str, state: Path, serial: str) -> str:
    """The keeper pairs the camera with the code on its screen; what went wrong, or ''."""
    http = await bt.logged_in(box_url, time.monotonic() + 240)
    if http is None:
        return "the keeper could not log in"
    async with http:
        code = None
        for _ in range(60):
            shown = (state / "display.txt").read_text() if (state / "display.txt").exists() else ""
            if match := re.search(r"pairing code: (\d+)", shown):
                code = match.group(1)
                break
            await asyncio.sleep(1)
        if code is None:
            return "the camera shows no pairing code"
        for _ in range(20):  # the box must have found the camera on the network first
            page = await (await http.get(f"{box_url}/cameras")).text()
            answer = await http.post(f"{box_url}/cameras/koppelen", allow_redirects=False,
                                     data={"csrf": bt.csrf_of(page), "serial": serial, "code": code,
                                           "officer": "P. Stroomuitval"})
            if answer.status == 303:
                return ""
            await asyncio.sleep(5)
        return f"pairing answered {answer.status}"


async def overview_says_sealed(bt, box_url: str) -> tuple[bool | None, str]:
    http = await bt.logged_in(box_url, time.monotonic() + 180)
    if http is None:
        return None, "no login"
    async with http:
        html = await (await http.get(f"{box_url}/")).text()
    shown = re.search(r'<p[^>]*id="signing-key-state">(.*?)</p>', html, re.S)
    if not shown:
        return None, "the overview says nothing about the signing key"
    text = re.sub(r"\s+", " ", shown.group(1)).strip()
    return bool(re.search(r"is sealed to the TPM2|is verzegeld in de TPM2", text)), text


async def run(bt, args, work: Path, disk: Path, accel: str, procs: list) -> None:
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 32)
    rng = random.Random(seed)
    bt.log(f"power cuts: {args.cuts} cuts, seed {seed} (repeat with --seed {seed}), recordings of "
           f"{args.recording_mib} MiB served at {args.camera_rate_mib} MiB/s")
    if not (work / "id").exists():
        bt.ssh_switch_on(work, disk)  # the documented switch: the checks run `kluis-cli` on the box over SSH
    else:
        subprocess.run(["mcopy", "-o", "-i", f"{disk}@@1M", str(work / "id.pub"), "::/kluis/ssh/authorized_keys"],
                       check=True)
    machine = Machine(bt, args, work, disk, accel, procs)
    state = work / "camera"
    camera = bt.start_camera(work, args.bridge_ip, port=CAM_PORT, rate=args.camera_rate_mib * MIB)
    procs.append(camera)
    base = f"http://{args.bridge_ip}:{CAM_PORT}"
    office_url = f"https://127.0.0.1:{bt.OFFICE_PORT}"
    made: dict[str, str] = {}
    landed: list[str] = []
    made_auditor = False
    recording_s = args.recording_mib / args.camera_rate_mib
    probes: list[tuple[str, bool, int | None, str]] = []  # per boot: (which, key unsealed, lockout counter, text)

    async def boot(what: str) -> str | None:
        """Boot again; the box's address once SSH answers, or None (a check failed)."""
        machine.start()
        if not await bt.wait_https(office_url + "/", time.monotonic() + args.boot_timeout):
            bt.check("power-cuts", False, f"{what}: no HTTPS answer after the boot")
            return None
        address = bt.lease_address(work)
        if not address or not await wait_ssh(work, address, time.monotonic() + 180):
            bt.check("power-cuts", False, f"{what}: no SSH on {address}")
            return None
        if args.tpm:
            rc, probe = await asyncio.to_thread(ssh_run, work, address, KEY_PROBE)
            unsealed = probe.splitlines()[0].strip() == "32" if probe else False
            counter = re.search(r"LOCKOUT_COUNTER:\s*(0x[0-9a-fA-F]+|\d+)", probe)
            probes.append((what, unsealed, int(counter.group(1), 0) if counter else None, probe))
            bt.log(f"{what}: signing key {'unsealed' if unsealed else 'NOT unsealed'}, TPM2 lockout counter "
                   f"{counter.group(1) if counter else '?'}")
        # /run is a tmpfs: the password file for kluis-cli is written again after every boot
        if made_auditor:
            await asyncio.to_thread(ssh_run, work, address, f"umask 077 && cat > {PASSWORD_FILE} && "
                                    f"chown kluis: {PASSWORD_FILE}", bt.PASSWORD + "\n")
        return address

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as http:
        address = await boot("the first boot after the power-off")
        if address is None:
            return
        why = await pair(bt, f"https://{address}", state, bt.CAMERA)
        if not bt.check("pair", not why, why or f"{bt.CAMERA} paired by the keeper with the code on its screen"):
            return
        why = await add_auditor(bt, work, address, bt.PASSWORD)
        if why:
            bt.check("power-cuts", False, why)
            return
        made_auditor = True

        async def top_up(least: int) -> None:
            while len(on_camera(state)) < least:
                entry = await camera_api(http, base, "POST", "/sim/record",
                                         {"seconds": 2, "filler_mb": args.recording_mib})
                made[entry["id"]] = entry["sha256"]

        rc, out = await asyncio.to_thread(ssh_run, work, address, "/opt/kluis/bin/python -", AUDIT_HEAD)
        before_cuts = int(out.splitlines()[-1]) if rc == 0 and out else 0
        began = time.monotonic()
        for cut in range(1, args.cuts + 1):
            await top_up(3)
            since = len((await camera_api(http, base, "GET", "/sim/stats"))["served"])
            record = await in_flight(http, base, since, time.monotonic() + 300)
            if record is None:
                bt.check("power-cuts", False, f"cut {cut}: the box began no download within 300 s")
                return
            await asyncio.sleep(rng.uniform(0, 1.5 * recording_s))
            served = (await camera_api(http, base, "GET", "/sim/stats"))["served"][since:]
            machine.cut()
            going = [r for r in served if not r["complete"]]
            where = (f"in {going[-1]['id']} at byte {going[-1]['start'] + going[-1]['sent']:,} of "
                     f"{going[-1]['end']:,}" if going else "between downloads (commit, catalog or delete)")
            landed.append(where)
            bt.log(f"cut {cut}/{args.cuts}: power cut {where}")
            address = await boot(f"cut {cut}")
            if address is None:
                return
            rows, tmp, problems = await box_state(work, address)
            problems += tally(made, on_camera(state), rows, bt.CAMERA)
            stored = sum(1 for r in rows if r[2] == bt.CAMERA)
            bt.log(f"cut {cut}: after the boot {stored} stored on the box, {len(on_camera(state))} on the camera, "
                   f"tmp/ {tmp or 'empty'}; {'; '.join(problems) or 'verify, audit verify clean; nothing lost or twice'}")
            if problems:
                bt.check("power-cuts", False, f"cut {cut} ({where}), seed {seed}: {'; '.join(problems)}")
                return
        mid = sum(1 for w in landed if w.startswith("in "))
        bt.check("power-cuts", True, f"{args.cuts} power cuts (seed {seed}; {mid} in a download, "
                 f"{args.cuts - mid} between steps) in {time.monotonic() - began:.0f} s: after every boot verify "
                 f"and audit verify clean, every recording on the camera or on the box, once")

        # The offload finishes: everything on the box once, nothing left on the camera or in tmp/.
        until = time.monotonic() + 600
        while time.monotonic() < until and on_camera(state):
            await asyncio.sleep(3)
        await asyncio.sleep(3)  # the last catalog row is written before the camera's deletion: settled
        rows, tmp, problems = await box_state(work, address)
        problems += tally(made, on_camera(state), rows, bt.CAMERA)
        left = on_camera(state)
        stored = Counter(r[0] for r in rows if r[2] == bt.CAMERA)
        # tmp/'s folders are other writers' state (the USB ingest's slot locks): a download leaves files
        parts = [name for name in tmp if name.endswith((".part", ".hdr", ".tmp"))]
        ok = not problems and not left and set(stored) == set(made) and not parts
        bt.check("offload-done", ok, f"{len(stored)} of {len(made)} recordings on the box, {len(left)} left on the "
                 f"camera, part files in tmp/: {parts or 'none'}; {'; '.join(problems) or 'verify and audit verify clean'}")

        await signing_key_check(bt, args, work, address, probes, before_cuts)
    machine.cut()


async def signing_key_check(bt, args, work: Path, address: str, probes: list, before_cuts: int) -> None:
    """(b) the audit signing key: sealed to the TPM2 and signing after the reboots; or plainly unsealed."""
    sealed_ui, said = await overview_says_sealed(bt, f"https://{address}")
    rc, listing = await asyncio.to_thread(ssh_run, work, address, "ls -A /var/lib/kluis/keys")
    names = listing.split()
    if not args.tpm:
        ok = "signing.key" in names and "signing.tpm2" not in names and sealed_ui is False
        bt.check("signing-key", ok, f"no TPM2: keys/ holds {names}; the overview says: {said}")
        return
    problems = []
    if names != ["signing.tpm2"]:
        problems.append(f"keys/ holds {names}, not only signing.tpm2 (sealed, no plaintext fallback)")
    refused = [f"{what}: {text[-200:]}" for what, unsealed, _, text in probes if not unsealed]
    if refused:
        problems.append(f"the sealed key did not unseal after {len(refused)} of {len(probes)} boots: {refused[0]}")
    counters = [c for _, _, c, _ in probes if c is not None]
    if len(counters) != len(probes) or (counters and max(counters) > counters[0]):
        problems.append(f"the TPM2's lockout counter over the boots: {counters} (of {len(probes)} boots)")
    rc, out = await asyncio.to_thread(ssh_run, work, address, f"/opt/kluis/bin/python - {before_cuts}", SIGNED_SINCE)
    try:
        signed = json.loads(out.splitlines()[-1])
    except (ValueError, IndexError):
        signed = None
        problems.append(f"reading the audit entries after the cuts failed ({rc}): {out[-300:]}")
    if signed is not None and (not signed["entries"] or signed["unsigned"] or signed["bad"] or not signed["same_key"]):
        problems.append(f"audit entries after the first cut (after entry {before_cuts}): {signed}")
    rc, scan = await asyncio.to_thread(ssh_run, work, address, "/opt/kluis/bin/python -", SEED_SCAN)
    if rc != 0:
        problems.append(f"seed scan: {scan[-300:]}")
    rc1, made = await asyncio.to_thread(ssh_run, work, address, "kluis-cli audit checkpoint")
    rc2, verified = await asyncio.to_thread(ssh_run, work, address, AUDIT_VERIFY)
    if rc1 or rc2:
        problems.append(f"audit checkpoint ({rc1}): {made[-200:]}; audit verify ({rc2}): {verified[-200:]}")
    if sealed_ui is not True:
        problems.append(f"the overview says: {said}")
    bt.check("signing-key", not problems, "; ".join(problems) or
             f"sealed to the TPM2 (keys/ holds only signing.tpm2), unsealed after each of {len(probes)} boots, "
             f"TPM2 lockout counter {counters[0] if counters else '?'} throughout; "
             f"{signed['entries'] if signed else '?'} audit entries since the first cut, each signed by the same key; "
             f"{scan.splitlines()[-1] if scan else ''}; "
             f"a checkpoint signed after {args.cuts + 1} boots and `audit verify`: {verified.splitlines()[-1]}; "
             f"the overview says: {said}")
