"""/statistieken: counts for the pilot evaluation and the report to the council, as SVG charts and CSV."""

from __future__ import annotations

from aiohttp import web

from appliance import purposes, roles, spreadsheet

from ..app import BOX, LANG, SESSION, csv_response, gettext_for, needs, render
from ..i18n import N_
from appliance.statistics import counts_everything, statistics
from ..labels import reason_label

routes = web.RouteTableDef()

TABLES = {  # key -> (title, label of the first column)
    "per_month": (N_("Recordings per month"), N_("Month")),
    "per_team": (N_("Recordings per team"), N_("Team")),
    "per_reason": (N_("Recordings per reason for recording"), N_("Reason")),
    "holds_per_purpose": (N_("Holds per purpose"), N_("Purpose")),
}


def _labelled(request: web.Request) -> dict[str, list[tuple[str, int]]]:
    _ = gettext_for(request)
    lang = request[LANG]
    stats = statistics(request.app[BOX].catalog, request[SESSION].user)
    none = _("(not set)")
    stats["per_team"] = [(k or _("unknown"), n) for k, n in stats["per_team"]]
    stats["per_reason"] = [(reason_label(k, lang) or none, n) for k, n in stats["per_reason"]]
    stats["holds_per_purpose"] = [(purposes.label(k, lang), n) for k, n in stats["holds_per_purpose"]]
    return stats


@routes.get("/statistieken")
@needs(roles.STATS_READ)
async def stats_page(request: web.Request) -> web.StreamResponse:
    _ = gettext_for(request)
    stats = _labelled(request)
    charts = [(key, _(title), _(column), stats[key]) for key, (title, column) in TABLES.items()]
    user = request[SESSION].user
    return render(request, "statistieken.html", charts=charts, everything=counts_everything(user), team=user.get("team"))


@routes.get("/statistieken.csv")
@needs(roles.STATS_READ)
async def stats_csv(request: web.Request) -> web.StreamResponse:
    _ = gettext_for(request)
    stats = _labelled(request)
    rows = [(_(title), label, count) for key, (title, _column) in TABLES.items() for label, count in stats[key]]
    body = spreadsheet.to_bytes([_("Table"), _("Value"), _("Count")], rows, request.app[BOX].settings.box.timezone)
    return csv_response(body, "statistieken.csv")
