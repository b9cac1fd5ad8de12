"""Serving the first-boot wizard: `kluis serve` on a data directory that is not initialised yet runs this
server (only the wizard's pages, webui/routes/setup.py) until the box is made, then the box itself on the
same address (appliance/app/service.py)."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path
from typing import Awaitable, Callable

import jinja2
from aiohttp import web

from appliance import tls
from appliance.errors import KluisError
from appliance.provisioning import FirstBoot

from .app import HERE, TEMPLATES, headers_middleware, language_middleware
from .routes import setup

log = logging.getLogger("kluis.setup")


def create_setup_app(wizard: FirstBoot, enroll: Callable[..., Awaitable[dict]],
                     done: asyncio.Event | None = None) -> web.Application:
    """The wizard's own app: only its pages, every other path leads to /setup. `enroll`: the archive's
    enrolment (sync.client.enroll); `done`: set when the box is made and its last page served."""
    app = web.Application(middlewares=[headers_middleware, language_middleware, setup.guard],
                          client_max_size=64 * 1024)
    app[setup.WIZARD] = wizard
    app[setup.ENROLL] = enroll
    app[setup.DONE] = done or asyncio.Event()
    app[TEMPLATES] = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                                        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    app.add_routes(setup.routes)
    app.router.add_static("/static", HERE / "static", name="static", append_version=True)
    app.router.add_route("*", "/{tail:.*}", setup.everything_else)
    return app


async def run_setup(data_dir: Path, listen: tuple[str, int] | None, enroll: Callable[..., Awaitable[dict]],
                    kdf_profile: str = "moderate") -> tuple[str, int] | None:
    """Serve the wizard until the box is made (returns the address it listened on, for the box to take
    over) or SIGTERM/SIGINT (returns None). Called by appliance.app.service for an uninitialised DIR."""
    wizard = FirstBoot(data_dir, kdf_profile)
    wizard.prepare()
    done = asyncio.Event()
    host, port = listen or ("127.0.0.1", 8443)
    runner = web.AppRunner(create_setup_app(wizard, enroll, done), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, ssl_context=tls.server_context(wizard.data_dir),
                           reuse_address=True)
        try:
            await site.start()
        except OSError as exc:
            raise KluisError(f"web UI: cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        # SIGTERM is handled from before the wizard is announced: a stop right after the announcement (systemd,
        # a test) must end the wizard cleanly, not kill the process with its lock held
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopping.set)
        bound = next((a for a in runner.addresses if isinstance(a, tuple)), (host, port))
        log.info("first boot: %s is not initialised; the setup wizard is at https://%s:%d/setup",
                 wizard.data_dir, bound[0], bound[1])
        log.info("certificate (SHA-256), compare with the browser: %s", tls.fingerprint(wizard.data_dir))
        waits = [asyncio.ensure_future(done.wait()), asyncio.ensure_future(stopping.wait())]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waits:
                task.cancel()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
    finally:
        await runner.cleanup()
        wizard.release()
    if not done.is_set():
        log.info("setup stopped before the box was made")
        return None
    log.info("setup done: starting the box")
    return bound[0], bound[1]
