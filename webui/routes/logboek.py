"""/logboek: the audit log with filters, chain verification ("Controleer keten") and CSV export.

Each entry reads as a sentence in the reader's language (webui/audit_text.py), the raw entry behind a
toggle. The page is read a hundred entries at a time with keyset paging (appliance.audit.page), so it
stays fast with a million entries."""

from __future__ import annotations

import io
import zipfile
from urllib.parse import urlencode

from aiohttp import web

from appliance import audit, csv_columns, custody, purposes, recording_reasons, retention, roles, spreadsheet, users, witness
from appliance.clock import to_iso
from appliance.errors import KluisError, NotFound

from .. import audit_text
from ..app import (BOX, LANG, ROLE_LABELS, SESSION, client_of, csv_response, csv_stream, domain_message, error_page,
                   formats_for, gettext_for, needs, render)
from ..labels import reason_label
from ..formats import parse_moment

routes = web.RouteTableDef()
LIMIT = 100


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
    kw, errors = _filters(request)
    return _render(request, kw, errors, _after(request), report=None)


def _after(request: web.Request) -> tuple[str, int] | None:
    """Where the previous page ended ((time, seq) of its last entry), from the "older entries" link."""
    time, seq = request.query.get("after_time", "")[:40], request.query.get("after_seq", "")
    return (time, int(seq)) if time and seq.isdigit() else None


def _render(request: web.Request, kw: dict, errors: list[str], after: tuple[str, int] | None, report):
    box = request.app[BOX]
    rows = audit.page(box.catalog, after=after, limit=LIMIT + 1, **kw)
    more = len(rows) > LIMIT
    rows = rows[:LIMIT]
    reader = _reader(request)
    told = [(row, audit_text.tell(row, reader)) for row in rows]
    query = {k: v for k, v in request.query.items() if k not in ("after_time", "after_seq")} if report is None else {}
    older = urlencode({**query, "after_time": rows[-1]["time"], "after_seq": rows[-1]["seq"]}) if more else None
    _ = gettext_for(request)
    actions = sorted(((code, _(audit_text.ACTION_LABELS[code]) if code in audit_text.ACTION_LABELS else code)
                      for code in audit_text.SENTENCES), key=lambda item: item[1].lower())
    return render(request, "logboek.html", entries=told, errors=errors, newest=urlencode(query), query=request.query if report is None else {},
                  total=audit.head(box.catalog)[0], older=older, first_page=after is None, report=report, limit=LIMIT,
                  actions=actions, csv_query=request.query_string if report is None else "")


def _reader(request: web.Request) -> audit_text.Reader:
    """How this reader sees an entry: language, the box's time zone, labels, and people by full name."""
    box = request.app[BOX]
    lang = request[LANG]
    _ = gettext_for(request)
    fmt = formats_for(request)
    names = {login: row.get("full_name") or login for login, row in users.people(box).items()}
    offered = recording_reasons.current(box).offered()  # the box's own reasons, labelled as configured
    return audit_text.Reader(
        gettext=_,
        fmt_time=fmt.time,
        purpose_label=lambda code: purposes.label(code, lang),
        reason_label=lambda code: reason_label(code, lang, offered),
        role_label=lambda role: _(ROLE_LABELS.get(role, role)),
        name_of=lambda login: names.get(login, login),
        roles=frozenset(ROLE_LABELS),
    )


@routes.post("/logboek/controleer")
@needs(roles.AUDIT_READ)
async def verify(request: web.Request) -> web.StreamResponse:
    box = request.app[BOX]
    session = request[SESSION]
    report = witness.verify_on_record(box.catalog, session.name, client=client_of(request))
    return _render(request, {}, [], None, report=report)


@routes.get("/logboek/bewaarketen")
@needs(roles.AUDIT_READ)
async def custody_report(request: web.Request) -> web.StreamResponse:
    """The custody report of a recording (?opname=ID) or a case (?zaak=REF): a ZIP of its PDF and the signed
    JSON, which `kluis export verify` checks (appliance.custody)."""
    recording_id = request.query.get("opname", "").strip()[:100] or None
    case_ref = request.query.get("zaak", "").strip()[:200] or None
    if (recording_id is None) == (case_ref is None):
        raise web.HTTPBadRequest(text="opname=ID or zaak=REF")
    box = request.app[BOX]
    try:
        report, pdf = custody.build(box, recording_id=recording_id, case_ref=case_ref, actor=request[SESSION].name,
                                    client=client_of(request))
    except NotFound:
        raise web.HTTPNotFound() from None
    except KluisError as exc:  # e.g. the signing key did not unseal: no report can be signed now; say why
        return error_page(request, 503, domain_message(request, exc))
    name = "bewaarketen-" + "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in (recording_id or case_ref or ""))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{name}.pdf", pdf)
        archive.writestr(f"{name}.json", custody.to_json(report))
    return web.Response(body=buffer.getvalue(), content_type="application/zip", headers={
        "Content-Disposition": f'attachment; filename="{name}.zip"', "Cache-Control": "no-store"})


@routes.get("/logboek.csv")
@needs(roles.AUDIT_READ)
async def log_csv(request: web.Request) -> web.StreamResponse:
    box = request.app[BOX]
    kw, _errors = _filters(request)
    rows = ([row.get(name) for name in audit.COLUMNS] for row in audit.each_entry(box.catalog, **kw))
    header = csv_columns.headings(audit.COLUMNS, request[LANG])
    return await csv_stream(request, spreadsheet.chunks(header, rows, box.settings.box.timezone), "logboek.csv")


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
    box = request.app[BOX]
    rows = retention.deletion_report(box.catalog, start, end)
    body = spreadsheet.to_bytes(csv_columns.headings(retention.REPORT_COLUMNS, request[LANG]),
                                ([row[c] for c in retention.REPORT_COLUMNS] for row in rows), box.settings.box.timezone)
    return csv_response(body, "verwijderverslag.csv")
