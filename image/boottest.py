"""The slow appliance check (run by image/test, inside the network namespace image/test made).

Boots a copy of image/out/kluis.raw in qemu (UEFI: OVMF; software emulation unless KLUIS_QEMU_ACCEL=kvm)
with two NICs: "office" (qemu user-mode networking, isolated: restrict=on; port 443 forwarded to
127.0.0.1:8443 of this namespace) and "cams" (a tap on this namespace's bridge: the test network, with a
DHCP server, a simulated camera and the checks). A software TPM2 (swtpm) unless --no-tpm. Then, from
outside the box, as a person on the LAN would:

  https-office    HTTPS answers through the office NIC (the first-boot wizard: / -> /setup)
  dhcp            the box took an address on the test network
  mdns            kluis.local resolves over mDNS on the test network to that address; _https._tcp seen
  https-lan       HTTPS answers on that address (through the box's firewall)
  firewall        SSH (22) and other ports are dropped on that address (with --ssh: 22 is open)
  ssh             (--ssh: a key put on the boot partition turns SSH on) root logs in with that key;
                  the box says `systemctl is-system-running`: running, and rates kluis.service OK
  wizard          the first-boot wizard runs to the end (office, keeper, recovery key typed back)
  camera          a simulated camera (kluis camera-sim) on the test network appears on /cameras
  healthy         the keeper's overview answers; no unit failed; kluis.service ready, no watchdog kill
  at-rest         the data partition is LUKS2 unlocked by the TPM2 (with swtpm), or plain and said so
  backup          a USB disk labelled KLUIS-BACKUP plugged in (hot-plugged) gets an encrypted backup,
                  which `kluis backup verify` accepts here, read off the disk image after the power-off
  usb-stick       an unknown USB stick (FAT, no camera profile) hot-plugged is only listed (usb_unknown)
  usb-camera      a USB camera (FAT32, novatek layout) hot-plugged is listed as found, the keeper registers
                  it on /cameras, and plugged in again it is ingested without anyone logged in; after the
                  power-off its disk image holds no recordings any more
  stop            an ACPI power-off stops the box cleanly (kluis.serve: stopped) within 3 minutes

Then the power cuts (image/powercuts.py; --cuts N, default 10, 0: none; --seed repeats a run), booted
again on the same disk with SSH switched on:

  pair            the keeper pairs the simulated camera with the code on its screen
  power-cuts      N times the power cut (qemu `quit`) at a random moment of the offload from the camera, and
                  after every boot `kluis verify` and `kluis audit verify` clean, every recording on the
                  camera or on the box (once, its sha256 the camera's): none lost, none twice
  offload-done    the offload then finishes: all on the box once, none on the camera, no part file left
  signing-key     (TPM2) the audit signing key is sealed to the TPM2: no plaintext copy in any file or block
                  of the data partition, a checkpoint signed after the reboots verifies, the overview says
                  so; (--no-tpm) the key file is there and the overview says it is not sealed

Prints one line per check and a summary; exits 1 when any check failed.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

OVMF_CODE = "/usr/share/OVMF/OVMF_CODE_4M.fd"
OVMF_VARS = "/usr/share/OVMF/OVMF_VARS_4M.fd"
OFFICE_PORT = 8443
CAM_MAC = "52:54:00:4b:4c:02"
OFFICE = "Handhaving proefkantoor"
MUNICIPALITY = "Gemeente Beeldtest"  # the issuing party on a transfer form, asked by the wizard
KEEPER = "beheerder"
PASSWORD = "een goed wachtwoord voor de kluis"
KEY = re.compile(r"KLUIS(?:-[A-Z2-7]{1,5}){11}")
CAMERA = "IMGCAM01"
USB_CAMERA = "IMGUSB01"  # the camera's USB serial number (and its volume label): the serial its profile reads

results: list[tuple[str, bool, str]] = []
began = time.monotonic()


def check(name: str, ok: bool, detail: str = "") -> bool:
    results.append((name, ok, detail))
    print(f"[{time.monotonic() - began:7.1f}s] {'PASS' if ok else 'FAIL'} {name}: {detail}", flush=True)
    return ok


def log(text: str) -> None:
    print(f"[{time.monotonic() - began:7.1f}s] {text}", flush=True)


class Console:
    """The box's serial console (the kernel, systemd's status, and the journal: the test's copy of the
    image has systemd.journald.forward_to_console=1 on its command line)."""

    def __init__(self, path: Path):
        self.path = path

    def text(self) -> str:
        try:
            raw = self.path.read_bytes().decode(errors="replace")
        except FileNotFoundError:
            return ""
        return re.sub(r"\x1b\[[0-9;?=]*[A-Za-z]", "", raw).replace("\r", "")

    def find(self, pattern: str) -> re.Match | None:
        return re.search(pattern, self.text(), re.M)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def prepare_disk(image: Path, work: Path, size_gb: int) -> Path:
    """A sparse copy of the image, grown to size_gb (room for the data partition systemd-repart makes), with
    the journal forwarded to the serial console (for the checks and for diagnosis)."""
    disk = work / "disk.raw"
    subprocess.run(["cp", "--sparse=always", str(image), str(disk)], check=True)
    os.truncate(disk, size_gb << 30)
    esp = f"{disk}@@1M"
    entry = subprocess.run(["mtype", "-i", esp, "::/loader/entries/kluis.conf"], check=True,
                           capture_output=True, text=True).stdout
    entry = re.sub(r"^(options .*)$", r"\1 systemd.journald.forward_to_console=1", entry, flags=re.M)
    (work / "kluis.conf").write_text(entry)
    subprocess.run(["mcopy", "-o", "-i", esp, str(work / "kluis.conf"), "::/loader/entries/kluis.conf"], check=True)
    return disk


def ssh_switch_on(work: Path, disk: Path) -> None:
    """The documented switch: an authorized_keys file at kluis/ssh/ on the boot partition."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(work / "id")], check=True)
    subprocess.run(["mcopy", "-o", "-i", f"{disk}@@1M", str(work / "id.pub"), "::/kluis/ssh/authorized_keys"],
                   check=True)


def ssh(work: Path, address: str, command: str) -> str:
    result = subprocess.run(["ssh", "-i", str(work / "id"), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
                             "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=20", "-o", "LogLevel=ERROR",
                             f"root@{address}", command], capture_output=True, text=True, timeout=120)
    return (result.stdout + result.stderr).strip()


def make_backup_disk(work: Path) -> Path:
    """The keeper's backup disk: an empty ext4 file system labelled KLUIS-BACKUP."""
    disk = work / "backup.img"
    with open(disk, "wb") as f:
        f.truncate(512 << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "KLUIS-BACKUP", str(disk)], check=True)
    return disk


async def plug_backup_disk(work: Path, console: Console, deadline: float) -> str:
    """Plug the disk in (USB), wait for the backup the box makes; what went wrong, or ''."""
    monitor(work, f"drive_add 0 if=none,id=backup,format=raw,file={work / 'backup.img'}")
    monitor(work, "device_add usb-storage,bus=usb.0,drive=backup,id=backupdisk")
    while time.monotonic() < deadline:
        if console.find(r"kluis-backup\.service: Failed|Failed to start kluis-backup"):
            return "kluis-backup.service failed"
        if console.find(r"backup \S+ written to /media/kluis-backup/kluis") and \
                console.find(r"Finished kluis-backup\.service|kluis-backup\.service: Deactivated successfully"):
            return ""
        await asyncio.sleep(3)
    return "no backup within the time"


def make_usb_disks(work: Path) -> None:
    """A USB camera (FAT32, the novatek profile's layout, two real recordings) and an unknown stick."""
    from datetime import datetime, timezone

    from appliance.dock.footage import make_mp4

    for name, label in (("usbcam.img", USB_CAMERA), ("stick.img", "VAKANTIE")):
        with open(work / name, "wb") as f:
            f.truncate(64 << 20)
        subprocess.run(["mkfs.vfat", "-F", "32", "-n", label, str(work / name)], check=True, capture_output=True)
    cam = str(work / "usbcam.img")
    subprocess.run(["mmd", "-i", cam, "::DCIM", "::DCIM/MOVIE"], check=True)
    for i, minute in enumerate((15, 22), start=1):
        clip = work / f"usbclip{i}.mp4"
        make_mp4(clip, 3, datetime(2026, 12, 7, 9, minute, 30, tzinfo=timezone.utc), label=f"USB {i}")
        subprocess.run(["mcopy", "-i", cam, str(clip), f"::DCIM/MOVIE/2026_1207_10{minute}30_00{i}.MP4"], check=True)
    stick = str(work / "stick.img")
    subprocess.run(["mmd", "-i", stick, "::Fotos"], check=True)
    subprocess.run(["mcopy", "-i", stick, str(work / "usbclip1.mp4"), "::Fotos/vakantie.mp4"], check=True)


def plug(work: Path, drive: str, image: str, serial: str | None = None) -> None:
    """Hot-plug a disk image as a USB disk; `serial`: the USB serial number the device reports."""
    monitor(work, f"drive_add 0 if=none,id={drive},format=raw,file={work / image}")
    monitor(work, f"device_add usb-storage,bus=usb.0,drive={drive},id={drive}dev" + (f",serial={serial}" if serial else ""))


async def console_says(console: Console, pattern: str, deadline: float, failed: str | None = None) -> str:
    """'' once the console shows `pattern`; what went wrong otherwise."""
    while time.monotonic() < deadline:
        if console.find(pattern):
            return ""
        if failed and console.find(failed):
            return f"the console says: {console.find(failed).group(0)}"
        await asyncio.sleep(2)
    return f"no {pattern!r} on the console within the time"


async def usb_checks(work: Path, console: Console, http, box_url: str) -> bool:
    """The unknown stick is only listed; the camera is found, registered by the keeper, then ingested
    and emptied with nobody logged in. Returns whether the camera's image should be read at power-off."""
    failed = r"kluis-usb@\S+: Failed|Failed to start kluis-usb@"
    plug(work, "stick", "stick.img")
    why = await console_says(console, r"ALERT usb_unknown", time.monotonic() + 180, failed)
    check("usb-stick", not why, why or "listed once as an unknown USB volume (usb_unknown), not read")
    plug(work, "usbcam", "usbcam.img", serial=USB_CAMERA)
    why = await console_says(console, rf"USB camera {USB_CAMERA} \(novatek\) found", time.monotonic() + 180, failed)
    if why:
        return not check("usb-camera", False, why)
    page = await (await http.get(f"{box_url}/cameras")).text()
    answer = await http.post(f"{box_url}/cameras/usb/{USB_CAMERA}/registreren", allow_redirects=False,
                             data={"csrf": csrf_of(page), "mode": "personal", "officer": "J. Jansen"})
    if answer.status != 303:
        return not check("usb-camera", False, f"registering on /cameras answered {answer.status}")
    home = await (await http.get(f"{box_url}/")).text()
    await http.post(f"{box_url}/logout", data={"csrf": csrf_of(home)})  # nobody is logged in when it comes back
    monitor(work, "device_del usbcamdev")
    await asyncio.sleep(5)
    monitor(work, "drive_del usbcam")
    plug(work, "usbcam2", "usbcam.img", serial=USB_CAMERA)
    why = await console_says(console, rf"{USB_CAMERA} \(novatek\): done: 2 stored, 2 deleted on the camera",
                             time.monotonic() + 300, failed)
    if why:
        return not check("usb-camera", False, why)
    return True


def usb_camera_emptied(work: Path) -> tuple[bool, str]:
    listing = subprocess.run(["mdir", "-b", "-i", str(work / "usbcam.img"), "::DCIM/MOVIE"], capture_output=True,
                             text=True).stdout
    left = [line for line in listing.splitlines() if line.upper().endswith(".MP4")]
    return not left, f"after the power-off DCIM/MOVIE holds {left or 'no recordings'}"


def verify_backup_disk(work: Path) -> tuple[bool, str]:
    """Read the backup off the disk image (debugfs: no mount) and check it with `kluis backup verify`."""
    out = work / "backup-copy"
    out.mkdir()
    subprocess.run(["debugfs", "-R", f"rdump /kluis {out}", str(work / "backup.img")], check=True,
                   capture_output=True)
    result = subprocess.run([sys.executable, "-m", "appliance", "backup", "verify", "--from", str(out / "kluis")],
                            capture_output=True, text=True, timeout=300)
    return result.returncode == 0, (result.stdout + result.stderr).strip().replace("\n", "; ")


def start_dnsmasq(work: Path, bridge: str, bridge_ip: str) -> subprocess.Popen:
    net = bridge_ip.rsplit(".", 1)[0]
    return subprocess.Popen([
        "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--port=0", f"--interface={bridge}",
        "--bind-interfaces", f"--dhcp-range={net}.100,{net}.150,255.255.255.0,1h", "--user=root",
        f"--dhcp-leasefile={work / 'leases'}", f"--pid-file={work / 'dnsmasq.pid'}", "--log-dhcp",
        f"--log-facility={work / 'dnsmasq.log'}"])


def start_swtpm(work: Path) -> subprocess.Popen:
    state = work / "tpm"
    state.mkdir(exist_ok=True)  # started again on the same state after a power cut
    return subprocess.Popen(["swtpm", "socket", "--tpm2", "--tpmstate", f"dir={state}",
                             "--ctrl", f"type=unixio,path={work / 'swtpm.sock'}", "--log", f"file={work / 'swtpm.log'}"])


def start_qemu(work: Path, disk: Path, tap: str, tpm: bool, accel: str, memory_mb: int,
               console: str = "console.log") -> subprocess.Popen:
    if not (work / "vars.fd").exists():  # the machine's own UEFI variables, kept across its boots
        shutil.copy(OVMF_VARS, work / "vars.fd")
    # KVM: the host's CPU less IA32_ARCH_CAPABILITIES, which nested KVM (a CI machine that is itself a VM)
    # refuses to set ("failed to set MSR 0x10a"), ending qemu at once.
    cmd = [
        "qemu-system-x86_64", "-machine", "q35", "-accel", accel,
        "-cpu", "max" if accel == "tcg" else "host,-arch-capabilities",
        "-smp", "2", "-m", str(memory_mb),
        "-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}",
        "-drive", f"if=pflash,format=raw,unit=1,file={work / 'vars.fd'}",
        "-drive", f"file={disk},format=raw,if=none,id=disk0,cache=unsafe",
        "-device", "virtio-blk-pci,drive=disk0,bootindex=1",
        # NIC 1, "office": user-mode networking, isolated (restrict=on: no way out), HTTPS forwarded.
        "-netdev", f"user,id=office,restrict=on,hostfwd=tcp:127.0.0.1:{OFFICE_PORT}-:443",
        "-device", "virtio-net-pci,netdev=office,mac=52:54:00:4b:4c:01,romfile=",
        # NIC 2, "cams": the test network (this namespace's bridge).
        "-netdev", f"tap,id=cams,ifname={tap},script=no,downscript=no",
        "-device", f"virtio-net-pci,netdev=cams,mac={CAM_MAC},romfile=",
        "-object", "rng-random,filename=/dev/urandom,id=rng0", "-device", "virtio-rng-pci,rng=rng0",
        "-device", "qemu-xhci,id=usb",  # for the backup disk plugged in later
        "-serial", f"file:{work / console}", "-display", "none",
        "-monitor", f"unix:{work / 'monitor.sock'},server,nowait", "-no-reboot",
    ]
    if tpm:
        cmd += ["-chardev", f"socket,id=chrtpm,path={work / 'swtpm.sock'}",
                "-tpmdev", "emulator,id=tpm0,chardev=chrtpm", "-device", "tpm-tis,tpmdev=tpm0"]
    return subprocess.Popen(cmd, stdout=open(work / "qemu.log", "wb"), stderr=subprocess.STDOUT)


def monitor(work: Path, command: str) -> None:
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(work / "monitor.sock"))
        s.sendall(command.encode() + b"\n")
        time.sleep(0.5)


def lease_address(work: Path) -> str | None:
    try:
        for line in (work / "leases").read_text().splitlines():
            fields = line.split()
            if len(fields) >= 3 and fields[1].lower() == CAM_MAC:
                return fields[2]
    except FileNotFoundError:
        pass
    return None


def session() -> aiohttp.ClientSession:
    # The box's certificate is self-signed (its fingerprint is what a keeper checks); cookies for IPs too.
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False), cookie_jar=aiohttp.CookieJar(unsafe=True),
                                 timeout=aiohttp.ClientTimeout(total=60))


async def wait_https(url: str, deadline: float) -> tuple[int, str] | None:
    async with session() as http:
        while time.monotonic() < deadline:
            try:
                async with http.get(url, allow_redirects=False) as response:
                    return response.status, response.headers.get("Location", "")
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
                await asyncio.sleep(3)
    return None


def mdns_lookup(bridge_ip: str, timeout_s: float) -> tuple[list[str], list[str]]:
    """kluis.local's IPv4 addresses, and the _https._tcp instances (name, port) seen, over multicast on
    the bridge."""
    from zeroconf import AddressResolverIPv4, IPVersion, ServiceBrowser, Zeroconf

    zc = Zeroconf(interfaces=[bridge_ip], ip_version=IPVersion.V4Only)
    services: list[str] = []

    class Listener:
        def add_service(self, zc_, type_, name):
            info = zc_.get_service_info(type_, name, timeout=3000)
            services.append(f"{name} port {info.port if info else '?'}")

        update_service = remove_service = lambda *a: None

    try:
        ServiceBrowser(zc, "_https._tcp.local.", Listener())
        deadline = time.monotonic() + timeout_s
        addresses: list[str] = []
        while time.monotonic() < deadline and not (addresses and services):
            resolver = AddressResolverIPv4("kluis.local.")
            if resolver.request(zc, 3000):
                addresses = resolver.parsed_addresses()
            time.sleep(1)
        return addresses, services
    finally:
        zc.close()


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    if not match:
        raise AssertionError("no CSRF token on the page")
    return match.group(1)


async def walk_wizard(url: str) -> str:
    """The first-boot wizard as the keeper would: returns what went wrong, or ''."""
    async with session() as http:
        page = await (await http.get(f"{url}/setup")).text()
        form = {"csrf": csrf_of(page), "office": OFFICE, "municipality": MUNICIPALITY, "keeper": KEEPER,
                "password": PASSWORD, "password_again": PASSWORD}
        response = await http.post(f"{url}/setup/begin", data=form, allow_redirects=False)
        if response.status != 303:
            return f"step 1 answered {response.status}"
        page = await (await http.get(f"{url}/setup")).text()
        key = KEY.search(page)
        if not key:
            return "no recovery key shown"
        recovery = key.group(0)
        response = await http.post(f"{url}/setup/opgeschreven", data={"csrf": csrf_of(page)}, allow_redirects=False)
        page = await (await http.get(f"{url}/setup")).text()
        groups = [int(n) for n in re.findall(r'name="group(\d+)"', page)]
        parts = recovery.split("-")
        typed = {f"group{n}": parts[n] for n in groups}
        response = await http.post(f"{url}/setup/bevestigen", data={"csrf": csrf_of(page), **typed},
                                   allow_redirects=False)
        if response.status != 303:
            return f"confirming the recovery key answered {response.status}"
        page = await (await http.get(f"{url}/setup")).text()
        response = await http.post(f"{url}/setup/archief", data={"csrf": csrf_of(page), "skip": "1"},
                                   allow_redirects=False)
        if response.status != 303:
            return f"skipping the archive answered {response.status}"
        done = await (await http.get(f"{url}/setup")).text()
        return "" if KEEPER in done else "the last page does not name the keeper"


async def logged_in(url: str, deadline: float):
    """A session of the keeper on the normal web UI (which comes up when the wizard has finished)."""
    http = session()
    while time.monotonic() < deadline:
        try:
            login = await http.get(f"{url}/login")
            if login.status == 200:
                html = await login.text()
                form = {"csrf": csrf_of(html), "username": KEEPER, "password": PASSWORD}
                if KEEPER in TOTP_SECRETS:  # set up at an earlier login: the login asks for the code now
                    form["code"] = await fresh_code(TOTP_SECRETS[KEEPER])
                response = await http.post(f"{url}/login", data=form, allow_redirects=False)
                if response.status == 303:
                    await second_factor(http, url)
                    return http
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError, AssertionError):
            pass
        await asyncio.sleep(3)
    await http.close()
    return None


TOTP_SECRETS: dict[str, str] = {}  # user -> the second factor's secret, once set up in this run


_last_step: list[int] = [0]


async def fresh_code(secret: str) -> str:
    """A code of a 30 s step not used before: the box refuses a code used once (replay)."""
    while int(time.time()) // 30 <= _last_step[0]:
        await asyncio.sleep(1)
    _last_step[0] = int(time.time()) // 30
    return totp_code(secret, time.time())


def totp_code(secret: str, moment: float) -> str:
    """RFC 6238 (SHA-1, 30 s, 6 digits), as appliance/users.py and every authenticator app (no import of the
    box's code here)."""
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    digest = hmac.new(key, struct.pack(">Q", int(moment) // 30), "sha1").digest()
    offset = digest[-1] & 0x0F
    return str((struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF) % 10 ** 6).zfill(6)


async def second_factor(http: aiohttp.ClientSession, url: str) -> None:
    """A new box requires a second factor of its keeper ([security] totp_required): set it up as the keeper
    would after the first login (everything else waits until it is on)."""
    page = await (await http.get(f"{url}/account")).text()
    if "/account/tweestaps/bevestigen" in page or 'action="/account/tweestaps"' not in page:
        return  # already on (or this box does not offer it)
    started = await (await http.post(f"{url}/account/tweestaps", data={"csrf": csrf_of(page)})).text()
    secret = re.search(r"secret=([A-Z2-7]+)", started).group(1)
    TOTP_SECRETS[KEEPER] = secret  # the keeper's authenticator app: later logins (after power cuts) need its codes
    response = await http.post(f"{url}/account/tweestaps/bevestigen", allow_redirects=False,
                               data={"csrf": csrf_of(started), "code": await fresh_code(secret)})
    if response.status != 303:
        raise AssertionError(f"second factor not accepted ({response.status})")


def tcp_open(address: str, port: int) -> bool:
    try:
        socket.create_connection((address, port), timeout=3).close()
        return True
    except OSError:
        return False


async def checks(args, work: Path, console: Console, qemu: subprocess.Popen, qemu_started: float) -> None:
    deadline = qemu_started + args.boot_timeout
    office_url = f"https://127.0.0.1:{OFFICE_PORT}"

    answer = await wait_https(office_url + "/", deadline)
    boot_s = time.monotonic() - qemu_started
    check("https-office", bool(answer) and answer[0] in (200, 303),
          f"{answer} after {boot_s:.0f} s (qemu start to the first HTTPS answer)" if answer else "no answer")
    if not answer:
        return
    startup = console.find(r"Startup finished in (.*)$")
    log(f"boot: {startup.group(1) if startup else 'no Startup finished line yet'}")

    box_ip = None
    while time.monotonic() < deadline and not (box_ip := lease_address(work)):
        await asyncio.sleep(2)
    if not check("dhcp", bool(box_ip), f"box is {box_ip} on the test network" if box_ip else "no lease"):
        return

    addresses, services = await asyncio.get_running_loop().run_in_executor(
        None, mdns_lookup, args.bridge_ip, 90)
    check("mdns", addresses == [box_ip] and any("port 443" in s for s in services),
          f"kluis.local -> {addresses}; _https._tcp: {services}")

    answer = await wait_https(f"https://{box_ip}/", time.monotonic() + 60)
    check("https-lan", bool(answer) and answer[0] in (200, 303), f"https://{box_ip}/ -> {answer}")
    closed = {port: not tcp_open(box_ip, port) for port in (80, 8080) + (() if args.ssh else (22,))}
    ssh_open = tcp_open(box_ip, 22) if args.ssh else None
    check("firewall", all(closed.values()) and ssh_open in (None, True),
          f"dropped: {closed}" + (f"; 22 open (SSH switched on): {ssh_open}" if args.ssh else ""))

    camera = start_camera(work, args.bridge_ip)
    backup_made = usb_ingested = False
    try:
        why = await walk_wizard(f"https://{box_ip}")
        check("wizard", not why, why or "office, keeper, recovery key confirmed, archive skipped")
        if why:
            return
        http = await logged_in(f"https://{box_ip}", time.monotonic() + 180)
        if not check("login", http is not None, "the keeper logs in on the normal web UI" if http else "no login"):
            return
        async with http:
            seen = ""
            until = time.monotonic() + 180
            while time.monotonic() < until:
                page = await (await http.get(f"https://{box_ip}/cameras")).text()
                if CAMERA in page:
                    seen = CAMERA
                    break
                await asyncio.sleep(5)
            check("camera", seen == CAMERA, f"{CAMERA} on /cameras" if seen else f"{CAMERA} not listed in 180 s")

            overview = await http.get(f"https://{box_ip}/")
            text = console.text()
            failed = sorted(set(re.findall(r"Failed to start (.+?)\.?$", text, re.M)))
            watchdog = re.findall(r"kluis\.service: Watchdog timeout", text)
            ready = re.search(r"Started kluis\.service|Started Kluis evidence box", text)
            if args.ssh:
                said = ssh(work, box_ip, "systemctl is-system-running; systemctl --failed --no-legend; "
                                         "systemd-analyze security kluis.service | tail -1")
                check("ssh", said.startswith("running") and " OK" in said, said.replace("\n", " | "))
            check("healthy", overview.status == 200 and not failed and not watchdog and bool(ready),
                  f"overview {overview.status}; failed units: {failed or 'none'}; watchdog kills: {len(watchdog)}; "
                  f"kluis.service {'ready' if ready else 'not reported ready'}")
            html = await overview.text()
            mounted = console.find(r"kluis-data: mounted (\S+) on /var/lib/kluis \((\S+)\)")
            shown = re.search(r'<p([^>]*)id="at-rest-state">(.*?)</p>', html, re.S)
            ui_encrypted = bool(shown) and 'class="error"' not in shown.group(1)
            said = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", shown.group(2))).strip() if shown else "nothing"
            clock = re.search(r'id="clock-state">(.*?)</p>', html, re.S)
            log(f"the overview says about the clock: {clock.group(1).strip() if clock else 'nothing'}")
            if args.tpm:
                ok = bool(mounted) and mounted.group(2) == "crypto_LUKS" and ui_encrypted
            else:
                ok = bool(mounted) and mounted.group(2) == "ext4" and bool(shown) and not ui_encrypted
            check("at-rest", ok, f"{mounted.group(0) if mounted else 'no mount line'}; the overview says: {said}")
            why = await plug_backup_disk(work, console, time.monotonic() + 600)
            backup_made = not why
            if why:
                check("backup", False, why)
            make_usb_disks(work)
            usb_ingested = await usb_checks(work, console, http, f"https://{box_ip}")
    finally:
        camera.terminate()
        camera.wait(10)

    log("power-off (ACPI)")
    monitor(work, "system_powerdown")
    try:
        qemu.wait(180)
        stopped = console.find(r"kluis\.serve: stopped")
        check("stop", qemu.returncode == 0 and bool(stopped),
              f"qemu exited {qemu.returncode}; {'kluis.serve: stopped logged' if stopped else 'no stopped line'}")
    except subprocess.TimeoutExpired:
        check("stop", False, "still running 180 s after the power-off")
        return
    if backup_made:
        ok, said = verify_backup_disk(work)
        check("backup", ok, f"written when the disk was plugged in; kluis backup verify: {said}")
    if usb_ingested:
        ok, said = usb_camera_emptied(work)
        check("usb-camera", ok, f"found, registered on /cameras, ingested with nobody logged in; {said}")


def start_camera(work: Path, address: str, port: int | None = None, rate: int | None = None) -> subprocess.Popen:
    state = work / "camera"
    extra = [*(["--port", str(port)] if port else []), *(["--rate", str(rate)] if rate else [])]
    return subprocess.Popen([sys.executable, "-m", "appliance", "camera-sim", "--serial", CAMERA, "--state",
                             str(state), "--address", address, *extra], stdout=open(work / "camera.log", "ab"),
                            stderr=subprocess.STDOUT)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image", type=Path, default=HERE / "out" / "kluis.raw")
    parser.add_argument("--bridge", required=True)
    parser.add_argument("--bridge-ip", required=True)
    parser.add_argument("--tap", required=True)
    parser.add_argument("--no-tpm", dest="tpm", action="store_false", help="boot without a TPM2 (plain data partition)")
    parser.add_argument("--ssh", action="store_true", help="turn SSH on with a key on the boot partition, and log in")
    parser.add_argument("--boot-timeout", type=float, default=1500, help="seconds until the first HTTPS answer")
    parser.add_argument("--memory", type=int, default=2048, help="MiB")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (console log, disk)")
    parser.add_argument("--cuts", type=int, default=10, help="power cuts during offload (0: none)")
    parser.add_argument("--seed", type=int, help="the power cuts' random seed (printed by every run)")
    parser.add_argument("--recording-mib", type=int, default=24, help="size of the camera's recordings (MiB)")
    parser.add_argument("--camera-rate-mib", type=float, default=12, help="the camera's serving rate (MiB/s)")
    args = parser.parse_args()
    # Ended from outside (image/test's caller, a CI timeout): the finally below still ends qemu, swtpm and
    # the camera, which would otherwise outlive the test.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    image = args.image.resolve()
    recorded = (image.parent / (image.name + ".sha256")).read_text().split()[0]
    actual = sha256(image)
    if not check("image", actual == recorded, f"{image} sha256 {actual[:16]}… matches {image.name}.sha256"
                 if actual == recorded else f"sha256 {actual} != recorded {recorded}"):
        return 1
    work = Path(tempfile.mkdtemp(prefix="test-", dir=image.parent))
    procs: list[subprocess.Popen] = []
    console = Console(work / "console.log")
    try:
        disk = prepare_disk(image, work, 4)
        make_backup_disk(work)
        if args.ssh:
            ssh_switch_on(work, disk)
        procs.append(start_dnsmasq(work, args.bridge, args.bridge_ip))
        if args.tpm:
            procs.append(start_swtpm(work))
            for _ in range(50):
                if (work / "swtpm.sock").exists():
                    break
                time.sleep(0.1)
        accel = os.environ.get("KLUIS_QEMU_ACCEL", "tcg")
        started = time.monotonic()
        qemu = start_qemu(work, disk, args.tap, args.tpm, accel, args.memory)
        procs.append(qemu)
        log(f"qemu started ({accel}, {'swtpm TPM2' if args.tpm else 'no TPM'}); console: {work / 'console.log'}")
        asyncio.run(checks(args, work, console, qemu, started))
        if results and all(ok for _, ok, _ in results) and qemu.poll() is not None:
            import powercuts

            asyncio.run(powercuts.run(sys.modules[__name__], args, work, disk, accel, procs))
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
        failed = [name for name, ok, _ in results if not ok]
        print("\nimage/test: " + ", ".join(f"{name} {'ok' if ok else 'FAILED'}" for name, ok, _ in results))
        print(f"{sum(ok for _, ok, _ in results)} passed, {len(failed)} failed "
              f"({time.monotonic() - began:.0f} s)")
        if args.keep or failed:
            (work / "disk.raw").unlink(missing_ok=True)
            (work / "backup.img").unlink(missing_ok=True)
            print(f"kept: {work} (console.log, qemu.log, dnsmasq.log, camera.log)")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 1 if failed or len(results) < 2 else 0


if __name__ == "__main__":
    sys.exit(main())
