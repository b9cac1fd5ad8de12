"""/mijn-opnames: the officer's own recordings ("Mijn opnames"), where after the shift they say why they
recorded and whether they warned first, and put a recording in a retention category.

Metadata only: no footage, no thumbnail, no player. Setting a reason or a category is not a purpose to
view a recording and writes no 'view' entry (webui/annotate.py; appliance/recordings.py set_reason and
appliance/retention.py set_category write 'reason_set' and 'category_change'). Watching one's own
recording for training stays on its page (/opnames/<id>), with a purpose, through the gate.
"""

from __future__ import annotations

from aiohttp import web

from appliance import recording_reasons, roles

from .. import annotate
from ..app import BOX, LANG, SESSION, needs, render
from ..labels import reason_label
from ..posted import posted, recording_in_path

routes = web.RouteTableDef()


@routes.get("/mijn-opnames")
@needs(roles.OWN_RECORDINGS)
async def own_list(request: web.Request) -> web.StreamResponse:
    box, user, lang = request.app[BOX], request[SESSION].user, request[LANG]
    only_missing = request.query.get("zonder") == "1"
    count, rows = recording_reasons.own(box, user, only_missing=only_missing)
    missing, _rows = recording_reasons.own(box, user, only_missing=True)
    configured = recording_reasons.current(box).offered()
    return render(request, "mijn_opnames.html", rows=rows, count=count, only_missing=only_missing,
                  missing=missing, shown=recording_reasons.OWN_SHOWN,
                  reason_label=lambda code: reason_label(code, lang, configured))


def _page(request: web.Request, recording: dict, status: int = 200, error: str | None = None,
          form: dict | None = None, field_errors: dict | None = None) -> web.Response:
    return render(request, "mijn_opname.html", status=status, r=recording, a=annotate.context(request, recording),
                  error=error, form=form or {}, field_errors=field_errors or {})


@routes.get("/mijn-opnames/{id}")
@needs(roles.OWN_RECORDINGS)
async def own_detail(request: web.Request) -> web.StreamResponse:
    return _page(request, recording_in_path(request))


@routes.post("/mijn-opnames/{id}/reden")
@needs(roles.OWN_RECORDINGS)
async def own_reason(request: web.Request) -> web.StreamResponse:
    """The officer's reason and warnings; then back to the list (the recordings still without one first)."""
    p, recording = await posted(request), recording_in_path(request)
    if not roles.allowed(p.session.role, roles.RECORDINGS_ANNOTATE):
        raise web.HTTPForbidden()
    refused = annotate.save_reason(request, p, recording)
    if refused:
        return _page(request, recording, 400, error=refused.message, form=refused.form,
                     field_errors=refused.field_errors)
    raise web.HTTPSeeOther("/mijn-opnames")


@routes.post("/mijn-opnames/{id}/categorie")
@needs(roles.OWN_RECORDINGS)
async def own_category(request: web.Request) -> web.StreamResponse:
    p, recording = await posted(request), recording_in_path(request)
    if not roles.allowed(p.session.role, roles.RECORDINGS_CATEGORIZE):
        raise web.HTTPForbidden()
    refused = annotate.save_category(request, p, recording)
    if refused:
        return _page(request, recording, 400, error=refused.message, field_errors=refused.field_errors)
    raise web.HTTPSeeOther(f"/mijn-opnames/{recording['id']}#categorieen")
