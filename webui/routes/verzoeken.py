"""/verzoeken: the privacy officer's register of requests of people who were filmed (inzageverzoek,
bezwaar, klacht). Registering searches and holds (appliance.access_requests, the same functions as
`kluis requests`); a request's page links its recordings (viewing goes through the recording's own
audited view), any redacted derivative, the handover to the requester, and closes it."""

from __future__ import annotations

from datetime import date
from urllib.parse import urlencode

from aiohttp import web

from appliance import access_requests as ar
from appliance import purposes, retention, roles
from appliance.clock import parse_time
from appliance.errors import KluisError

from ..app import BOX, LANG, SESSION, client_of, gettext_for, needs, render
from ..i18n import N_

routes = web.RouteTableDef()

KIND_CODES = list(ar.KINDS)
OUTCOME_LABELS = {"answered": N_("answered"), "upheld": N_("upheld"), "rejected": N_("rejected"),
                  "withdrawn": N_("withdrawn")}
RESULT_LABELS = {"released": N_("hold released"), "deleted": N_("deleted ahead of its term"),
                 "blocked": N_("not deleted: another hold keeps it"), "gone": N_("deleted before closing")}
STATUS_LABELS = {"open": N_("open"), "closed": N_("closed")}


def _helpers(request: web.Request) -> dict:
    _ = gettext_for(request)
    lang = request[LANG]
    box = request.app[BOX]

    def days_text(req: dict) -> str:
        if req["status"] != "open":
            return ""
        left = ar.days_left(box, req)
        if left < 0:
            return _("%(days)d days overdue") % {"days": -left}
        if left == 0:
            return _("due today")
        return _("%(days)d days left") % {"days": left}

    return {
        "kind_label": lambda code: purposes.label(code, lang),
        "outcome_label": lambda code: _(OUTCOME_LABELS[code]) if code in OUTCOME_LABELS else (code or ""),
        "result_label": lambda code: _(RESULT_LABELS[code]) if code in RESULT_LABELS else (code or ""),
        "status_label": lambda code: _(STATUS_LABELS[code]) if code in STATUS_LABELS else code,
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
              form: dict | None = None) -> web.Response:
    box = request.app[BOX]
    return render(request, "verzoek_nieuw.html", status=status, errors=errors or [],
                  form=form or {"received_on": ar.today(box).isoformat()}, kinds=KIND_CODES,
                  window=ar.settings(box).window_minutes, **_helpers(request))


@routes.get("/verzoeken/nieuw")
@needs(roles.REQUESTS_MANAGE)
async def new_page(request: web.Request) -> web.StreamResponse:
    return _new_form(request)


FIELDS = ("requester", "kind", "received_on", "given_time", "place", "camera", "officer", "window", "contact",
          "notes")


@routes.post("/verzoeken")
@needs(roles.REQUESTS_MANAGE)
async def register(request: web.Request) -> web.StreamResponse:
    """Register: search around the time given and hold every match for the request."""
    _ = gettext_for(request)
    box = request.app[BOX]
    posted = await request.post()
    form = {name: str(posted.get(name, "")).strip()[:4000] for name in FIELDS}
    errors = []
    if not form["requester"]:
        errors.append(_("Give the requester's name."))
    if form["kind"] not in ar.KINDS:
        errors.append(_("Choose the kind of request."))
    received = given = window = None
    try:
        received = date.fromisoformat(form["received_on"])
    except ValueError:
        errors.append(_("Not a date: %(value)s (for example 2026-11-21)") % {"value": form["received_on"][:40]})
    else:
        if received > ar.today(box):
            errors.append(_("The date the request came in lies in the future."))
    try:
        given = parse_time(form["given_time"][:40], box.settings.box.timezone)
    except KluisError:
        errors.append(_("Not a date and time: %(value)s (for example 2026-11-20T14:30)") % {"value": form["given_time"][:40]})
    if form["window"]:
        try:
            window = int(form["window"])
            if not 0 <= window <= 1440:
                raise ValueError
        except ValueError:
            errors.append(_("The search window is a whole number of minutes, 0 to 1440."))
    if errors:
        return _new_form(request, 400, errors, form)
    try:
        done = ar.register(box, requester=form["requester"], kind=form["kind"], received_on=received,
                           given_time=given, actor=request[SESSION].name, place=form["place"],
                           camera=form["camera"], officer=form["officer"], contact=form["contact"],
                           notes=form["notes"], window_minutes=window, client=client_of(request))
    except KluisError as exc:
        return _new_form(request, 400, [str(exc)], form)
    raise web.HTTPSeeOther(f"/verzoeken/{done.request['id']}?nieuw=1")


def _route_exists(request: web.Request, canonical: str) -> bool:
    return any(resource.canonical == canonical for resource in request.app.router.resources())


def _handover_link(request: web.Request, req: dict, items: list[dict], derived: dict) -> str | None:
    """The handover page (issue 7's /overdrachten/nieuw) with the redacted versions of the request's
    recordings filled in, if this box has that page and there is a redacted version to hand over: a
    requester gets everyone else blurred, never the original."""
    if not _route_exists(request, "/overdrachten/nieuw"):
        return None
    ids = [d["id"] for item in items if item["recording"] and not item["unlinked_at"]
           for d in derived.get(item["recording_id"], [])]
    if not ids:
        return ""
    # The form fills in the case (the request's reference), the purpose (its kind) and the protection
    # (a passphrase: a requester has no age key); the privacy officer can still change them.
    return "/overdrachten/nieuw?" + urlencode([("opname", i) for i in ids] + [
        ("case_ref", req["ref"]), ("purpose", req["kind"]), ("protection", "passphrase")])


def _detail(request: web.Request, req: dict, status: int = 200, error: str | None = None,
            form: dict | None = None) -> web.Response:
    box = request.app[BOX]
    items = ar.links(box, req["id"])
    for item in items:
        item["holds"] = retention.active_holds(box.catalog, item["recording_id"]) if item["recording"] else []
    derived = ar.derivatives(box, [i["recording_id"] for i in items])
    return render(request, "verzoek.html", status=status, req=req, items=items, derived=derived, error=error,
                  form=form or {}, outcomes=ar.KIND_OUTCOMES[req["kind"]],
                  handover=_handover_link(request, req, items, derived),
                  can_redact=_route_exists(request, "/opnames/{id}/redigeren"),
                  just_registered=request.query.get("nieuw") == "1" and status == 200,
                  **_helpers(request))


def _request_for(request: web.Request) -> dict:
    return ar.get(request.app[BOX], request.match_info["id"])


@routes.get("/verzoeken/{id}")
@needs(roles.REQUESTS_MANAGE)
async def detail(request: web.Request) -> web.StreamResponse:
    return _detail(request, _request_for(request))


@routes.post("/verzoeken/{id}/koppelen")
@needs(roles.REQUESTS_MANAGE)
async def link(request: web.Request) -> web.StreamResponse:
    """Link a recording the search missed; it is held for the request (audited)."""
    _ = gettext_for(request)
    box = request.app[BOX]
    req = _request_for(request)
    form = await request.post()
    recording_id = str(form.get("recording", "")).strip()[:64]
    if req["status"] != "open":
        return _detail(request, req, 400, error=_("This request is closed."))
    if not recording_id:
        return _detail(request, req, 400, error=_("Give the id of the recording to link."))
    if not box.catalog.db.execute("SELECT 1 FROM recordings WHERE id = ? AND state = 'stored'",
                                  [recording_id]).fetchone():
        return _detail(request, req, 400, error=_("There is no recording %(id)s.") % {"id": recording_id},
                       form={"recording": recording_id})
    try:
        ar.link(box, req["id"], recording_id, request[SESSION].name, client=client_of(request))
    except KluisError:
        return _detail(request, req, 400, error=_("That recording is linked to this request already."))
    raise web.HTTPSeeOther(f"/verzoeken/{req['id']}#opnames")


@routes.post("/verzoeken/{id}/ontkoppelen")
@needs(roles.REQUESTS_MANAGE)
async def unlink(request: web.Request) -> web.StreamResponse:
    """Unlink a recording that is not the requester's; the request's hold on it is released (audited)."""
    _ = gettext_for(request)
    box = request.app[BOX]
    req = _request_for(request)
    form = await request.post()
    recording_id = str(form.get("recording", "")).strip()[:64]
    reason = str(form.get("reason", "")).strip()[:500]
    if req["status"] != "open":
        return _detail(request, req, 400, error=_("This request is closed."))
    if not recording_id or not reason:
        return _detail(request, req, 400, error=_("Give the reason for unlinking the recording."))
    ar.unlink(box, req["id"], recording_id, request[SESSION].name, reason, client=client_of(request))
    raise web.HTTPSeeOther(f"/verzoeken/{req['id']}#opnames")


@routes.post("/verzoeken/{id}/overdragen")
@needs(roles.REQUESTS_MANAGE)
async def hand_over(request: web.Request) -> web.StreamResponse:
    """Prepare the handover of the request's redacted versions to the requester (issue 7's handover,
    appliance.handover): a package protected with an age passphrase, which a second person approves on
    the handover's page (four eyes); the passphrase is shown once then, to pass on separately."""
    _ = gettext_for(request)
    box = request.app[BOX]
    session = request[SESSION]
    req = _request_for(request)
    if req["status"] != "open":
        return _detail(request, req, 400, error=_("This request is closed."))
    if req["kind"] != "access_request" or not _route_exists(request, "/overdrachten/{id}"):
        return _detail(request, req, 400, error=_("Only an access request is handed over to the requester."))
    if not roles.allowed(session.role, roles.HANDOVER_PREPARE):
        return _detail(request, req, 403, error=_("Your role may not prepare a handover."))
    items = [i for i in ar.links(box, req["id"], include_unlinked=False) if i["recording"]]
    copies = [d["id"] for rows in ar.derivatives(box, [i["recording_id"] for i in items]).values() for d in rows
              if d["state"] == "stored"]
    if not copies:
        return _detail(request, req, 400, error=_("There is no redacted version to hand over yet: the requester "
                                                  "gets everyone else blurred, never the original."))
    from appliance import handover  # issue 7

    try:
        handover_id = handover.prepare(
            box, session.name, copies, receiver=f"{req['requester']} ({req['ref']})",
            basis="AVG art. 15 (inzageverzoek)", case_ref=req["ref"], purpose=req["kind"], protection="passphrase",
            client=client_of(request))
    except KluisError as exc:
        return _detail(request, req, 400, error=str(exc))
    raise web.HTTPSeeOther(f"/overdrachten/{handover_id}")


@routes.post("/verzoeken/{id}/afsluiten")
@needs(roles.REQUESTS_MANAGE)
async def close(request: web.Request) -> web.StreamResponse:
    """Close with the outcome: holds released; an objection upheld deletes its recordings ahead of their
    term unless another hold keeps them (the page then says which)."""
    _ = gettext_for(request)
    box = request.app[BOX]
    req = _request_for(request)
    form = await request.post()
    outcome = str(form.get("outcome", ""))
    decision_ref = str(form.get("decision_ref", "")).strip()[:100]
    kept = {"outcome": outcome, "decision_ref": decision_ref}
    if req["status"] != "open":
        return _detail(request, req, 400, error=_("This request is closed."))
    if outcome not in ar.KIND_OUTCOMES[req["kind"]]:
        return _detail(request, req, 400, error=_("Choose the outcome."), form=kept)
    if outcome != "withdrawn" and not decision_ref:
        return _detail(request, req, 400, error=_("Give the reference of the decision."), form=kept)
    ar.close(box, req["id"], outcome, request[SESSION].name, decision_ref or None, client=client_of(request))
    raise web.HTTPSeeOther(f"/verzoeken/{req['id']}#opnames")
