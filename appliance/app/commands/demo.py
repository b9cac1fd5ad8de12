"""kluis demo: the whole box on this machine, no arguments needed.

A temporary data directory, the box (discovery, offload and, when present, the web UI, retention and sync,
in this process), the municipality's central archive (in this process too), and three simulated cameras (`kluis camera-sim` subprocesses on 127.0.0.1) that record a
few incidents "in the field", are docked and paired, and offload while the terminal shows a progress bar
per camera. Next to them an Axis body-worn system (a simulated W800 system controller, in this process)
is connected with a connection file and delivers a recording of two encrypted clips with a bookmark and
a GNSS track. A privacy officer then holds one recording for a police report, and the box's sync sends
it to the archive, which answers with a signed receipt. Then it keeps serving until Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import aiohttp
import click

from sync import client as sync_client
from sync.archive import server as archive_server
from sync.archive.store import init_archive

from appliance import recordings, retention
from appliance.box import Box, init_box
from appliance.errors import KluisError
from . import demo_lifetime

# (serial, officer or None for a pooled camera, camera clock drift in seconds). Each demo adds its own
# suffix to the serials (camera_serials), so that a box never takes another demo's cameras on the same LAN
# (or this machine) for its own: they are other cameras to it, paired to another box.
CAMERAS = [("CAM001", "J. Jansen", 0.0), ("CAM002", "A. de Vries", 42.0), ("CAM003", None, -17.0)]


def camera_serials(demo_id: str) -> list[str]:
    return [f"{serial}-{demo_id}" for serial, _, _ in CAMERAS]
POOL_OFFICER = "P. Bakker"
INCIDENTS = [(4, 24), (2, 8)]  # per camera: (seconds of incident, MiB of extra padding to show progress)
DOCK_RATE = 24_000_000  # bytes/s a simulated dock serves: about USB 2.0, so the progress is visible
WEB_PORT = 8443
DEMO_HOLDER = "privacy"  # the privacy officer webui.server.demo_users makes


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


class SimCamera:
    """A `kluis camera-sim` subprocess; its output is read for the port and the pairing code."""

    def __init__(self, workdir: Path, serial: str, drift: float):
        self.serial = serial
        self.log_path = workdir / f"{serial}.log"
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "appliance", "camera-sim", "--serial", serial, "--state",
             str(workdir / serial), "--bind", "127.0.0.1", "--address", "127.0.0.1", "--clock-drift", str(drift),
             "--rate", str(DOCK_RATE), "--die-with-parent", str(os.getpid())],  # also if the demo is killed
            stdout=subprocess.PIPE, stderr=open(self.log_path, "w"), text=True, bufsize=1,
            env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True,  # Ctrl-C goes to the demo only
        )
        self.port = 0
        self.code = ""

    async def started(self, timeout: float = 30) -> None:
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + timeout
        stdout = self.proc.stdout
        assert stdout is not None  # Popen(stdout=PIPE)
        while not (self.port and self.code):
            line = await asyncio.wait_for(loop.run_in_executor(None, stdout.readline),
                                          max(0.1, deadline - time.monotonic()))
            if not line:
                raise KluisError(f"camera simulator {self.serial} stopped; see {self.log_path}")
            self.lines.append(line.rstrip())
            if m := re.search(r"listening on port (\d+)", line):
                self.port = int(m.group(1))
            if m := re.match(r"pairing code: (\d{8})$", line.strip()):
                self.code = m.group(1)

    async def record(self, http: aiohttp.ClientSession, seconds: float, filler_mb: float) -> dict:
        async with http.post(f"http://127.0.0.1:{self.port}/sim/record",
                             json={"seconds": seconds, "filler_mb": filler_mb}) as resp:
            return await resp.json()

    def held(self) -> int:
        """Recordings still on the camera."""
        return len(list((Path(self.log_path.parent) / self.serial / "recordings").glob("*.json")))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


class Bars:
    """A progress bar per camera: redrawn in place on a terminal, a line per change otherwise."""

    def __init__(self, serials: list[str]):
        self.serials = serials
        self.tty = sys.stdout.isatty()
        self.drawn = False
        self.last: dict[str, str] = {}

    def line(self, serial: str, p: dict | None, held: int) -> str:
        if not p:
            return f"  {serial}  waiting for the dock"
        total, done = max(p["bytes_total"], 1), p["bytes_done"]
        width = 30
        fill = int(width * min(done / total, 1.0)) if p["state"] in ("offloading", "done") else 0
        if p["state"] == "done" and not held:
            fill = width
        bar = "#" * fill + "-" * (width - fill)
        return (f"  {serial}  [{bar}] {done / 2**20:6.1f}/{p['bytes_total'] / 2**20:6.1f} MiB  "
                f"stored {p['stored']}, on camera {held}  {p['state']}")

    def draw(self, progress: dict[str, dict], held: dict[str, int]) -> None:
        lines = [self.line(s, progress.get(s), held[s]) for s in self.serials]
        if self.tty:
            if self.drawn:
                sys.stdout.write(f"\x1b[{len(lines)}F")
            sys.stdout.write("".join(f"\x1b[2K{line}\n" for line in lines))
            sys.stdout.flush()
            self.drawn = True
            return
        for serial, line in zip(self.serials, lines):
            state = re.sub(r"\[.*?\]\s+[\d. /]+MiB", "", line)  # print a change of state, not every byte
            if self.last.get(serial) != state:
                click.echo(line)
                self.last[serial] = state


async def _demo(data_dir: Path, workdir: Path, exit_after_offload: bool) -> None:
    from appliance.dock import devices
    from appliance.dock.pairing import pair_camera
    from ..service import Service

    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    assert main is not None  # this coroutine runs as a task
    # Ctrl-C, a stop, or the terminal closing (SIGHUP: a closed window, `tmux kill-session`) at any moment:
    # stop the cameras and the box cleanly. A SIGKILL stops the cameras through demo_lifetime.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, main.cancel)
    demo_id = secrets.token_hex(2).upper()

    password = secrets.token_urlsafe(12)
    box, recovery_key = init_box(data_dir, "admin", password, kdf_profile="interactive")
    text = (data_dir / "kluis.toml").read_text()
    text = text.replace("[dock]\n", '[dock]\ninterfaces = ["127.0.0.1"]\nprobe_interval_s = 1\nretry_s = 1\n', 1)
    text = text.replace("[axis]\n", f'[axis]\nlisten = "127.0.0.1:{_free_port()}"\n', 1)
    text = text.replace("[retention.categories]", "[retention.categories]\nincident = 90", 1)
    (data_dir / "kluis.toml").write_text(text.replace("[sync]\n", "[sync]\ninterval_s = 2\n", 1))
    box.close()
    box = Box(data_dir)
    click.echo(f"Box created in {data_dir}")
    click.echo(f"  keeper: admin / {password}")
    click.echo(f"  recovery key: {recovery_key}")
    with contextlib.suppress(ImportError):
        from webui.server import demo_users

        for name, role, pw in demo_users(box, "admin", password):
            click.echo(f"  {role}: {name} / {pw}")

    # The municipality's central archive, here in this process; the box enrolls before its cameras are
    # paired, so that the cameras seal every recording to the archive's key as well.
    archive, _ = init_archive(workdir / "archive", secrets.token_urlsafe(12), kdf_profile="interactive")
    archive_runner, archive_port = await archive_server.start(archive, "127.0.0.1", 0)
    await sync_client.enroll(box, f"https://127.0.0.1:{archive_port}", archive.new_token(), actor="admin")
    click.echo(f"Central archive at https://127.0.0.1:{archive_port} (data in {workdir / 'archive'}); "
               "the box is enrolled: only held footage goes there.")

    cams: list[SimCamera] = []
    service = None
    try:
        for serial, (_, _, drift) in zip(camera_serials(demo_id), CAMERAS):
            cams.append(SimCamera(workdir, serial, drift))
        for cam in cams:
            await cam.started()
        click.echo("Three cameras are on the LAN (simulated on 127.0.0.1); their screens show pairing codes: "
                   + ", ".join(f"{c.serial} {c.code}" for c in cams))
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as http:
            click.echo("The officers record incidents in the field (the cameras encrypt as they record)...")
            made = 0
            for cam in cams:
                for seconds, filler in INCIDENTS:
                    entry = await cam.record(http, seconds, filler)
                    made += 1
                    click.echo(f"  {cam.serial} recorded {entry['id']} ({entry['size'] / 2**20:.1f} MiB)")

            listen = ("127.0.0.1", WEB_PORT if _port_free(WEB_PORT) else 0)
            service = Service(box, listen=listen)
            await service.start()
            click.echo("The box is running: it discovers the cameras over mDNS...")
            serials = [c.serial for c in cams]
            deadline = time.monotonic() + 30
            while not all(devices.find_device(box.catalog, s) for s in serials):
                if time.monotonic() > deadline:
                    raise KluisError("the cameras were not discovered within 30 s (mDNS on 127.0.0.1 blocked?)")
                await asyncio.sleep(0.1)
            for cam, (_, officer, _) in zip(cams, CAMERAS):
                serial = cam.serial
                if officer is None:
                    devices.set_pooled(box, serial, "admin")
                    devices.assign_shift(box, serial, POOL_OFFICER, box.clock() - timedelta(hours=8), None, "admin")
                row = await pair_camera(box, serial, cam.code, actor="admin", officer=officer)
                who = officer or f"pooled, on shift: {POOL_OFFICER}"
                click.echo(f"  paired {serial} with code {cam.code} ({who}); key fingerprint {row['fingerprint']}")
            click.echo("Docked: offloading (verified, then deleted on the camera)")
            bars = Bars(serials)
            began = time.monotonic()
            while True:
                held = {c.serial: c.held() for c in cams}
                bars.draw(service.offload.snapshot(), held)
                if not any(held.values()) and len(box.catalog.list_recordings()) >= made:
                    break
                if time.monotonic() - began > 600:
                    raise KluisError("offload did not finish within 10 minutes")
                await asyncio.sleep(0.2)
        elapsed = time.monotonic() - began
        rows = box.catalog.list_recordings()
        size = sum(r["blob_size"] for r in rows)
        click.echo(f"Offloaded {len(rows)} recordings ({size / 2**20:.1f} MiB) in {elapsed:.1f} s; "
                   "the cameras are empty.")
        for row in rows:
            click.echo(f"  {row['id']}  {row['camera_serial']}  {row['officer'] or '-':<12} "
                       f"{row['start_time']} (camera clock {row['camera_start_time']}, offset "
                       f"{row['clock_offset_s']:+.1f} s)")
        await _axis_system(box, service, workdir)
        problems = recordings.verify(box, box.unlock("admin", password))
        click.echo("Verify: " + ("every chunk authentic" if not problems else f"{len(problems)} problem(s)"))
        await _hold_and_sync(box, rows[0]["id"])
        if exit_after_offload:
            return
        click.echo(f"Serving until Ctrl-C. Try: kluis cameras list --data {data_dir}")
        click.echo(f"     kluis camera-sim record --state {workdir / cams[0].serial}   (a new incident, offloaded at once)")
        if service.web_address:
            click.echo(f"     the web UI: https://{service.web_address}/  (the box's own certificate)")
        await service.stopping.wait()
    finally:
        if service is not None:
            await service.stop()
        for cam in cams:
            cam.stop()
        box.close()
        await archive_runner.cleanup()
        archive.close()


async def _axis_system(box: Box, service, workdir: Path) -> None:
    """An Axis W800 (simulated) connected with a connection file delivers one recording of two clips."""
    from appliance.axis import accounts
    from simulators.axis.clips import make_clip
    from simulators.axis.recording import Bookmark
    from simulators.axis.w800 import W800Simulator

    connection = accounts.connection_file(box, "Demo W800", [f"https://{service.axis_address}/auth/v1.0"],
                                          encrypt=True, actor="admin", client="demo")
    (workdir / "w800-connection.json").write_text(connection.text())
    click.echo(f"An Axis body-worn system (a W800 system controller, simulated) is connected to the box's "
               f"content destination at https://{service.axis_address} with a connection file "
               f"({workdir / 'w800-connection.json'}, encrypted clips)...")
    serial, on = "B8A44F00D3M0", box.clock() - timedelta(minutes=20)
    async with W800Simulator(connection.document, workdir / "w800", system_name="W800 Demo") as w800:
        user = await w800.register_user("M. Visser", "1002")
        await w800.register_device(serial, "AXIS W101", "Bodycam 7")
        clips = [make_clip(4, on - timedelta(seconds=2), label="AXIS 1"), make_clip(3, on + timedelta(seconds=2),
                                                                                  label="AXIS 2")]
        result = await w800.upload_recording(
            user, serial, clips, on, pre_s=2, post_s=1, gnss=True,
            bookmarks=[Bookmark("Man schreeuwt, dreigt te slaan", category_name="incident",
                                start=on + timedelta(seconds=3))])
    if not result.ok:
        raise KluisError(f"the W800 could not deliver {result.container}: {result.error}")
    rows = list(box.catalog.db.query("SELECT id, officer, start_time, category FROM recordings WHERE source = 'axis' "
                                     "AND source_ref LIKE ? ORDER BY start_time", [f"{result.container}/%"]))
    click.echo(f"  {serial} (AXIS W101, worn by M. Visser (1002)) delivered {result.container}: "
               f"{len(rows)} clips, sealed while they streamed in")
    for row in rows:
        click.echo(f"  {row['id']}  {serial}  {row['officer']}  {row['start_time']}  category {row['category']}")


async def _hold_and_sync(box: Box, recording_id: str, timeout: float = 120) -> None:
    """A privacy officer holds one recording for a police report; the box's own sync loop sends it to
    the archive, which answers with a signed receipt."""
    retention.add_hold(box, recording_id, "police_report", "PV-DEMO-0001", actor=DEMO_HOLDER)
    click.echo(f"{DEMO_HOLDER} holds {recording_id} for a police report (PV-DEMO-0001): "
               "it goes to the central archive at the next sync...")
    deadline = time.monotonic() + timeout
    while (receipt := sync_client.receipt_for(box, recording_id)) is None:
        if time.monotonic() > deadline:
            raise KluisError(f"the archive did not confirm {recording_id} within {timeout:.0f} s")
        await asyncio.sleep(0.5)
    click.echo(f"  the archive received {recording_id} at {receipt['received_at']}: signed receipt for "
               f"sha256 {receipt['sha256'][:16]}..., {receipt['size']} bytes")


@click.command()
@click.option("--data", "data_dir", type=click.Path(path_type=Path),
              help="Use this (new) data directory instead of a temporary one.")
@click.option("--exit-after-offload", is_flag=True, help="Stop once the cameras are offloaded (for tests).")
@click.option("--verbose", "-v", is_flag=True, help="Show the box's log on the terminal.")
def demo(data_dir: Path | None, exit_after_offload: bool, verbose: bool) -> None:
    """Run a box and three simulated cameras on this machine: pair, record, offload; then serve until Ctrl-C."""
    from ..service import setup_logging

    demo_lifetime.remove_abandoned()
    workdir = demo_lifetime.make_workdir()
    data_dir = data_dir or workdir / "data"
    log_file = workdir / "box.log"
    setup_logging(logging.INFO)
    root = logging.getLogger()
    for handler in list(root.handlers):
        if not verbose:
            root.removeHandler(handler)
    file_handler = logging.FileHandler(log_file)
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root.addHandler(file_handler)
    try:
        click.echo(f"Demo files in {workdir} (box log: {log_file}; removed when the demo stops)")
        asyncio.run(_demo(data_dir, workdir, exit_after_offload))
    except (KeyboardInterrupt, asyncio.CancelledError):
        pass
    finally:
        # The demo leaves nothing behind, however it stopped (a SIGKILL's leftovers go at the next start).
        shutil.rmtree(workdir, ignore_errors=True)
    with contextlib.suppress(OSError):  # the terminal may be gone (SIGHUP)
        click.echo("Stopped.")


COMMANDS = [demo]
