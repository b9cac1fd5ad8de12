"""The web UI as one aiohttp application: the middlewares and helpers of webui/app.py, with every page group's
routes. The list of route tables is here, in one place; a route module imports webui/app.py and never
this module, so the registry is no import circle."""

from __future__ import annotations

from typing import Callable

import jinja2
from aiohttp import web

from appliance import handover
from appliance.box import Box
from appliance.config_change import AxisSwitch
from appliance.handover_downloads import Downloads

from . import formats
from .app import (AXIS_SWITCH, BOX, DOWNLOADS, HERE, OFFLOAD_PROGRESS, SESSIONS, TEMPLATES, auth_middleware, csrf_middleware,
                  error_middleware, headers_middleware, language_middleware)
from .routes import (account, auth, cameras, instellingen, logboek, mijn_opnames, onderhoud, opnames, overdracht,
                     overview, redactie, statistieken, users, verwerkingsregister, verzoeken, zaken)
from .sessions import Sessions

# In this order: aiohttp resolves a path to the first route that matches it.
ROUTE_TABLES = [m.routes for m in (auth, account, overview, opnames, mijn_opnames, cameras, users, logboek, statistieken,
                                   instellingen, verzoeken, zaken, redactie, overdracht, onderhoud, verwerkingsregister)]


def create_app(box: Box, *, idle_minutes: float | None = None,
               offload_progress: Callable[[], dict] | None = None,
               axis_switch: AxisSwitch | None = None) -> web.Application:
    """`offload_progress`: the running offload's state per camera (`kluis serve` gives it); without it the
    pages show no offload in progress. `axis_switch`: switches the running Axis content destination
    (`kluis serve` gives it); without it the settings page says a change waits for a restart."""
    app = web.Application(
        middlewares=[headers_middleware, language_middleware, error_middleware, auth_middleware, csrf_middleware],
        client_max_size=1024 * 1024,
    )
    app[BOX] = box
    app[DOWNLOADS] = Downloads(box.data_dir)
    app[SESSIONS] = Sessions(box.clock, idle_minutes if idle_minutes is not None
                             else lambda: box.settings.web.idle_minutes)
    app[OFFLOAD_PROGRESS] = offload_progress or dict
    app[AXIS_SWITCH] = axis_switch
    app[TEMPLATES] = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,  # every template, whatever its name: hostile serials and names stay text
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    app[TEMPLATES].filters.update(formats.jinja_filters())  # dates, numbers and sizes in the user's language
    # A recording's page lists its handovers.
    app[TEMPLATES].globals["handovers_of"] = lambda recording_id: handover.list_handovers(box, recording_id)
    for table in ROUTE_TABLES:
        app.add_routes(table)
    app.router.add_static("/static", HERE / "static", name="static", append_version=True)
    return app
