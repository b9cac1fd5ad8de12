"""/statistieken: the statistics that outlive the footage (appliance/statistics.py), for a period, as SVG
charts and CSV; and the report to the council (appliance/council_report.py) as PDF."""

from __future__ import annotations

import asyncio
from urllib.parse import urlencode

from aiohttp import web

from appliance import council_report, roles, stats_report
from appliance.errors import KluisError

from ..app import BOX, LANG, SESSION, client_of, csv_response, gettext_for, needs, render
from ..labels import STATS_TABLES, dutch_stats_words, month_label, stats_words

routes = web.RouteTableDef()
PERIOD_PARAMS = ("periode", "van", "tot")


class _Asked:
    """The period the query string names, or why it names none."""

    def __init__(self, request: web.Request):
        query = request.query
        self.values = {name: query.get(name, "").strip()[:20] for name in PERIOD_PARAMS}
        self.error: str | None = None
        try:
            if self.values["van"] or self.values["tot"]:
                self.period = stats_report.between(self.values["van"] or None, self.values["tot"] or None)
            else:
                self.period = stats_report.parse_period(self.values["periode"])
        except KluisError:
            _ = gettext_for(request)
            self.error = _("The period is not understood. Choose one from the list, or give the months from and "
                           "to (for example 2026-09 and 2026-12).")
            self.period = stats_report.Period()

    def suffix(self) -> str:
        given = {k: v for k, v in self.values.items() if v}
        return f"?{urlencode(given)}" if given else ""


def _words(request: web.Request) -> tuple[council_report.Title, council_report.Label]:
    return stats_words(gettext_for(request), request[LANG])


def _report(request: web.Request, asked: _Asked) -> stats_report.Report:
    return stats_report.report(request.app[BOX].catalog, request[SESSION].user, asked.period)


def _choices(request: web.Request, months: list[str]) -> list[tuple[str, str]]:
    _ = gettext_for(request)
    labelled = []
    for value, kind in stats_report.period_choices(months):
        if kind == "year":
            labelled.append((value, value))
        elif kind == "quarter":
            labelled.append((value, _("quarter %(quarter)s of %(year)s") % {"quarter": value[-1], "year": value[:4]}))
        else:
            labelled.append((value, month_label(_, value)))
    return labelled


@routes.get("/statistieken")
@needs(roles.STATS_READ)
async def stats_page(request: web.Request) -> web.StreamResponse:
    _ = gettext_for(request)
    asked = _Asked(request)
    report = _report(request, asked)
    title, label = _words(request)
    charts = [(key, *title(key), [(label(key, value), n) for value, n in report.tables[key]])
              for key in STATS_TABLES if report.tables[key] or key == "per_month"]
    return render(request, "statistieken.html", status=400 if asked.error else 200, charts=charts,
                  everything=report.everything, team=report.team, error=asked.error, form=asked.values,
                  choices=_choices(request, report.months), query=asked.suffix(),
                  period_label=None if asked.period.everything else _period_label(request, asked.period))


def _period_label(request: web.Request, period: stats_report.Period) -> str:
    _ = gettext_for(request)
    first = month_label(_, period.first) if period.first else None
    last = month_label(_, period.last) if period.last else None
    if first == last:
        return str(first)
    if first and last:
        return _("%(first)s to %(last)s") % {"first": first, "last": last}
    return _("from %(first)s") % {"first": first} if first else _("up to %(last)s") % {"last": last}


@routes.get("/statistieken.csv")
@needs(roles.STATS_READ)
async def stats_csv(request: web.Request) -> web.StreamResponse:
    _ = gettext_for(request)
    asked = _Asked(request)
    if asked.error:
        raise web.HTTPBadRequest(text=asked.error)
    report = _report(request, asked)
    title, label = _words(request)
    body = council_report.csv_bytes(report, [_("Table"), _("Value"), _("Count")], title, label,
                                    request.app[BOX].settings.box.timezone)
    return csv_response(body, "statistieken.csv")


@routes.get("/statistieken/raadsrapportage.pdf")
@needs(roles.STATS_REPORT)
async def council_pdf(request: web.Request) -> web.StreamResponse:
    """The report to the council for the period, in Dutch (it is for the council), on record first."""
    asked = _Asked(request)
    if asked.error:
        raise web.HTTPBadRequest(text=asked.error)
    box = request.app[BOX]
    report = _report(request, asked)
    council_report.record(box, request[SESSION].name, asked.period, ["pdf"], everything=report.everything,
                          client=client_of(request))
    title, label = dutch_stats_words()
    pdf = await asyncio.get_running_loop().run_in_executor(
        None, lambda: council_report.render_pdf(report, label, title, issuer=council_report.issuer(box), made_at=box.clock(),
                                                timezone=box.settings.box.timezone))
    return web.Response(body=pdf, content_type="application/pdf", headers={
        "Content-Disposition": 'inline; filename="raadsrapportage.pdf"', "Cache-Control": "no-store"})

