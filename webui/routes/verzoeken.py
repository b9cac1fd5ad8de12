"""/verzoeken: the privacy officer's register of requests of people who were filmed (inzageverzoek,
bezwaar, klacht). Registering searches and holds (appliance.access_requests, the same functions as
`kluis requests`); a request's page links its recordings (viewing goes through the recording's own
audited view), any redacted derivative, the handover to the requester, and closes it."""

from __future__ import annotations

import functools
from datetime import date
from typing import Awaitable, Callable
from urllib.parse import urlencode

from aiohttp import web

from appliance import access_requests as ar
from appliance import handover, purposes, recording_places, request_letters, retention, roles
from appliance.errors import KluisError

from ..formats import parse_day, parse_moment
from ..app import (BOX, LANG, SESSION, client_of, domain_message, flash, formats_for, gettext_for, needs, ngettext_for,
                   render)
from ..i18n import N_
from ..posted import Posted, posted

routes = web.RouteTableDef()

KIND_CODES = list(ar.KINDS)
OUTCOME_LABELS = {"answered": N_("answered"), "upheld": N_("upheld"), "rejected": N_("rejected"),
                  "withdrawn": N_("withdrawn")}
RESULT_LABELS = {"released": N_("hold released"), "deleted": N_("deleted ahead of its term"),
                 "blocked": N_("not deleted: another hold keeps it"), "gone": N_("deleted before closing")}
STATUS_LABELS = {"open": N_("open"), "closed": N_("closed")}
LETTER_LABELS = {"receipt": N_("Acknowledgement of receipt"), "extension": N_("Extension of the deadline"),
                 "outcome": N_("Decision")}


def days_left_text(request: web.Request, left: int) -> str:
    """How a request's legal deadline stands, in days, in the user's language."""
    ngettext = ngettext_for(request)
    if left < 0:
        return ngettext("%(days)d day overdue", "%(days)d days overdue", -left) % {"days": -left}
    if left == 0:
        _ = gettext_for(request)
        return _("due today")
    return ngettext("%(days)d day left", "%(days)d days left", left) % {"days": left}


def _helpers(request: web.Request) -> dict:
    _ = gettext_for(request)
    lang = request[LANG]
    box = request.app[BOX]

    def days_text(req: dict) -> str:
        return days_left_text(request, ar.days_left(box, req)) if req["status"] == "open" else ""

    return {
        "kind_label": lambda code: purposes.label(code, lang),
        "outcome_label": lambda code: _(OUTCOME_LABELS[code]) if code in OUTCOME_LABELS else (code or ""),
        "result_label": lambda code: _(RESULT_LABELS[code]) if code in RESULT_LABELS else (code or ""),
        "status_label": lambda code: _(STATUS_LABELS[code]) if code in STATUS_LABELS else code,
        "letter_label": lambda code: _(LETTER_LABELS[code]) if code in LETTER_LABELS else code,
        "purpose_label": lambda code: purposes.label(code, lang),
        "days_text": days_text,
        "fmt_date": lambda text: date.fromisoformat(text).strftime("%d-%m-%Y") if text else "",
    }


@routes.get("/verzoeken")
@needs(roles.REQUESTS_MANAGE)
async def register_page(request: web.Request) -> web.StreamResponse:
    box = request.app[BOX]
    show_all = request.query.get("alle") == "1"
    text = request.query.get("zoek", "").strip()[:100]
    rows = ar.list_requests(box, None if show_all else "open", text)
    return render(request, "verzoeken.html", rows=rows, show_all=show_all, warn_days=ar.settings(box).warn_days,
                  text=text, **_helpers(request))


def _new_form(request: web.Request, status: int = 200, errors: list[str] | None = None,
              form: dict | None = None, fields: dict[str, str] | None = None) -> web.Response:
    """`errors`: said at the top; `fields`: the same, each at its field (aria-invalid, aria-describedby)."""
    box = request.app[BOX]
    return render(request, "verzoek_nieuw.html", status=status, errors=errors or [], field_errors=fields or {},
                  form=form or {"received_on": ar.today(box).isoformat()}, kinds=KIND_CODES,
                  window=ar.settings(box).window_minutes, radius=ar.settings(box).place_radius_m, **_helpers(request))


@routes.get("/verzoeken/nieuw")
@needs(roles.REQUESTS_MANAGE)
async def new_page(request: web.Request) -> web.StreamResponse:
    return _new_form(request)


FIELDS = ("requester", "kind", "received_on", "given_time", "place", "place_at", "radius", "camera", "officer",
          "window", "contact", "notes")


@routes.post("/verzoeken")
@needs(roles.REQUESTS_MANAGE)
async def register(request: web.Request) -> web.StreamResponse:
    """Register: search around the time given and hold every match for the request."""
    p = await posted(request)
    _, box, form = p.gettext, p.box, p.fields(FIELDS)
    fields: dict[str, str] = {}  # field -> what is wrong with it, shown at the field
    if not form["requester"]:
        fields["requester"] = _("Give the requester's name.")
    if form["kind"] not in ar.KINDS:
        fields["kind"] = _("Choose the kind of request.")
    received = given = window = radius = point = None
    try:
        received = parse_day(form["received_on"])
    except ValueError:
        fields["received_on"] = _("Not a date: %(value)s (for example 21-11-2026)") % {"value": form["received_on"][:40]}
    else:
        if received > ar.today(box):
            fields["received_on"] = _("The date the request came in lies in the future.")
    try:
        given = parse_moment(form["given_time"][:40], box.settings.box.timezone)
    except KluisError:
        fields["given_time"] = _("Not a date and time: %(value)s (for example 20-11-2026 14:30)") % {
            "value": form["given_time"][:40]}
    if form["window"]:
        try:
            window = int(form["window"])
            if not 0 <= window <= 1440:
                raise ValueError
        except ValueError:
            fields["window"] = _("The search window is a whole number of minutes, 0 to 1440.")
    try:
        point = recording_places.parse_place(form["place_at"][:300])
    except KluisError:
        fields["place_at"] = _("Not a place on the map: %(value)s (give latitude and longitude, e.g. 52.0907, 5.1214, "
                               "or paste a map link)") % {"value": form["place_at"][:80]}
    if form["radius"]:
        try:
            radius = int(form["radius"])
            if not 10 <= radius <= 50_000:
                raise ValueError
        except ValueError:
            fields["radius"] = _("The radius is a whole number of metres, 10 to 50000.")
    if fields:
        return _new_form(request, 400, list(fields.values()), form, fields)
    assert received is not None and given is not None  # each parsed, or errors returned above
    try:
        done = ar.register(box, requester=form["requester"], kind=form["kind"], received_on=received,
                           given_time=given, actor=p.session.name, place=form["place"],
                           camera=form["camera"], officer=form["officer"], contact=form["contact"],
                           notes=form["notes"], window_minutes=window, place_at=point, radius_m=radius,
                           client=p.client)
    except KluisError as exc:
        return _new_form(request, 400, [domain_message(request, exc)], form)
    n, ngettext = len(done.matches), ngettext_for(request)
    said = ngettext("Registered. %(n)s recording found and held for this request.",
                    "Registered. %(n)s recordings found and held for this request.", n) % {
        "n": formats_for(request).number(n)}
    if done.elsewhere:
        said += " " + ngettext("%(n)s recording of that time was made elsewhere and left out.",
                               "%(n)s recordings of that time were made elsewhere and left out.",
                               len(done.elsewhere)) % {"n": formats_for(request).number(len(done.elsewhere))}
    flash(request, said)
    raise web.HTTPSeeOther(f"/verzoeken/{done.request['id']}")


def _handover_link(req: dict, items: list[dict], derived: dict) -> str:
    """The handover page (/overdrachten/nieuw) with the redacted versions of the request's recordings
    filled in, if there is a redacted version to hand over ("" if not): a requester gets everyone else
    blurred, never the original."""
    ids = [d["id"] for item in items if item["recording"] and not item["unlinked_at"]
           for d in derived.get(item["recording_id"], [])]
    if not ids:
        return ""
    # The form fills in the case (the request's reference), the purpose (its kind) and the protection
    # (a passphrase: a requester has no age key); the privacy officer can still change them.
    return "/overdrachten/nieuw?" + urlencode([("opname", i) for i in ids] + [
        ("case_ref", req["ref"]), ("purpose", req["kind"]), ("protection", "passphrase")])


def _detail(request: web.Request, req: dict, status: int = 200, error: str | None = None,
            form: dict | None = None, field: str | None = None) -> web.Response:
    """`field`: the form field `error` is about (shown there too; 'unlink:ID' for a row's reason)."""
    box = request.app[BOX]
    items = ar.links(box, req["id"])
    for item in items:
        item["holds"] = retention.active_holds(box.catalog, item["recording_id"]) if item["recording"] else []
    derived = ar.derivatives(box, [i["recording_id"] for i in items])
    return render(request, "verzoek.html", status=status, req=req, items=items, derived=derived, error=error,
                  form=form or {}, field_errors={field: error} if field and error else {},
                  outcomes=ar.KIND_OUTCOMES[req["kind"]], letters=request_letters.allowed(req),
                  letters_made=request_letters.made(box, req["id"]),
                  extendable=(req["status"] == "open" and req["kind"] in ar.EXTENDABLE
                              and (req["extension_months"] or 0) < ar.MAX_EXTENSION_MONTHS
                              and ar.today(box).isoformat() <= (req["original_deadline"] or req["deadline"])),
                  handover=_handover_link(req, items, derived),
                  **_helpers(request))


def _request_for(request: web.Request) -> dict:
    return ar.get(request.app[BOX], request.match_info["id"])


@routes.get("/verzoeken/{id}")
@needs(roles.REQUESTS_MANAGE)
async def detail(request: web.Request) -> web.StreamResponse:
    return _detail(request, _request_for(request))


def _on_open_request(handler: Callable[[web.Request, dict, Posted], Awaitable[web.StreamResponse]]):
    """A change to the request in the path: the handler gets it and the posted form, only while the request
    is open (a closed one is shown with that said)."""

    @functools.wraps(handler)
    async def changing(request: web.Request) -> web.StreamResponse:
        req = _request_for(request)
        p = await posted(request)
        if req["status"] != "open":
            return _detail(request, req, 400, error=p.gettext("This request is closed."))
        return await handler(request, req, p)

    return changing


@routes.post("/verzoeken/{id}/koppelen")
@needs(roles.REQUESTS_MANAGE)
@_on_open_request
async def link(request: web.Request, req: dict, p: Posted) -> web.StreamResponse:
    """Link a recording the search missed; it is held for the request (audited)."""
    _, box, recording_id = p.gettext, p.box, p.text("recording", 64)
    if not recording_id:
        return _detail(request, req, 400, error=_("Give the id of the recording to link."), field="link_recording")
    if not ar.linkable(box, recording_id):
        return _detail(request, req, 400, error=_("There is no recording %(id)s.") % {"id": recording_id},
                       form={"recording": recording_id}, field="link_recording")
    try:
        ar.link(box, req["id"], recording_id, p.session.name, client=p.client)
    except KluisError:
        return _detail(request, req, 400, error=_("That recording is linked to this request already."),
                       form={"recording": recording_id}, field="link_recording")
    flash(request, _("Recording %(id)s linked to the request; it is held for it.") % {"id": recording_id})
    raise web.HTTPSeeOther(f"/verzoeken/{req['id']}#opnames")


@routes.post("/verzoeken/{id}/ontkoppelen")
@needs(roles.REQUESTS_MANAGE)
@_on_open_request
async def unlink(request: web.Request, req: dict, p: Posted) -> web.StreamResponse:
    """Unlink a recording that is not the requester's; the request's hold on it is released (audited)."""
    recording_id, reason = p.text("recording", 64), p.text("reason", 500)
    if not recording_id or not reason:
        return _detail(request, req, 400, error=p.gettext("Give the reason for unlinking the recording."),
                       field=f"unlink:{recording_id}")
    ar.unlink(p.box, req["id"], recording_id, p.session.name, reason, client=p.client)
    flash(request, p.gettext("Recording %(id)s unlinked; the request's hold on it is released.") % {"id": recording_id})
    raise web.HTTPSeeOther(f"/verzoeken/{req['id']}#opnames")


@routes.post("/verzoeken/{id}/overdragen")
@needs(roles.REQUESTS_MANAGE)
@_on_open_request
async def hand_over(request: web.Request, req: dict, p: Posted) -> web.StreamResponse:
    """Prepare the handover of the request's redacted versions to the requester (appliance.handover): a
    package protected with an age passphrase, which a second person approves on the handover's page (four
    eyes); the passphrase is shown once then, to pass on separately."""
    _, box, session = p.gettext, p.box, p.session
    if req["kind"] != "access_request":
        return _detail(request, req, 400, error=_("Only an access request is handed over to the requester."))
    if not roles.allowed(session.role, roles.HANDOVER_PREPARE):
        return _detail(request, req, 403, error=_("Your role may not prepare a handover."))
    items = [i for i in ar.links(box, req["id"], include_unlinked=False) if i["recording"]]
    copies = [d["id"] for rows in ar.derivatives(box, [i["recording_id"] for i in items]).values() for d in rows
              if d["state"] == "stored"]
    if not copies:
        return _detail(request, req, 400, error=_("There is no redacted version to hand over yet: the requester "
                                                  "gets everyone else blurred, never the original."))
    try:
        handover_id = handover.prepare(
            box, session.name, copies, receiver=f"{req['requester']} ({req['ref']})",
            basis="AVG art. 15 (inzageverzoek)", case_ref=req["ref"], purpose=req["kind"], protection="passphrase",
            client=p.client)
    except KluisError as exc:
        return _detail(request, req, 400, error=domain_message(request, exc))
    flash(request, _("Handover prepared. A second person approves it on this page."))
    raise web.HTTPSeeOther(f"/overdrachten/{handover_id}")


@routes.post("/verzoeken/{id}/verlengen")
@needs(roles.REQUESTS_MANAGE)
@_on_open_request
async def extend(request: web.Request, req: dict, p: Posted) -> web.StreamResponse:
    """Extend the deadline by one or two months with the reason the requester is told (AVG art. 12(3))."""
    _, months, reason = p.gettext, p.raw("months"), p.text("reason", 1000)
    kept = {"months": months, "reason": reason}
    if months not in ("1", "2"):
        return _detail(request, req, 400, error=_("Choose by how many months."), form=kept, field="months")
    if not reason:
        return _detail(request, req, 400, error=_("Give the reason: the requester is told it."), form=kept,
                       field="extension_reason")
    try:
        done = ar.extend(p.box, req["id"], int(months), reason, p.session.name, client=p.client)
    except KluisError as exc:
        return _detail(request, req, 400, error=domain_message(request, exc), form=kept, field="months")
    flash(request, _("Deadline extended to %(date)s. Send the requester the extension letter.") % {
        "date": date.fromisoformat(done["deadline"]).strftime("%d-%m-%Y")})
    raise web.HTTPSeeOther(f"/verzoeken/{req['id']}#brieven")


@routes.get("/verzoeken/{id}/brief/{kind}")
@needs(roles.REQUESTS_MANAGE)
async def letter(request: web.Request) -> web.StreamResponse:
    """A letter to the requester as PDF (put on record; it holds nothing the register does not)."""
    req, kind = _request_for(request), request.match_info["kind"]
    if kind not in request_letters.allowed(req):
        raise web.HTTPNotFound()
    box = request.app[BOX]
    req, pdf = request_letters.make(box, req["id"], kind, request[SESSION].name, client=client_of(request))
    return web.Response(body=pdf, content_type="application/pdf", headers={
        "Content-Disposition": f'inline; filename="brief-{kind}-{req["ref"]}.pdf"', "Cache-Control": "no-store"})


@routes.post("/verzoeken/{id}/afsluiten")
@needs(roles.REQUESTS_MANAGE)
@_on_open_request
async def close(request: web.Request, req: dict, p: Posted) -> web.StreamResponse:
    """Close with the outcome: holds released; an objection upheld deletes its recordings ahead of their
    term unless another hold keeps them (the page then says which)."""
    _, outcome, decision_ref = p.gettext, p.raw("outcome"), p.text("decision_ref", 100)
    kept = {"outcome": outcome, "decision_ref": decision_ref}
    if outcome not in ar.KIND_OUTCOMES[req["kind"]]:
        return _detail(request, req, 400, error=_("Choose the outcome."), form=kept, field="outcome")
    if outcome != "withdrawn" and not decision_ref:
        return _detail(request, req, 400, error=_("Give the reference of the decision."), form=kept,
                       field="decision_ref")
    ar.close(p.box, req["id"], outcome, p.session.name, decision_ref or None, client=p.client)
    flash(request, _("Request closed."))
    raise web.HTTPSeeOther(f"/verzoeken/{req['id']}#opnames")
