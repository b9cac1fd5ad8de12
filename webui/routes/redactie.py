"""Redaction in the web UI: the editor on a recording, the redaction job and its progress.

    GET  /opnames/<id>/redigeren[?verzoek=REF]  the editor; from a request's page it carries the request
    POST /opnames/<id>/redigeren/openen      name purpose and case: the gate commits a 'view' entry (with the
                                             request's reference), then the session gets a grant to scrub
                                             the video (streamed by /opnames/<id>/video/<grant>, as the player)
    GET  /opnames/<id>/redigeren/gezichten?bekijk=G&t=S   the faces in the frame at S (under that grant), JSON
    POST /opnames/<id>/redigeren/voorbeeld   a few seconds of the redaction, low resolution, through the gate
                                             (its own 'view' entry), kept in the session's memory and shown
    GET  /opnames/<id>/redigeren/voorbeeld/<p>  that preview's MP4 bytes
    POST /opnames/<id>/redigeren             starts the background job (appliance.jobs) -> /redactie/<job>
    GET  /redactie/<job>                     progress (the page reloads itself while the job runs; no script needed)
    GET  /redactie/<job>.json                the same for scripts and pollers
    POST /redactie/<job>/stoppen             cancel a job this server runs (it fails as 'cancelled', stores nothing)
    GET  /opnames/<id>/redigeren/beeld?t=S&purpose=P[&case_ref=C][&verzoek=R]   one frame as JPEG (audited as
                                             a view with purpose and case; decoded in memory, never stored)

The editor's drawing (webui/static/redactie.js) writes the same text lines as the advanced fields, so
both submit the same region spec; the server reads only those lines (appliance.redaction.make_plan).
The job runs on a worker thread with the session's unlocked key in memory; the event loop only reads the
job's row. Only roles with recordings.redact (the privacy officer) see any of it.
"""

from __future__ import annotations

import asyncio
import secrets
from urllib.parse import quote

from aiohttp import web

from appliance import access_requests, byte_ranges, footage, jobs, purposes, redaction, roles, time_offsets
from appliance.errors import KluisError, NotFound

from .. import labels
from ..app import BOX, LANG, SESSION, client_of, domain_message, error_page, flash, gettext_for, needs, render
from ..posted import posted, recording_in_path
from ..sessions import Grant

routes = web.RouteTableDef()

REDACT_PURPOSES = redaction.PURPOSES  # the request kinds, and showing footage to police or prosecutor
PLAN_FIELDS = ("keep", "boxes", "mute", "faces")
FORM_FIELDS = ("purpose", "case_ref", "request_ref", "reason", *PLAN_FIELDS, "bekijk", "t")
PREVIEWS_KEPT = 2  # per session: the newest previews stay in memory, older ones are dropped


def _lines(text: str) -> list[str]:
    return [line.strip() for line in (text or "").replace(";", "\n").splitlines() if line.strip()][:200]


def _seconds(text: str | None) -> float | None:
    try:
        return time_offsets.parse_seconds(text[:20]) if text else None
    except KluisError:
        return None


def _plan(form: dict) -> redaction.Plan:
    return redaction.make_plan(_lines(form["keep"]), _lines(form["boxes"]), _lines(form["mute"]),
                               detect_faces=form["faces"] == "1")


def _plan_field(form: dict) -> str | None:
    """Which of the advanced fields (keep, boxes, mute) holds the line _plan refused."""
    for field in ("keep", "boxes", "mute"):
        try:
            redaction.make_plan(**{field: _lines(form[field])}, detect_faces=False)
        except KluisError:
            return field
    return None


def _request_of(request: web.Request, ref: str | None) -> dict | None:
    try:
        return access_requests.get(request.app[BOX], ref) if ref else None
    except NotFound:
        return None


def _grant(request: web.Request, recording: dict, grant_id: str | None) -> Grant | None:
    """The session's grant to scrub this recording for a redaction, if `grant_id` names one."""
    grant = request[SESSION].grants.get(grant_id or "")
    if grant is None or grant.recording_id != recording["id"] or grant.purpose not in REDACT_PURPOSES:
        return None
    return grant


def _form_page(request: web.Request, recording: dict, status: int = 200, error: str | None = None,
               form: dict | None = None, preview: dict | None = None, field: str | None = None) -> web.Response:
    """`field`: the form field `error` is about; the message sits there, the top says nothing was done."""
    box = request.app[BOX]
    field_errors = {field: error} if field and error else {}
    if field_errors:
        _ = gettext_for(request)
        error = _("Nothing was started: see the marked field.")
    lang = request[LANG]
    q = request.query
    form = dict(form or {"faces": "1", "bekijk": q.get("bekijk", ""), "t": q.get("t", "")})
    req = _request_of(request, form.get("request_ref") or q.get("verzoek", "")[:40])
    grant = _grant(request, recording, form.get("bekijk"))
    if req is not None:  # from a request's page: its kind is the purpose, its reference the case
        form.setdefault("request_ref", req["ref"])
        form.setdefault("purpose", req["kind"] if req["kind"] in REDACT_PURPOSES else "")
    if grant is not None:
        form.setdefault("purpose", grant.purpose)
        form.setdefault("case_ref", grant.case_ref or "")
    return render(request, "redactie.html", status=status, r=recording, error=error, form=form, req=req,
                  field_errors=field_errors,
                  grant=grant, grant_id=form.get("bekijk") if grant else None, preview=preview,
                  preview_seconds=redaction.PREVIEW_SECONDS,
                  purposes=[(c, purposes.label(c, lang)) for c in REDACT_PURPOSES],
                  purpose_label=lambda c: purposes.label(c, lang),
                  derivatives=redaction.derivatives_of(box.catalog, recording["id"]),
                  jobs=jobs.list_jobs(box.catalog, kind="redact", recording_id=recording["id"], limit=10),
                  original=_original(box, recording))


def _original(box, recording: dict) -> dict | None:
    if not recording.get("derived_from"):
        return None
    try:
        return box.catalog.get_recording(recording["derived_from"])
    except NotFound:
        return {"id": recording["derived_from"], "deleted": True}


def _refusal(request: web.Request, exc: Exception) -> str:
    """Why the editor could not open the recording, in the user's words."""
    _ = gettext_for(request)
    if isinstance(exc, footage.Refused):
        return {
            footage.UNKNOWN_PURPOSE: _("Choose the purpose for which the redacted copy is made."),
            footage.NO_KEY: _("Your account holds no key to open recordings."),
            footage.DELETED: _("This recording has been deleted; it can no longer be viewed."),
        }.get(exc.why, _("Your role may not make redacted copies of this recording."))
    if str(exc).startswith("no request"):
        return _("That request is not in the register.")
    return domain_message(request, exc)


@routes.get("/opnames/{id}/redigeren")
@needs(roles.RECORDINGS_REDACT)
async def redact_form(request: web.Request) -> web.StreamResponse:
    return _form_page(request, recording_in_path(request))


@routes.post("/opnames/{id}/redigeren/openen")
@needs(roles.RECORDINGS_REDACT)
async def open_editor(request: web.Request) -> web.StreamResponse:
    """Name purpose and case; the gate commits the 'view' entry (with the request's reference) before the
    editor may stream a byte. The grant is the player's (/opnames/<id>/video/<grant>)."""
    p, recording = await posted(request), recording_in_path(request)
    form = {"faces": "1", **p.fields(("purpose", "case_ref", "request_ref"), 100)}
    try:
        case = redaction.case_for(p.box, recording["id"], form["case_ref"] or None, form["request_ref"] or None)
        opened = redaction.open_for_editor(p.box, p.session.name, recording["id"], form["purpose"], case,
                                           form["request_ref"] or None, identity=p.session.identity,
                                           client=p.client)
    except KluisError as exc:  # footage.Refused too
        field = "open_purpose" if getattr(exc, "why", None) == footage.UNKNOWN_PURPOSE else None
        return _form_page(request, recording, 400, error=_refusal(request, exc), form=form, field=field)
    grant_id = secrets.token_urlsafe(16)
    p.session.grants[grant_id] = Grant(recording["id"], form["purpose"], case, opened.audit_seq, opened)
    verzoek = f"&verzoek={quote(form['request_ref'])}" if form["request_ref"] else ""
    raise web.HTTPSeeOther(f"/opnames/{recording['id']}/redigeren?bekijk={grant_id}{verzoek}#editor")


@routes.get("/opnames/{id}/redigeren/gezichten")
@needs(roles.RECORDINGS_REDACT)
async def faces(request: web.Request) -> web.StreamResponse:
    """The faces the job's detector finds in the frame at t, read under the editor's grant (its view is
    in the audit log already), with the keep region the editor proposes for each."""
    recording = recording_in_path(request)
    grant = _grant(request, recording, request.query.get("bekijk"))
    t = _seconds(request.query.get("t"))
    if grant is None or t is None:
        return web.json_response({"error": "open the recording in the editor first"}, status=403)
    try:
        settings = request.app[BOX].settings.redaction  # the detector the job will use (loaded off the loop)
        found = await asyncio.get_running_loop().run_in_executor(
            None, lambda: redaction.faces_at(grant.footage, t, redaction.make_detector(settings)))
    except KluisError as exc:
        return web.json_response({"error": str(exc)}, status=400)
    return web.json_response({"t": found.t, "width": found.width, "height": found.height, "faces": [
        {"rect": [f.x, f.y, f.w, f.h], "keep": [k.x, k.y, k.w, k.h]} for f, k in zip(found.faces, found.keep)]},
        headers={"Cache-Control": "no-store"})


@routes.post("/opnames/{id}/redigeren/voorbeeld")
@needs(roles.RECORDINGS_REDACT)
async def make_preview(request: web.Request) -> web.StreamResponse:
    """A few seconds of the redaction from the moment shown, low resolution: read through the gate (its
    own 'view' entry, with the request's reference and the plan), made in memory, kept in the session."""
    p, recording = await posted(request), recording_in_path(request)
    form = p.fields(FORM_FIELDS)  # over-long input is refused (TooLong), never cut
    start = _seconds(form["t"]) or 0.0
    try:
        plan = _plan(form)
    except KluisError as exc:
        return _form_page(request, recording, 400, error=labels.plan_error(p.gettext, exc), form=form,
                          field=_plan_field(form))
    if form["purpose"] not in REDACT_PURPOSES:
        return _form_page(request, recording, 400, form=form, field="purpose",
                          error=p.gettext("Choose the purpose for which the redacted copy is made."))
    try:
        opened = redaction.open_for_editor(
            p.box, p.session.name, recording["id"], form["purpose"], p.text("case_ref", 100) or None,
            p.text("request_ref", 40) or None, identity=p.session.identity, client=p.client,
            details={"preview_from_s": start, "plan": plan.as_log()})
        settings = p.box.settings.redaction  # the job's detector, loaded off the event loop
        made = await asyncio.get_running_loop().run_in_executor(None, lambda: redaction.preview(
            opened, plan, start, detector=redaction.make_detector(settings) if plan.detect_faces else None))
    except KluisError as exc:  # footage.Refused too
        return _form_page(request, recording, 400, error=_refusal(request, exc), form=form)
    previews = p.session.previews
    while len(previews) >= PREVIEWS_KEPT:
        previews.pop(next(iter(previews)))
    preview_id = secrets.token_urlsafe(12)
    previews[preview_id] = (recording["id"], made.mp4)
    shown = {"id": preview_id, "start": made.start, "seconds": made.seconds, "width": made.width,
             "height": made.height, "counts": made.counts}
    return _form_page(request, recording, form=form, preview=shown)


@routes.get("/opnames/{id}/redigeren/voorbeeld/{preview}")
@needs(roles.RECORDINGS_REDACT)
async def preview_bytes(request: web.Request) -> web.StreamResponse:
    _ = gettext_for(request)
    recording = recording_in_path(request)
    kept = request[SESSION].previews.get(request.match_info["preview"])
    data = kept[1] if kept and kept[0] == recording["id"] else None  # a preview only under its own recording
    if data is None:
        return error_page(request, 404, _("This preview is no longer kept; make it again."))
    try:
        start, stop = byte_ranges.parse(request.headers.get("Range"), len(data))
    except byte_ranges.Unsatisfiable:
        return web.Response(status=416, headers={"Content-Range": f"bytes */{len(data)}"})
    headers = {"Accept-Ranges": "bytes", "Cache-Control": "no-store"}
    if "Range" in request.headers:
        headers["Content-Range"] = byte_ranges.content_range(start, stop, len(data))
    return web.Response(status=206 if "Range" in request.headers else 200, body=data[start:stop],
                        content_type="video/mp4", headers=headers)


@routes.get("/opnames/{id}/redigeren/beeld")
@needs(roles.RECORDINGS_REDACT)
async def still(request: web.Request) -> web.StreamResponse:
    """One frame of the original as JPEG. Showing it is viewing footage: the gate commits the 'view' entry
    (with the purpose and the redaction's case) before the frame is decoded."""
    _ = gettext_for(request)
    session = request[SESSION]
    recording = recording_in_path(request)
    q = request.query
    t, purpose = _seconds(q.get("t")), q.get("purpose", "")
    if t is None or purpose not in REDACT_PURPOSES:
        return web.Response(status=400, text=_("Choose the purpose for which the redacted copy is made."))
    try:
        source = redaction.open_for_editor(request.app[BOX], session.name, recording["id"], purpose,
                                           q.get("case_ref", "")[:100] or None, q.get("verzoek", "")[:40] or None,
                                           identity=session.identity, client=client_of(request),
                                           details={"still_at_s": t})
        jpeg = await asyncio.get_running_loop().run_in_executor(None, redaction.still_jpeg, source, t)
    except KluisError as exc:
        return web.Response(status=400, text=_refusal(request, exc))
    return web.Response(body=jpeg, content_type="image/jpeg", headers={"Cache-Control": "no-store"})


@routes.post("/opnames/{id}/redigeren")
@needs(roles.RECORDINGS_REDACT)
async def redact_start(request: web.Request) -> web.StreamResponse:
    p, recording = await posted(request), recording_in_path(request)
    _, box, session = p.gettext, p.box, p.session
    form = p.fields(FORM_FIELDS)  # over-long input is refused (TooLong), never cut
    purpose = form["purpose"]
    error = None
    field = None  # the field the error is about, if one
    plan = None
    if purpose not in REDACT_PURPOSES:
        error, field = _("Choose the purpose for which the redacted copy is made."), "purpose"
    elif session.identity is None:
        error = _("Your account holds no key to open recordings.")
    elif recording["state"] != "stored":
        error = _("This recording has been deleted; it can no longer be viewed.")
    else:
        try:
            plan = _plan(form)
        except KluisError as exc:
            error, field = labels.plan_error(_, exc), _plan_field(form)
    if error is None:
        assert plan is not None  # made above, or error is set
        try:
            job_id = redaction.start_job(box, session.identity, recording["id"], plan, actor=session.name,
                                         purpose=purpose, case_ref=p.text("case_ref", 100) or None,
                                         reason=p.text("reason", 500), client=p.client,
                                         request_ref=p.text("request_ref", 40) or None)
        except KluisError as exc:
            error = _refusal(request, exc)
            field = "request_ref" if str(exc).startswith("no request") else None
    if error:
        return _form_page(request, recording, 400, error=error, form=form, field=field)
    flash(request, _("Redaction started; this page shows its progress."))
    raise web.HTTPSeeOther(f"/redactie/{job_id}")


def _job_for(request: web.Request) -> dict:
    box = request.app[BOX]
    job = jobs.get(box.catalog, request.match_info["job"])
    if job["kind"] != "redact":
        raise NotFound("not a redaction")
    if job.get("recording_id"):
        roles.recording_for(box.catalog, request[SESSION].user, job["recording_id"])
    return job


@routes.get(r"/redactie/{job:[0-9a-f]{16}}.json")
@needs(roles.RECORDINGS_REDACT)
async def job_json(request: web.Request) -> web.StreamResponse:
    return web.json_response(jobs.as_public(_job_for(request)), headers={"Cache-Control": "no-store"})


@routes.get(r"/redactie/{job:[0-9a-f]{16}}")
@needs(roles.RECORDINGS_REDACT)
async def job_page(request: web.Request) -> web.StreamResponse:
    job = _job_for(request)
    lang = request[LANG]
    running = job["state"] in (jobs.QUEUED, jobs.RUNNING)
    response = render(request, "redactie_voortgang.html", job=job, running=running,
                      percent=round(100 * job["fraction"]), purpose_label=lambda c: purposes.label(c, lang))
    if running:
        response.headers["Refresh"] = "2"  # the page polls by reloading: no script needed
    return response


@routes.post(r"/redactie/{job:[0-9a-f]{16}}/stoppen")
@needs(roles.RECORDINGS_REDACT)
async def job_cancel(request: web.Request) -> web.StreamResponse:
    job = _job_for(request)
    if job["state"] in (jobs.QUEUED, jobs.RUNNING):
        jobs.runner_for(request.app[BOX]).cancel(job["id"])  # a job of another process (the CLI) is not ours
        _ = gettext_for(request)
        flash(request, _("Redaction is being stopped."))
    raise web.HTTPSeeOther(f"/redactie/{job['id']}")
