"""Serving the web UI over HTTPS: `start_web` is what `kluis serve` (appliance/app/service.py) calls."""

from __future__ import annotations

from typing import Callable

from aiohttp import web

from appliance import roles, tls, users
from appliance.box import Box
from appliance.config_change import AxisSwitch

from .site import create_app


SHUTDOWN_S = 1.5  # aiohttp waits up to twice this: for the handler to end, then for it to end once cut


async def start_web(box: Box, host: str = "127.0.0.1", port: int = 8443, *, idle_minutes: float | None = None,
                    ssl: bool = True, offload_progress: Callable[[], dict] | None = None,
                    axis_switch: AxisSwitch | None = None) -> web.AppRunner:
    """Start the web UI on host:port (HTTPS with the box's self-signed certificate, made now if the box
    predates it). Returns the runner; `await runner.cleanup()` stops it. The bound port (for port 0) is
    in `runner.addresses`. `offload_progress`, `axis_switch`: see webui.site.create_app."""
    app = create_app(box, idle_minutes=idle_minutes, offload_progress=offload_progress, axis_switch=axis_switch)
    # On a stop, requests under way (a player's range read, a handover download the browser reads
    # slowly) get this long to end before they are cut: not aiohttp's 60 s, which held up `kluis serve`
    # on SIGTERM. A browser asks again (a range) once the box is back.
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_S)
    await runner.setup()
    context = tls.server_context(box.data_dir, box.settings.box.name) if ssl else None
    site = web.TCPSite(runner, host, port, ssl_context=context, reuse_address=True)
    await site.start()
    return runner


DEMO_TEAM = "Centrum"
DEMO_OFFICER = "J. Jansen"  # the officer of the demo's first camera: a handhaver sees their own recordings


def demo_users(box: Box, actor: str | None = None, actor_password: str | None = None,
               identity=None, officer: str = DEMO_OFFICER) -> list[tuple[str, str, str]]:
    """One user per role (besides the keeper made at init) with a generated password, for `kluis demo`.
    The keeper's unlocked key (`identity`, or `actor_password` to unlock it) wraps the slots. The officer
    user is named like the officer on the demo's recordings, in the team leader's team, so that both see
    them. Returns (name, role, password) for each user made."""
    actor = actor or box.default_user
    if identity is None:
        if actor_password is None:
            raise ValueError("demo_users needs the keeper's unlocked key or password")
        identity = box.unlock(actor, actor_password)
    made = []
    for name, role, team in (("teamleider", roles.TEAM_LEADER, DEMO_TEAM),
                             ("privacy", roles.PRIVACY_OFFICER, None),
                             (officer, roles.OFFICER, DEMO_TEAM),
                             ("auditor", roles.AUDITOR, None)):
        password = users.random_password()
        users.add_user(box, actor, name, role, password, team=team, identity=identity, client="demo")
        made.append((name, role, password))
    return made
