"""Redaction in the web UI: start a redacted derivative from a recording's page, follow its job.

    GET  /opnames/<id>/redigeren     the form: purpose, case, keep regions, boxes at keyframe times, mutes
    POST /opnames/<id>/redigeren     starts the background job (appliance.jobs) -> /redactie/<job>
    GET  /redactie/<job>             progress (the page reloads itself while the job runs; no script needed)
    GET  /redactie/<job>.json        the same for scripts and pollers
    POST /redactie/<job>/stoppen     cancel a job this server runs (it fails as 'cancelled', stores nothing)
    GET  /opnames/<id>/redigeren/beeld?t=S&purpose=P   one frame as JPEG, to draw regions on (audited
                                     as a view with the purpose; decoded in memory, never stored)

The job runs on a worker thread with the session's unlocked key in memory; the event loop only reads the
job's row. Only roles with recordings.redact (the privacy officer) see any of it.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from appliance import footage, jobs, purposes, redaction, roles, time_offsets
from appliance.errors import KluisError, NotFound

from .. import labels
from ..app import BOX, LANG, SESSION, client_of, flash, gettext_for, needs, render
from ..posted import posted, recording_in_path

routes = web.RouteTableDef()

REDACT_PURPOSES = redaction.PURPOSES  # the request kinds, and showing footage to police or prosecutor


def _lines(text: str) -> list[str]:
    return [line.strip() for line in (text or "").replace(";", "\n").splitlines() if line.strip()][:200]


def _still_query(request: web.Request) -> tuple[float | None, str]:
    try:
        t = time_offsets.parse_seconds(request.query.get("t", "")[:20]) if request.query.get("t") else None
    except KluisError:
        t = None
    purpose = request.query.get("purpose", "")
    return t, purpose if purpose in REDACT_PURPOSES else ""


def _form_page(request: web.Request, recording: dict, status: int = 200, error: str | None = None,
               form: dict | None = None) -> web.Response:
    box = request.app[BOX]
    lang = request[LANG]
    still_t, still_purpose = _still_query(request)
    form = form or {"faces": "1", "purpose": still_purpose}
    return render(request, "redactie.html", status=status, r=recording, error=error, form=form,
                  still_t=still_t, still_purpose=still_purpose or form.get("purpose", ""),
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


@routes.get("/opnames/{id}/redigeren")
@needs(roles.RECORDINGS_REDACT)
async def redact_form(request: web.Request) -> web.StreamResponse:
    return _form_page(request, recording_in_path(request))


@routes.get("/opnames/{id}/redigeren/beeld")
@needs(roles.RECORDINGS_REDACT)
async def still(request: web.Request) -> web.StreamResponse:
    """One frame of the original as JPEG, for drawing keep regions and boxes on. Showing it is viewing
    footage: the gate commits the 'view' entry (with the purpose) before the frame is decoded."""
    _ = gettext_for(request)
    box = request.app[BOX]
    session = request[SESSION]
    recording = recording_in_path(request)
    t, purpose = _still_query(request)
    if t is None or not purpose:
        return web.Response(status=400, text=_("Choose the purpose for which the redacted copy is made."))
    try:
        source = footage.open_for_redaction(box, session.name, recording["id"], purpose, None,
                                            identity=session.identity, allowed=REDACT_PURPOSES, action="view",
                                            client=client_of(request), details={"still_at_s": t, "for": "redaction"})
    except footage.Refused:
        return web.Response(status=400, text=_("Choose the purpose for which the redacted copy is made."))
    try:
        jpeg = await asyncio.get_running_loop().run_in_executor(None, redaction.still_jpeg, source, t)
    except KluisError as exc:
        return web.Response(status=400, text=str(exc))
    return web.Response(body=jpeg, content_type="image/jpeg", headers={"Cache-Control": "no-store"})


@routes.post("/opnames/{id}/redigeren")
@needs(roles.RECORDINGS_REDACT)
async def redact_start(request: web.Request) -> web.StreamResponse:
    p, recording = await posted(request), recording_in_path(request)
    _, box, session = p.gettext, p.box, p.session
    form = {key: p.text(key) for key in ("purpose", "case_ref", "request_ref", "reason", "keep", "boxes", "mute",
                                              "faces")}
    purpose = form["purpose"]
    error = None
    plan = None
    if purpose not in REDACT_PURPOSES:
        error = _("Choose the purpose for which the redacted copy is made.")
    elif session.identity is None:
        error = _("Your account holds no key to open recordings.")
    elif recording["state"] != "stored":
        error = _("This recording has been deleted; it can no longer be viewed.")
    else:
        try:
            plan = redaction.make_plan(_lines(form["keep"]), _lines(form["boxes"]), _lines(form["mute"]),
                                       detect_faces=form["faces"] == "1")
        except KluisError as exc:
            error = labels.plan_error(_, exc)
    if error is None:
        assert plan is not None  # made above, or error is set
        try:
            job_id = redaction.start_job(box, session.identity, recording["id"], plan, actor=session.name,
                                         purpose=purpose, case_ref=p.text("case_ref", 100) or None,
                                         reason=p.text("reason", 500), client=p.client,
                                         request_ref=p.text("request_ref", 40) or None)
        except KluisError as exc:
            error = str(exc)
    if error:
        return _form_page(request, recording, 400, error=error, form=form)
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
