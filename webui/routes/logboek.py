"""/logboek: the audit log with filters, chain verification ("Controleer keten") and CSV export."""

from __future__ import annotations

import csv
import io

from aiohttp import web

from appliance import audit, purposes, retention, roles
from appliance.clock import to_iso
from appliance.errors import KluisError

from ..formats import parse_moment
from ..app import BOX, LANG, SESSION, client_of, gettext_for, needs, render

routes = web.RouteTableDef()
LIMIT = 500


def _filters(request: web.Request) -> tuple[dict, list[str]]:
    q = request.query
    kw: dict = {}
    for key in ("actor", "action", "recording_id"):
        if q.get(key, "").strip():
            kw[key] = q[key].strip()[:100]
    since, until, errors = _range(request)
    kw.update({arg: value for arg, value in (("since", since), ("until", until)) if value})
    return kw, errors


def _range(request: web.Request) -> tuple[str | None, str | None, list[str]]:
    """The query's from and to, as stored times (None when not given), and what could not be read."""
    _ = gettext_for(request)
    tz = request.app[BOX].settings.box.timezone
    bounds, errors = [], []
    for key in ("from", "to"):
        text = request.query.get(key, "").strip()[:40]
        value = None
        if text:
            try:
                value = to_iso(parse_moment(text, tz))
            except KluisError:
                errors.append(_("Not a date and time: %(value)s (for example 20-11-2026 14:30)") % {"value": text})
        bounds.append(value)
    return bounds[0], bounds[1], errors


@routes.get("/logboek")
@needs(roles.AUDIT_READ)
async def log_page(request: web.Request) -> web.StreamResponse:
    box = request.app[BOX]
    kw, errors = _filters(request)
    rows = audit.entries(box.catalog, newest_first=True, limit=LIMIT, **kw)
    count, _head = audit.head(box.catalog)
    return render(request, "logboek.html", rows=rows, errors=errors, query=request.query, total=count,
                  limit=LIMIT, report=None, csv_query=request.query_string, purpose_label=_purpose_label(request))


def _purpose_label(request: web.Request):
    lang = request[LANG]
    return lambda code: purposes.label(code, lang)


@routes.post("/logboek/controleer")
@needs(roles.AUDIT_READ)
async def verify(request: web.Request) -> web.StreamResponse:
    box = request.app[BOX]
    session = request[SESSION]
    report = audit.verify_on_record(box.catalog, session.name, client=client_of(request))
    rows = audit.entries(box.catalog, newest_first=True, limit=LIMIT)
    return render(request, "logboek.html", rows=rows, errors=[], query={}, total=audit.head(box.catalog)[0],
                  limit=LIMIT, report=report, csv_query="", purpose_label=_purpose_label(request))


@routes.get("/logboek.csv")
@needs(roles.AUDIT_READ)
async def log_csv(request: web.Request) -> web.StreamResponse:
    box = request.app[BOX]
    kw, errors = _filters(request)
    out = io.StringIO()
    audit.write_csv(audit.entries(box.catalog, **kw), out)
    return web.Response(body=out.getvalue().encode("utf-8"), content_type="text/csv", charset="utf-8",
                        headers={"Content-Disposition": 'attachment; filename="logboek.csv"'})


@routes.get("/logboek/verwijderverslag")
@needs(roles.DELETION_REPORT)
async def deletion_report(request: web.Request) -> web.StreamResponse:
    """What was deleted, when and under which term (verwijderverslag), without any footage."""
    start, end, errors = _range(request)
    rows = retention.deletion_report(request.app[BOX].catalog, start, end)
    return render(request, "verwijderverslag.html", rows=rows, errors=errors, query=request.query,
                  csv_query=request.query_string)


@routes.get("/logboek/verwijderverslag.csv")
@needs(roles.DELETION_REPORT)
async def deletion_report_csv(request: web.Request) -> web.StreamResponse:
    start, end, _errors = _range(request)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(retention.REPORT_COLUMNS)
    for row in retention.deletion_report(request.app[BOX].catalog, start, end):
        writer.writerow([row[c] for c in retention.REPORT_COLUMNS])
    return web.Response(body=out.getvalue().encode("utf-8"), content_type="text/csv", charset="utf-8",
                        headers={"Content-Disposition": 'attachment; filename="verwijderverslag.csv"'})
