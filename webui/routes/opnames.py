"""/opnames (the recordings table), /opnames/<id> (one recording) and viewing with a purpose.

Viewing is two steps: POST /opnames/<id>/bekijken names the purpose and the gate (appliance.footage)
commits the 'view' audit entry; only then does the session get a grant holding the gate's reader, and GET /opnames/<id>/video/<grant> streams decrypted bytes
(HTTP Range, reading only the chunks that cover the range). No grant, no byte.

A recording from an Axis system is catalogued one recording per clip; its page shows what the
W800 sent with it (trigger reasons, locations, GNSS track, bookmarks) and its other parts. Watching the
parts one after another reuses the same two steps: the "next part" form names the same purpose and case
reference again, so every part gets its own 'view' entry and grant before a byte of it is streamed.
"""

from __future__ import annotations

import asyncio
import secrets
from datetime import timedelta
from urllib.parse import urlencode

from aiohttp import web

from appliance import (byte_ranges, cases, footage, outbox, purposes, redaction, retention, roles,
                       timeline)
from appliance.axis import overview as axis_overview
from appliance.axis.spec import parse_rfc3339
from appliance.clock import from_iso, to_iso
from appliance.errors import KluisError

from .. import annotate, labels
from ..labels import reason_label
from ..app import BOX, LANG, SESSION, error_page, flash, formats_for, gettext_for, needs, render
from ..formats import parse_moment
from ..posted import posted, recording_in_path
from appliance import recording_reasons
from appliance.recording_search import HELD, NO_REASON, SORTS, Filters, choices, search
from ..sessions import Grant

routes = web.RouteTableDef()


def purpose_options(role: str, lang: str) -> list[tuple[str, str]]:
    return [(code, purposes.label(code, lang)) for code in purposes.PURPOSES if roles.may_view_purpose(role, code)]


def _filters(request: web.Request) -> Filters:
    q = request.query
    _ = gettext_for(request)
    tz = request.app[BOX].settings.box.timezone
    too_long = []

    def value(key: str, limit: int) -> str:
        """A filter's text, never cut (a cut value would find another camera or officer): an over-long one
        is searched as it is, so it finds nothing, and the page says why."""
        text = q.get(key, "").strip()
        if len(text) > limit:
            too_long.append(_("A filter value is longer than %(limit)d characters: no recording matches it.")
                            % {"limit": limit})
        return text

    f = Filters(camera=value("camera", 100), officer=value("officer", 100), team=value("team", 100),
                purpose=value("purpose", 40), state=value("state", 40), reason=value("reason", 40))
    f.errors.extend(dict.fromkeys(too_long))
    for attr, key in (("start", "from"), ("end", "to")):
        text = value(key, 40)
        if text:
            try:
                setattr(f, attr, parse_moment(text, tz))
            except KluisError:
                f.errors.append(_("Not a date and time: %(value)s (for example 20-11-2026 14:30)") % {"value": text})
    f.sort = q.get("sort", "start") if q.get("sort") in SORTS else "start"
    f.descending = q.get("dir", "desc") != "asc"
    try:
        f.page = max(1, int(q.get("page", "1")))
    except ValueError:
        f.page = 1
    return f


def _query_with(request: web.Request, **changes) -> str:
    """The current filters with some changed: for sort links and paging."""
    params = {k: v for k, v in request.query.items() if v}
    params.update({k: str(v) for k, v in changes.items()})
    return "?" + urlencode(params)


@routes.get("/opnames")
@needs(roles.RECORDINGS_LIST)
async def recordings_list(request: web.Request) -> web.StreamResponse:
    box = request.app[BOX]
    session = request[SESSION]
    f = _filters(request)
    page = search(box.catalog, session.user, f)
    lang = request[LANG]
    configured = recording_reasons.current(box).offered()
    return render(request, "opnames.html", page=page, filters=f, query=request.query, choices=choices(box.catalog, session.user),
                  purposes=[(c, purposes.label(c, lang)) for c in purposes.PURPOSES], held=HELD,
                  reasons=[(c, reason_label(c, lang, configured)) for c in configured], no_reason=NO_REASON,
                  query_with=lambda **kw: _query_with(request, **kw),
                  reason_label=lambda c: reason_label(c, lang, configured),
                  purpose_label=lambda c: purposes.label(c, lang))


def _decimal(value: float, lang: str, places: int = 6, fixed: bool = False) -> str:
    """A coordinate with `places` decimals (`fixed`: all of them, for a column; else at least 4), with a
    decimal comma in Dutch."""
    whole, _dot, fraction = f"{value:.{places}f}".partition(".")
    if not fixed:
        fraction = fraction.rstrip("0").ljust(4, "0")
    return f"{whole}{',' if lang == 'nl' else '.'}{fraction}"


def _coordinates(point, lang: str) -> str:
    lat, lon = point
    return f"{_decimal(lat, lang)}; {_decimal(lon, lang)}" if lang == "nl" else \
        f"{_decimal(lat, lang)}, {_decimal(lon, lang)}"


def map_link(template: str, point) -> str | None:
    """The [web] map_url template with the point filled in ({lat}, {lon}; '' = no link). Only http(s):
    the page links it, and a configured javascript: address must not become a link."""
    if not point or not template or not template.startswith(("https://", "http://")):
        return None
    lat, lon = point
    return template.replace("{lat}", f"{lat:.6f}").replace("{lon}", f"{lon:.6f}")


def _iso_or_none(text) -> str | None:
    """A time the W800 sent (RFC 3339 text, not trusted) as the catalog's ISO form, or None."""
    moment = parse_rfc3339(text) if isinstance(text, str) else None
    return to_iso(moment) if moment else None


def axis_view(box, recording: dict, lang: str) -> dict | None:
    """What the recording page shows of an Axis recording: appliance.axis.overview.recording_details,
    with times made safe to show, coordinates and map links, the parts around this one, and where the
    bookmarks fall on this part's timeline."""
    if recording.get("source") != "axis":
        return None
    details = axis_overview.recording_details(box, recording["id"])
    if details is None:
        return None
    map_url = box.settings.web.map_url
    view = dict(details)
    for key in ("trigger_on_time", "trigger_off_time"):
        view[key] = _iso_or_none(details.get(key))
    for key in ("location", "location_off"):
        point = details.get(key)
        view[key] = {"text": _coordinates(point, lang), "map": map_link(map_url, point),
                     "lat": point[0], "lon": point[1]} if point else None
    parts = details["parts"]
    index = next((i for i, part in enumerate(parts) if part["id"] == recording["id"]), 0)
    view["index"], view["count"] = index + 1, len(parts)
    view["next"] = parts[index + 1] if index + 1 < len(parts) else None
    start = from_iso(recording["start_time"])
    end = from_iso(recording["end_time"]) if recording.get("end_time") else start
    view["duration"] = max((end - start).total_seconds(), 0.0)
    bookmarks = []
    for bookmark in details["bookmarks"]:
        moment = parse_rfc3339(bookmark.get("start"))
        item = dict(bookmark, time=to_iso(moment) if moment else None, offset=None, part=None)
        if moment is not None:
            for number, part in enumerate(parts, start=1):
                if from_iso(part["start_time"]) <= moment <= from_iso(part["end_time"]):
                    item["part"] = {"number": number, "id": part["id"]}
                    break
            offset = (moment - start).total_seconds()
            if 0 <= offset <= view["duration"]:
                item["offset"] = round(offset, 3)
        bookmarks.append(item)
    view["bookmarks"] = bookmarks
    first = from_iso(parts[0]["start_time"]) if parts else start
    track = []
    for point in details["track"]:
        moment = parse_rfc3339(point.get("time"))
        if moment is None and isinstance(point.get("seconds"), (int, float)):
            moment = first + timedelta(seconds=point["seconds"])
        track.append({"time": to_iso(moment) if moment else None,
                      "lat": _decimal(point["lat"], lang, fixed=True), "lon": _decimal(point["lon"], lang, fixed=True),
                      "map": map_link(map_url, (point["lat"], point["lon"]))})
    view["track"] = track
    return view


TRACK_OPEN_MAX = 10  # a longer GNSS track is shown folded (a details element)


def _player(request: web.Request, recording: dict, fps: float | None) -> dict:
    """What the opened player shows besides the video: the clock, bookmarks and earlier views
    (appliance.timeline, which decides whose views this user may see)."""
    box, user = request.app[BOX], request[SESSION].user
    return {"start": recording["start_time"], "duration": timeline.duration_s(recording), "fps": fps,
            "tz": box.settings.box.timezone, "offset": recording.get("clock_offset_s"),
            "bookmarks": timeline.bookmarks(box, recording), "views": timeline.views(box, user, recording),
            "others": timeline.may_see_others(user)}


def _detail(request: web.Request, recording: dict, status: int = 200, error: str | None = None,
            grant: str | None = None, form: dict | None = None, autoplay: bool = False,
            fps: float | None = None, field_errors: dict[str, str] | None = None) -> web.Response:
    box = request.app[BOX]
    session = request[SESSION]
    lang = request[LANG]
    trail = timeline.trail(box, session.user, recording["id"])
    holds = retention.list_holds(box.catalog, recording["id"], include_released=True)
    a = annotate.context(request, recording)
    viewable = footage.viewable(box, recording["id"])  # deleted: the key is gone
    return render(request, "opname.html", status=status, r=recording, trail=trail,
                  trail_all=timeline.may_see_others(session.user), holds=holds, error=error,
                  archive=outbox.sync_of(box, recording["id"]), archive_states=labels.SYNC_STATES, grant=grant,
                  form=form or {}, viewable=viewable, deletion=a["deletion"], a=a, field_errors=field_errors or {},
                  purpose_options=purpose_options(session.role, lang),
                  all_purposes=[(c, purposes.label(c, lang)) for c in purposes.PURPOSES],
                  purpose_label=lambda c: purposes.label(c, lang),
                  derivatives=redaction.derivatives_of(box.catalog, recording["id"]),
                  axis=axis_view(box, recording, lang), track_open_max=TRACK_OPEN_MAX,
                  grant_info=session.grants.get(grant) if grant else None, autoplay=autoplay,
                  player=_player(request, recording, fps) if grant else None)


@routes.get("/opnames/{id}")
@needs(roles.RECORDINGS_LIST)
async def recording_detail(request: web.Request) -> web.StreamResponse:
    recording = recording_in_path(request)
    grant = request.query.get("bekijk")
    opened = request[SESSION].grants.get(grant) if grant else None
    if opened is None or opened.recording_id != recording["id"]:
        grant, opened = None, None
    # the frame step's length, read from the file through the grant's reader (its view is on record)
    fps = await asyncio.get_running_loop().run_in_executor(None, timeline.frame_rate, opened.footage) \
        if opened else None
    # vervolg=1: the viewer asked to watch the following parts too; this part plays at once
    return _detail(request, recording, grant=grant, autoplay=bool(grant) and request.query.get("vervolg") == "1",
                   fps=fps)


# Which field of the view and export forms a refusal of the gate is about.
REFUSED_FIELD = {footage.UNKNOWN_PURPOSE: "purpose", footage.ROLE_PURPOSE: "purpose", footage.CASE_REF: "case_ref"}


def _refusal(request: web.Request, refused: footage.Refused, no_purpose: str) -> str:
    """The gate's refusal in the user's words."""
    _ = gettext_for(request)
    return {
        footage.UNKNOWN_PURPOSE: no_purpose,
        footage.ROLE: _("Your role may not view recordings for this purpose."),
        footage.ROLE_PURPOSE: _("Your role may not view recordings for this purpose."),
        footage.CASE_REF: _("Give the case reference (for example the number of the police report or complaint)."),
        footage.NO_KEY: _("Your account holds no key to open recordings."),
        footage.DELETED: _("This recording has been deleted; it can no longer be viewed."),
    }.get(refused.why, str(refused))


@routes.post("/opnames/{id}/bekijken")
@needs(roles.RECORDINGS_VIEW)
async def view(request: web.Request) -> web.StreamResponse:
    """Name the purpose; the gate commits the audit entry before any byte can be streamed."""
    p, recording = await posted(request), recording_in_path(request)
    session = p.session
    purpose, case_ref = p.raw("purpose"), p.text("case_ref", 100)
    go_on = p.raw("vervolg") == "1"  # a multi-part Axis recording: play the following parts as well
    try:
        opened = footage.open_for_viewing(p.box, session.user, recording["id"], purpose, case_ref,
                                          identity=session.identity, client=p.client)
    except footage.Refused as refused:
        error = _refusal(request, refused, p.gettext("Choose the purpose for which you view this recording."))
        field = REFUSED_FIELD.get(refused.why)  # the purpose or the case reference: said at that field
        return _detail(request, recording, 400, error=error,
                       form={"purpose": purpose, "case_ref": case_ref, "vervolg": go_on},
                       field_errors={field: error} if field else None)
    grant_id = secrets.token_urlsafe(16)
    session.grants[grant_id] = Grant(recording["id"], purpose, case_ref or None, opened.audit_seq, opened)
    raise web.HTTPSeeOther(f"/opnames/{recording['id']}?bekijk={grant_id}{'&vervolg=1' if go_on else ''}#speler")


@routes.get("/opnames/{id}/video/{grant}")
@needs(roles.RECORDINGS_VIEW)
async def video(request: web.Request) -> web.StreamResponse:
    _ = gettext_for(request)
    session = request[SESSION]
    grant = session.grants.get(request.match_info["grant"])
    if grant is None or grant.recording_id != request.match_info["id"] or session.identity is None:
        return error_page(request, 403, _("Name the purpose on the recording's page first."))
    size = grant.footage.size
    partial = "Range" in request.headers
    try:
        start, stop = byte_ranges.parse(request.headers.get("Range"), size)
    except byte_ranges.Unsatisfiable:
        return web.Response(status=416, headers={"Content-Range": f"bytes */{size}"})
    response = web.StreamResponse(status=206 if partial else 200, headers={
        "Content-Type": "video/mp4", "Accept-Ranges": "bytes", "Cache-Control": "no-store",
        "Content-Length": str(stop - start),
    })
    if partial:
        response.headers["Content-Range"] = byte_ranges.content_range(start, stop, size)
    return await _stream(request, response, grant.footage, start, stop)


@routes.post("/opnames/{id}/video/{grant}/afgespeeld")
@needs(roles.RECORDINGS_VIEW)
async def played(request: web.Request) -> web.StreamResponse:
    """The player reports the stretches it played under this grant (appliance.timeline.record_played):
    where in the recording the viewer looked, for the timeline's view markers. No bytes either way."""
    p = await posted(request)
    grant = p.session.grants.get(request.match_info["grant"])
    if grant is None or grant.recording_id != request.match_info["id"]:
        return web.Response(status=403)
    timeline.record_played(p.box, p.session.name, grant.footage.recording, grant.audit_seq, grant.purpose,
                           grant.case_ref, p.raw("ranges"), client=p.client)
    return web.Response(status=204)


async def _stream(request: web.Request, response: web.StreamResponse, opened: footage.Footage,
                  start: int, stop: int) -> web.StreamResponse:
    """Decrypt bytes [start, stop) into the response, reading only the chunks that cover them; the file
    reads and decryption run off the event loop."""
    await response.prepare(request)
    if request.method == "HEAD":
        return response
    loop = asyncio.get_running_loop()
    chunks = opened.read_range(start, stop)
    try:
        while (data := await loop.run_in_executor(None, next, chunks, None)) is not None:
            await response.write(data)
    except (ConnectionResetError, asyncio.CancelledError):
        raise  # the browser moved on (it seeks by dropping one request and starting another)
    finally:
        chunks.close()  # closes the stored file
    await response.write_eof()
    return response


@routes.post("/opnames/{id}/exporteren")
@needs(roles.RECORDINGS_EXPORT)
async def export(request: web.Request) -> web.StreamResponse:
    """Download the decrypted recording (for an access request, the prosecutor, a complaint): the purpose
    and case reference are required and the gate commits the 'export' entry before the first byte."""
    p, recording = await posted(request), recording_in_path(request)
    purpose, case_ref = p.raw("purpose"), p.text("case_ref", 100)
    try:
        opened = footage.open_for_viewing(p.box, p.session.user, recording["id"], purpose, case_ref,
                                          identity=p.session.identity, export=True, client=p.client,
                                          details={"size": recording["size"]})
    except footage.Refused as refused:
        error = _refusal(request, refused, p.gettext("Choose the purpose for which you export this recording."))
        field = REFUSED_FIELD.get(refused.why)
        return _detail(request, recording, 400, error=error,
                       form={"export_purpose": purpose, "export_case_ref": case_ref},
                       field_errors={f"export_{field}": error} if field else None)
    recording = opened.recording
    stamp = recording["start_time"][:19].replace(":", "").replace("-", "")
    camera = "".join(ch for ch in recording["camera_serial"] if ch.isalnum())[:32] or "camera"
    response = web.StreamResponse(headers={
        "Content-Type": "video/mp4", "Cache-Control": "no-store", "Content-Length": str(recording["size"]),
        "Content-Disposition": f'attachment; filename="kluis-{camera}-{stamp}-{recording["id"]}.mp4"',
    })
    return await _stream(request, response, opened, 0, recording["size"])


@routes.post("/opnames/{id}/reden")
@needs(roles.RECORDINGS_ANNOTATE)
async def set_reason(request: web.Request) -> web.StreamResponse:
    """Why the officer started recording and the warnings given (set after the shift; shows no footage)."""
    p, recording = await posted(request), recording_in_path(request)
    refused = annotate.save_reason(request, p, recording)
    if refused:
        return _detail(request, recording, 400, error=refused.message, form=refused.form,
                       field_errors=refused.field_errors)
    raise web.HTTPSeeOther(f"/opnames/{recording['id']}#reden")


@routes.post("/opnames/{id}/categorie")
@needs(roles.RECORDINGS_CATEGORIZE)
async def set_category(request: web.Request) -> web.StreamResponse:
    """Put the recording in a retention category, or take it out of one (the longest term counts)."""
    p, recording = await posted(request), recording_in_path(request)
    refused = annotate.save_category(request, p, recording)
    if refused:
        return _detail(request, recording, 400, error=refused.message, field_errors=refused.field_errors)
    raise web.HTTPSeeOther(f"/opnames/{recording['id']}#categorieen")


@routes.post("/opnames/{id}/bewaren")
@needs(roles.HOLDS_MANAGE)
async def add_hold(request: web.Request) -> web.StreamResponse:
    """Place a hold: the recording is kept past its term for a purpose and a case."""
    p, recording = await posted(request), recording_in_path(request)
    _, box = p.gettext, p.box
    purpose, case_ref, until_text = p.raw("purpose"), p.text("case_ref", 100), p.text("until", 40)
    kept = {"hold_purpose": purpose, "hold_case_ref": case_ref, "hold_until": until_text}
    errors: dict[str, str] = {}  # field id -> what is wrong with it, shown at the field
    until = None
    if purpose not in purposes.PURPOSES:
        errors["hold_purpose"] = _("Choose the purpose for which the recording is kept.")
    if not case_ref:
        errors["hold_case_ref"] = _("A hold needs a case reference.")
    elif purpose in purposes.PURPOSES and (same := retention.same_hold(box.catalog, recording["id"], purpose, case_ref)):
        # a second identical hold keeps nothing longer and doubles the reviews: flagged, not placed
        errors["hold_case_ref"] = _("This recording already has an active hold for this purpose and case reference "
                                    "(placed %(time)s by %(who)s).") % {"time": formats_for(request).moment(same["placed_at"]),
                                                                         "who": same["placed_by"]}
    if case_ref and (case := cases.find(box, case_ref)) is not None and not cases.is_open(case):
        errors["hold_case_ref"] = _("Case %(case)s is closed: reopen it on its page first.") % {
            "case": case["reference"]}
    if until_text:
        try:
            until = parse_moment(until_text, box.settings.box.timezone)
        except KluisError:
            errors["hold_until"] = _("Not a date and time: %(value)s (for example 20-11-2026 14:30)") % {"value": until_text}
        else:
            if until <= box.clock():
                errors["hold_until"] = _("The end date of the hold has passed.")
    if errors:
        return _detail(request, recording, 400, error=_("The hold was not placed: see the marked fields."), form=kept,
                       field_errors=errors)
    retention.add_hold(box, recording["id"], purpose, case_ref, p.session.name, until=until, client=p.client)
    flash(request, _("Hold placed for case %(case)s.") % {"case": case_ref})
    raise web.HTTPSeeOther(f"/opnames/{recording['id']}#bewaringen")


@routes.post("/opnames/{id}/vrijgeven")
@needs(roles.HOLDS_MANAGE)
async def release_hold(request: web.Request) -> web.StreamResponse:
    """Release a hold, with a reason; the normal term applies again (never less than the grace period)."""
    p, recording = await posted(request), recording_in_path(request)
    reason = p.text("reason", 500)
    try:
        hold_id = int(p.raw("hold"))
    except ValueError:
        hold_id = None
    if hold_id is None or not reason:
        said = p.gettext("Give the reason for releasing the hold.")
        return _detail(request, recording, 400, error=said,
                       field_errors={f"release-{hold_id}": said} if hold_id is not None else None)
    retention.release_hold(p.box, recording["id"], reason, p.session.name, hold_id=hold_id, client=p.client)
    flash(request, p.gettext("Hold released; the normal retention term applies again."))
    raise web.HTTPSeeOther(f"/opnames/{recording['id']}#bewaringen")
