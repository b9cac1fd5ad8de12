"""/zaken: cases (appliance/cases.py, appliance/case_file.py). The list, a case's page (its recordings on a
timeline, its holds, handovers and requests, who did what, the custody report), opening, closing (its holds
released), reopening, and the case-level handover (appliance/handover.prepare: a second person approves).
A team leader sees the own team's recordings only, as on /opnames; the same functions as `kluis cases`."""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import web

from appliance import case_file, cases, handover, purposes, roles
from appliance.clock import from_iso
from appliance.errors import KluisError, NotFound

from ..app import BOX, LANG, SESSION, domain_message, flash, needs, ngettext_for, render
from ..posted import posted
from .. import audit_text
from .logboek import _reader as audit_reader  # one reader (names, times, labels) for the logboek and a case's trail

routes = web.RouteTableDef()

CASE_PURPOSES = [code for code in purposes.PURPOSES if code != "training"]


def case_path(ref: str) -> str:
    return "/zaken/" + quote(ref, safe="")


def _helpers(request: web.Request) -> dict:
    lang = request[LANG]
    return {"purpose_label": lambda code: purposes.label(code, lang), "case_path": case_path,
            "purpose_options": [(code, purposes.label(code, lang)) for code in CASE_PURPOSES]}


@routes.get("/zaken")
@needs(roles.CASES_READ)
async def list_page(request: web.Request) -> web.StreamResponse:
    return _list(request)


def _list(request: web.Request, status: int = 200, error: str | None = None, form: dict | None = None,
          field_errors: dict | None = None) -> web.Response:
    box = request.app[BOX]
    show_all = request.query.get("alle") == "1"
    text = request.query.get("zoek", "").strip()[:100]
    rows = case_file.visible_cases(box, request[SESSION].user, None if show_all else "open", text)
    return render(request, "zaken.html", status=status, rows=rows, show_all=show_all, text=text, error=error,
                  form=form or {}, field_errors=field_errors or {}, **_helpers(request))


@routes.post("/zaken")
@needs(roles.CASES_MANAGE)
async def add(request: web.Request) -> web.StreamResponse:
    """Open a case by hand, before a hold or handover names it."""
    p = await posted(request)
    _ = p.gettext
    form = {"reference": p.text("reference", cases.MAX_REF), "purpose": p.text("purpose", 40),
            "title": p.text("title", cases.MAX_TITLE), "description": p.text("description", cases.MAX_DESCRIPTION)}
    fields = {}
    if not form["reference"]:
        fields["reference"] = _("Give the case reference (for example the number of the police report).")
    if form["purpose"] not in CASE_PURPOSES:
        fields["purpose"] = _("Choose what the case is for.")
    if not fields:
        try:
            case = cases.open_case(p.box, form["reference"], form["purpose"], p.session.name, title=form["title"],
                                   description=form["description"], client=p.client)
        except KluisError as exc:
            fields["reference"] = domain_message(request, exc)
        else:
            flash(request, _("Case %(ref)s opened.") % {"ref": case["reference"]})
            raise web.HTTPSeeOther(case_path(case["reference"]))
    return _list(request, 400, error=next(iter(fields.values())), form=form, field_errors=fields)


def _timeline(recordings: list[dict], span: tuple[str, str] | None) -> dict[str, tuple[float, float]]:
    """Each recording's bar on the case's time axis: (x, width) in a viewBox 1000 wide."""
    if not span:
        return {}
    start, end = from_iso(span[0]), from_iso(span[1])
    total = max((end - start).total_seconds(), 1.0)
    bars = {}
    for rec in recordings:
        x = (from_iso(rec["start_time"]) - start).total_seconds() / total * 1000
        width = (from_iso(rec["end_time"]) - from_iso(rec["start_time"])).total_seconds() / total * 1000
        bars[rec["id"]] = (round(x, 1), round(max(width, 4.0), 1))
    return bars


def _page(request: web.Request, ref: str, status: int = 200, error: str | None = None, form: dict | None = None,
          field_errors: dict | None = None) -> web.Response:
    box, session = request.app[BOX], request[SESSION]
    found = case_file.open_file(box, session.user, ref)
    reader = audit_reader(request)
    told = [(entry, audit_text.tell(entry, reader)) for entry in found.trail]
    can_hand_over = (cases.is_open(found.case) and roles.allowed(session.role, roles.HANDOVER_PREPARE)
                     and found.case["kind"] != "training")
    candidates = case_file.handover_candidates(box, session.user, found.case) if can_hand_over else []
    is_request = bool(found.requests)
    return render(request, "zaak.html", status=status, f=found, case=found.case, told=told,
                  bars=_timeline(found.recordings, found.span), candidates=candidates, is_request=is_request,
                  protections=[p for p in handover.PROTECTIONS if p != "none"], error=error, form=form or {},
                  field_errors=field_errors or {}, **_helpers(request))


@routes.get("/zaken/{ref}")
@needs(roles.CASES_READ)
async def detail(request: web.Request) -> web.StreamResponse:
    return _page(request, request.match_info["ref"])


@routes.post("/zaken/{ref}/wijzigen")
@needs(roles.CASES_MANAGE)
async def describe(request: web.Request) -> web.StreamResponse:
    """Give the case a title and description (a case opened by a hold has none); audited."""
    p = await posted(request)
    ref = request.match_info["ref"]
    case_file.open_file(p.box, p.session.user, ref)  # NotFound outside the user's view
    case = cases.describe(p.box, ref, p.session.name, title=p.text("title", cases.MAX_TITLE),
                          description=p.text("description", cases.MAX_DESCRIPTION), client=p.client)
    flash(request, p.gettext("Case %(ref)s changed.") % {"ref": case["reference"]})
    raise web.HTTPSeeOther(case_path(case["reference"]))


@routes.post("/zaken/{ref}/afsluiten")
@needs(roles.CASES_MANAGE)
async def close(request: web.Request) -> web.StreamResponse:
    """Close the case: its holds are released ("case closed"), on record; its history stays."""
    p = await posted(request)
    ref = request.match_info["ref"]
    try:
        released = case_file.close(p.box, p.session.name, p.session.user, ref, p.text("reason", 500), client=p.client)
    except roles.Forbidden as exc:
        return _page(request, ref, 403, error=domain_message(request, exc))
    except NotFound:
        raise
    except KluisError as exc:
        return _page(request, ref, 400, error=domain_message(request, exc))
    flash(request, ngettext_for(request)("Case closed; %(n)s hold released.", "Case closed; %(n)s holds released.",
                                         len(released)) % {"n": len(released)})
    raise web.HTTPSeeOther(case_path(cases.get(p.box, ref)["reference"]))


@routes.post("/zaken/{ref}/heropenen")
@needs(roles.CASES_MANAGE)
async def reopen(request: web.Request) -> web.StreamResponse:
    p = await posted(request)
    ref, reason = request.match_info["ref"], p.text("reason", 500)
    case_file.open_file(p.box, p.session.user, ref)  # NotFound outside the user's view
    if not reason:
        return _page(request, ref, 400, error=p.gettext("Give the reason for reopening the case."),
                     field_errors={"reopen_reason": p.gettext("Give the reason for reopening the case.")})
    case = cases.reopen(p.box, ref, p.session.name, reason, client=p.client)
    flash(request, p.gettext("Case %(ref)s reopened.") % {"ref": case["reference"]})
    raise web.HTTPSeeOther(case_path(case["reference"]))


@routes.post("/zaken/{ref}/overdragen")
@needs(roles.HANDOVER_PREPARE)
async def hand_over(request: web.Request) -> web.StreamResponse:
    """Prepare one handover of every stored recording of the case in the user's scope, under the case's
    reference and kind; a second person approves it on the handover's page (four eyes)."""
    p = await posted(request)
    _, ref = p.gettext, request.match_info["ref"]
    form = {k: p.text(k, 500) for k in ("receiver", "basis_kind", "basis_article", "protection", "age_recipient")}
    fields = {}
    if not form["receiver"]:
        fields["receiver"] = _("Name the receiving organisation and the person who receives the footage.")
    basis = ""
    if form["basis_kind"] == "vordering":
        if not form["basis_article"]:
            fields["basis_article"] = _("A requisition names its article (for example art. 126nd Sv).")
        basis = f"vordering ({form['basis_article']})"
    elif form["basis_kind"] == "vrijwillig":
        basis = "vrijwillige verstrekking"
    else:
        fields["basis_kind"] = _("Choose the legal basis: a requisition, or voluntary provision.")
    if form["protection"] not in handover.PROTECTIONS or form["protection"] == "none":
        fields["protection"] = _("Choose how the package is protected.")
    elif form["protection"] == "age-recipient" and not form["age_recipient"]:
        fields["age_recipient"] = _("Give the receiver's age key (age1...).")
    if fields:
        return _page(request, ref, 400, error=next(iter(fields.values())), form=form, field_errors=fields)
    try:
        handover_id = case_file.prepare_handover(
            p.box, p.session.user, ref, receiver=form["receiver"], basis=basis, protection=form["protection"],
            age_recipient=form["age_recipient"] or None, client=p.client)
    except handover.Denied as exc:
        return _page(request, ref, 403, error=domain_message(request, exc), form=form)
    except NotFound:
        raise
    except KluisError as exc:
        return _page(request, ref, 400, error=domain_message(request, exc), form=form)
    flash(request, _("Handover prepared. A second person approves it on this page."))
    raise web.HTTPSeeOther(f"/overdrachten/{handover_id}")
