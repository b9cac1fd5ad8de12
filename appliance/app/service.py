"""`kluis serve`: the box's one long-running process, and the place that wires the parts together.

One asyncio loop runs camera discovery and offload, the retention scheduler, the web UI, the archive
sync and, when configured, the Axis content destination. Every part is required: one that fails to
import or start stops the service with its error, rather than leaving a quietly smaller box. The web UI
gets what it shows from other parts as callables at construction (the offload's progress, the archive's
enrolment), so it imports neither the service nor sync. SIGTERM and SIGINT stop everything cleanly:
running downloads keep their durable bytes for resume.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from pathlib import Path
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from appliance import alerts, keys
from appliance.axis.server import AxisSwitch
from appliance.box import CATALOG, Box
from appliance.dock.discovery import Discovery
from appliance.dock.offload import OffloadManager
from appliance.errors import KluisError
from appliance.sweep import schedule_jobs
from sync import client as sync_client
from webui.server import start_web
from webui.setup_server import run_setup

log = logging.getLogger("kluis.serve")

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def setup_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format=LOG_FORMAT, datefmt="%Y-%m-%d %H:%M:%S")
    for noisy in ("zeroconf", "aiohttp.access", "apscheduler"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def sd_notify(state: str) -> bool:
    """Tell systemd about the service (READY=1, WATCHDOG=1, STOPPING=1, STATUS=...) over $NOTIFY_SOCKET,
    the sd_notify(3) datagram protocol; a no-op (False) when not started by systemd with Type=notify."""
    where = os.environ.get("NOTIFY_SOCKET")
    if not where or where[0] not in "/@":
        return False
    address = "\0" + where[1:] if where[0] == "@" else where  # "@": an abstract socket
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto(state.encode(), address)
        return True
    except OSError as exc:
        log.warning("sd_notify(%s): %s", state.split("\n")[0], exc)
        return False


def watchdog_interval() -> float | None:
    """Half of systemd's WatchdogSec (WATCHDOG_USEC), when the watchdog is meant for this process."""
    usec, pid = os.environ.get("WATCHDOG_USEC"), os.environ.get("WATCHDOG_PID")
    if not usec or not usec.isdigit() or int(usec) == 0 or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 2e6


async def _watchdog(interval: float) -> None:
    # The pings come from the event loop itself: a loop that hangs (a blocking call, a deadlock) stops
    # them, and systemd restarts the service (Restart=on-failure).
    while True:
        sd_notify("WATCHDOG=1")
        await asyncio.sleep(interval)


class Service:
    def __init__(self, box: Box, listen: tuple[str, int] | None = None, interfaces: list[str] | None = None):
        self.box = box
        self.listen = listen
        self.offload = OffloadManager(box)
        self.discovery = Discovery(box, on_device=self.offload.on_device, interfaces=interfaces, owner=True)
        self.web_address: str | None = None  # host:port of the web UI once it runs
        self.axis = AxisSwitch(box)  # the Axis content destination, on while [axis] listen is set
        self._stoppers: list = []  # async cleanups of the parts started, run in reverse order
        self.stopping = asyncio.Event()

    async def start(self) -> None:
        # After a power cut or a crash: what no writer will resume (an import's part file, a blob committed
        # but never catalogued, whose camera still holds the recording) goes, as `kluis verify` removes it;
        # only leftovers older than an hour, so a write in progress in another process stays.
        removed = await asyncio.to_thread(self.box.vault.cleanup, self.box.catalog.stored_paths())
        if removed:
            log.info("removed %d leftover(s) of interrupted writes", removed)
        if why := keys.signing_key_unavailable():
            # One line for the keeper's journal; the overview, `kluis status` and an alert say it too.
            log.error("the audit signing key sealed to the TPM2 did not unseal (%s): serving without it; audit "
                      "entries wait unsigned and cameras are not offloaded until it is back (restore from a backup)",
                      why)
        await self.offload.start()
        await self.discovery.start()
        await self._start_retention()
        await self._start_web()
        await self._start_sync()
        await self._start_axis()
        log.info("Kluis is serving from %s", self.box.data_dir)

    async def stop(self) -> None:
        log.info("stopping")
        for stopper in reversed(self._stoppers):
            try:
                await stopper()
            except Exception:  # one part failing to stop must not keep the others running
                log.exception("error while stopping")
        await self.discovery.stop()
        await self.offload.stop()
        log.info("stopped")

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        watchdog = None
        try:
            await self.start()
            interval = watchdog_interval()
            if interval:
                watchdog = asyncio.create_task(_watchdog(interval))
            sd_notify(f"READY=1\nSTATUS=serving {self.web_address or ''}".rstrip())
            await self.stopping.wait()
        finally:
            sd_notify("STOPPING=1")
            if watchdog:
                watchdog.cancel()
            await self.stop()

    async def _start_retention(self) -> None:
        scheduler = AsyncIOScheduler(timezone="UTC")
        schedule_jobs(scheduler, self.box)
        alerts.schedule(scheduler, self.box)  # mail and syslog: alerts, the audit log, its checkpoints
        scheduler.start()

        async def stop_scheduler() -> None:
            # A job running now (a sweep) may finish, up to 10 s: shutting down cancels it, and
            # APScheduler would log the cancellation as an error with a traceback.
            executor = scheduler._executors.get("default")
            running = [f for f in getattr(executor, "_pending_futures", ()) if not f.done()]
            if running:
                await asyncio.wait(running, timeout=10)
            scheduler.shutdown(wait=False)

        self._stoppers.append(stop_scheduler)
        log.info("retention scheduler: running")

    async def _start_web(self) -> None:
        args = (self.box, *self.listen) if self.listen else (self.box,)
        try:
            runner = await start_web(*args, offload_progress=self.offload.snapshot, axis_switch=self.axis.apply)
        except OSError as exc:  # the port is taken, or the address is not ours: one line, not a traceback
            where = ":".join(map(str, self.listen)) if self.listen else "its default address"
            raise KluisError(f"web UI: cannot listen on {where}: {exc.strerror or exc}") from None
        self._stoppers.append(runner.cleanup)
        bound = [f"{a[0]}:{a[1]}" for a in runner.addresses if isinstance(a, tuple)]
        self.web_address = bound[0] if bound else None
        log.info("web UI: listening on %s", ", ".join(bound) or "its default address")

    async def _start_sync(self) -> None:
        task = sync_client.start_sync(self.box)
        self._stoppers.append(task.stop)
        log.info("archive sync: running")

    async def _start_axis(self) -> None:
        # Off by default: a box without an Axis system opens no port for it. The settings page switches
        # it on, moves or switches it off later through self.axis.apply (given to the web UI).
        await self.axis.apply(self.box.settings.axis.listen)  # CannotListen: one line, the service stops
        self._stoppers.append(self.axis.stop)

    @property
    def axis_address(self) -> str | None:
        """host:port of the Axis content destination, when on."""
        return self.axis.address


def serve(box: Box, listen: tuple[str, int] | None = None) -> None:
    asyncio.run(Service(box, listen).run())


def serve_data_dir(data_dir, listen: tuple[str, int] | None = None) -> None:
    """`kluis serve --data DIR`: the first-boot wizard while DIR is not initialised
    (appliance/provisioning.py, webui/setup_server.py), then the box, in the same process and on the
    same address."""
    asyncio.run(_serve_data_dir(Path(data_dir), listen))


async def _serve_data_dir(data_dir: Path, listen: tuple[str, int] | None) -> None:
    if not (data_dir / CATALOG).exists():
        # systemd (Type=notify, WatchdogSec) must see a live service while the wizard waits for a person.
        interval = watchdog_interval()
        watchdog = asyncio.create_task(_watchdog(interval)) if interval else None
        sd_notify("READY=1\nSTATUS=first boot: serving the setup wizard")
        try:
            listen = await run_setup(data_dir, listen, sync_client.enroll)
        finally:
            if watchdog:
                watchdog.cancel()
        if listen is None:  # stopped (SIGTERM) before the box was made
            return
    with Box(data_dir) as box:
        await Service(box, listen).run()
