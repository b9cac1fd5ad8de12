"""/overdrachten: handovers of footage to police and prosecutor (the register, prepare, approve, download,
the printed transfer form).

The domain is appliance.handover (register, four eyes, holds, audit) and appliance.package (the signed,
age-encrypted ZIP); these pages only collect what they need and show what they return.

Approval asks the approver's password again (a handover produces footage for outside the municipality:
the session alone is not enough). The package is built on a worker thread and waits for its download in
the app's Downloads (appliance.handover_downloads): the handover's page offers it to its approver for that
hour, each download on record. The page that answers the approval shows the passphrase once; it is stored
nowhere. The transfer form (appliance.handover_form) can be printed from the handover's page at any time,
without footage, for signing at the counter.
"""

from __future__ import annotations

import asyncio
import io
import re

from aiohttp import web

from appliance import clip_window, handover, handover_form, purposes, roles, users
from appliance.errors import KluisError, NotFound, WrongSecret
from appliance.handover_downloads import approve_on_own_connection
from appliance.transfer_form import basis_text, render_transfer_form

from .. import labels
from ..app import (BOX, DOWNLOADS, LANG, SESSION, check_password, client_of, csv_response, flash, gettext_for, needs,
                   render)
from ..i18n import N_
from ..posted import posted

routes = web.RouteTableDef()

# The permissions of appliance.roles (the same table the CLI checks).
PREPARE = roles.HANDOVER_PREPARE
APPROVE = roles.HANDOVER_APPROVE
READ = roles.HANDOVER_READ

STATE_LABELS = labels.HANDOVER_STATES
PROTECTION_LABELS = {
    "age-recipient": N_("encrypted to the receiver's age key"),
    "passphrase": N_("encrypted with a passphrase (shown once at approval)"),
    "none": N_("not encrypted"),
}
BASIS_KINDS = ("vordering", "vrijwillig")
MAX_RECORDINGS = 50


def _labels(request: web.Request) -> dict:
    lang = request[LANG]
    _ = gettext_for(request)
    people = users.people(request.app[BOX])
    return dict(
        person=lambda login: users.person_label(people.get(login), login) if login else "",
        state_name=lambda s: _(STATE_LABELS[s]) if s in STATE_LABELS else s,
        protection_name=lambda p: _(PROTECTION_LABELS[p]) if p in PROTECTION_LABELS else p,
        purpose_label=lambda c: purposes.label(c, lang),
        basis_label=basis_text,
        fmt_seconds=_fmt_seconds,
    )


def _fmt_seconds(value) -> str:
    if value is None:
        return ""
    value = float(value)
    minutes, seconds = divmod(value, 60)
    text = f"{int(minutes)}:{seconds:04.1f}" if minutes else f"{seconds:.1f}"
    return text.replace(".0", "") if text.endswith(".0") else text


def _recordings_in_scope(request: web.Request, ids: list[str]) -> tuple[list[dict], list[str]]:
    """The recordings the user may hand over, and the ids that are not (unknown, out of scope, deleted):
    out of scope is told as unknown, as on the recordings pages."""
    box = request.app[BOX]
    user = request[SESSION].user
    found, unknown = [], []
    for recording_id in ids:
        try:
            recording = box.catalog.get_recording(recording_id)
        except NotFound:
            unknown.append(recording_id)
            continue
        if not roles.recording_in_scope(box.catalog, user, recording) or recording["state"] != "stored":
            unknown.append(recording_id)
            continue
        found.append({**recording, "duration_s": clip_window.duration_s(recording)})
    return found, unknown


def _ids_from(text: str) -> list[str]:
    return list(dict.fromkeys(t for t in re.split(r"[\s,;]+", text) if t))[:MAX_RECORDINGS + 1]


# The register ---------------------------------------------------------------------------------------

def _visible(request: web.Request, h: dict) -> bool:
    return handover.visible_to(request.app[BOX], request[SESSION].user, h)


@routes.get("/overdrachten")
@needs(READ)
async def register(request: web.Request) -> web.StreamResponse:
    box = request.app[BOX]
    user = request[SESSION].user
    state = request.query.get("state", "")
    rows = handover.visible_handovers(box, user, state=state if state in handover.STATES else None)
    return render(request, "overdrachten.html", rows=rows, state=state, states=handover.STATES,
                  waiting=handover.awaiting_approval(box, user), **_labels(request))


@routes.get("/overdrachten.csv")
@needs(READ)
async def register_csv(request: web.Request) -> web.StreamResponse:
    box = request.app[BOX]
    visible = {h["id"] for h in handover.visible_handovers(box, request[SESSION].user)}
    out = io.StringIO(newline="")
    handover.register_csv(box, out, actor=request[SESSION].name, client=client_of(request), only=visible,
                          lang=request[LANG])
    stamp = box.clock().strftime("%Y%m%d")
    return csv_response(out.getvalue().encode("utf-8"), f"overdrachtsregister-{stamp}.csv")


# Prepare --------------------------------------------------------------------------------------------

class FormErrors(list):
    """The mistakes on the prepare form: all listed at the top (the summary), each also at its field
    (`fields`: field id -> message; the first mistake of a field is the one shown there)."""

    def __init__(self, *messages: str):
        super().__init__(messages)
        self.fields: dict[str, str] = {}

    def add(self, message: str, *fields: str) -> None:
        if message not in self:  # both bounds of a window wrong: one line at the top, each bound marked
            self.append(message)
        for field in fields:
            self.fields.setdefault(field, message)


def _prepare_page(request: web.Request, form: dict, recordings: list[dict], status: int = 200,
                  errors: list[str] | None = None) -> web.Response:
    lang = request[LANG]
    options = [(c, purposes.label(c, lang)) for c in purposes.PURPOSES if c != "training"]
    return render(request, "overdracht_nieuw.html", status=status, form=form, recordings=recordings,
                  errors=errors or [], field_errors=getattr(errors, "fields", {}), purpose_options=options,
                  **_labels(request))


@routes.get("/overdrachten/nieuw")
@needs(PREPARE)
async def prepare_form(request: web.Request) -> web.StreamResponse:
    _ = gettext_for(request)
    ids = _ids_from(" ".join(request.query.getall("opname", [])))
    recordings, unknown = _recordings_in_scope(request, ids)
    errors = FormErrors()
    for u in unknown:
        errors.add(_("Unknown recording: %(id)s") % {"id": u}, "recording_ids")
    form = {"recording_ids": "\n".join(r["id"] for r in recordings), "basis_kind": "", "protection": ""}
    # A link from elsewhere (a request's page) may fill in case, purpose and protection; all stay editable.
    form.update({k: request.query[k][:100] for k in ("case_ref", "purpose", "protection") if k in request.query})
    return _prepare_page(request, form, recordings, errors=errors)


@routes.post("/overdrachten/nieuw")
@needs(PREPARE)
async def prepare(request: web.Request) -> web.StreamResponse:
    p = await posted(request)
    _, box, session = p.gettext, p.box, p.session
    form = {k: str(v) for k, v in p.form.items() if k != "csrf"}
    for key in [k for k, v in form.items() if len(v) > 2000]:  # refused with a message, never cut
        p.text(key, 2000)  # raises posted.TooLong, which names the field
    ids = _ids_from(form.get("recording_ids", ""))
    recordings, unknown = _recordings_in_scope(request, ids)
    errors = FormErrors()
    for u in unknown:
        errors.add(_("Unknown recording: %(id)s") % {"id": u}, "recording_ids")
    if form.get("action") == "refresh":
        form["recording_ids"] = "\n".join(r["id"] for r in recordings)
        return _prepare_page(request, form, recordings, errors=errors)
    if not ids:
        errors.add(_("Choose at least one recording."), "recording_ids")
    if len(ids) > MAX_RECORDINGS:
        errors.add(_("At most %(n)d recordings in one handover.") % {"n": MAX_RECORDINGS}, "recording_ids")

    receiver_parts = [form.get(k, "").strip() for k in ("receiver_org", "receiver_unit", "receiver_name",
                                                       "receiver_number")]
    if not receiver_parts[0] or not receiver_parts[2]:
        errors.add(_("Name the receiving organisation and the person who receives the footage."),
                   *(field for field, part in (("receiver_org", receiver_parts[0]),
                                               ("receiver_name", receiver_parts[2])) if not part))
    receiver = ", ".join(p for p in receiver_parts[:3] if p)
    if receiver_parts[3]:
        receiver += ", " + _("official number %(number)s") % {"number": receiver_parts[3]}

    kind = form.get("basis_kind", "")
    article = form.get("basis_article", "").strip()
    basis = ""
    if kind == "vordering":
        if not article:
            errors.add(_("A requisition names its article (for example art. 126nd Sv)."), "basis_article")
        basis = f"vordering ({article})"
    elif kind == "vrijwillig":
        basis = "vrijwillige verstrekking"
    else:
        errors.add(_("Choose the legal basis: a requisition, or voluntary provision."), "basis_kind")

    case_ref = form.get("case_ref", "").strip()
    if not case_ref:
        errors.add(_("Give the case reference (for example the number of the police report)."), "case_ref")
    purpose = form.get("purpose", "")
    if purpose not in purposes.PURPOSES or purpose == "training":
        errors.add(_("Choose the purpose of the handover."), "purpose")

    protection = form.get("protection", "")
    age_recipient = form.get("age_recipient", "").strip()
    if protection not in handover.PROTECTIONS:
        errors.add(_("Choose how the package is protected on its way."), "protection")
    elif protection == "age-recipient" and not age_recipient.startswith("age1"):
        errors.add(_("Give the receiver's age public key (it starts with age1)."), "age_recipient")
    elif protection == "none" and form.get("unencrypted_ok") != "yes":
        errors.add(_("An unencrypted package needs your explicit confirmation."), "unencrypted_ok")

    clip = {}
    tz_name = box.settings.box.timezone
    window_errors = {
        "before": _("The time window of recording %(id)s starts before the recording."),
        "order": _("The time window of recording %(id)s must end after it starts."),
        "outside": _("The time window of recording %(id)s lies outside the recording (%(s)s s long)."),
    }
    for recording in recordings:
        rid = recording["id"]
        bounds = []
        for side in ("from", "to"):
            try:
                bounds.append(clip_window.parse_offset(form.get(f"{side}_{rid}", ""), recording, tz_name))
            except KluisError:
                errors.add(_("The time window of recording %(id)s is not a time (for example 75 seconds, or "
                             "14:05:30).") % {"id": rid}, f"{side}_{rid}")
        if len(bounds) < 2:
            continue
        try:
            cut = clip_window.window(bounds[0], bounds[1], recording["duration_s"])
        except clip_window.BadWindow as exc:
            # the bound that is wrong: a start before the recording, an end not after the start, or both outside
            at = {"before": ("from",), "order": ("to",)}.get(exc.reason, ("from", "to"))
            errors.add(window_errors[exc.reason] % {"id": rid, "s": _fmt_seconds(recording["duration_s"])},
                       *(f"{side}_{rid}" for side in at))
            continue
        if cut is not None:
            clip[rid] = cut

    if errors:
        return _prepare_page(request, form, recordings, 400, errors)
    try:
        handover_id = handover.prepare(
            box, session.name, [r["id"] for r in recordings], receiver, basis, case_ref, purpose, protection,
            age_recipient=age_recipient if protection == "age-recipient" else None, clip=clip or None,
            client=client_of(request))
    except handover.Denied:
        return _prepare_page(request, form, recordings, 403, [_("Your role or scope does not allow this handover.")])
    except KluisError as exc:
        # the domain's own words name the field: an age key that does not parse is the only one it checks
        refused = FormErrors()
        refused.add(_domain_message(request, exc), *(("age_recipient",) if "age" in str(exc) else ()))
        return _prepare_page(request, form, recordings, 400, refused)
    flash(request, _("Handover %(id)s is registered. A second person must now approve it.") % {"id": handover_id})
    raise web.HTTPSeeOther(f"/overdrachten/{handover_id}")


def _domain_message(request: web.Request, exc: KluisError) -> str:
    """The domain's English message for a mistake on the form, with a Dutch lead-in (its own words name
    the field, e.g. an age key that does not parse)."""
    _ = gettext_for(request)
    return _("The handover could not be registered: %(reason)s") % {"reason": str(exc)}


# One handover: details, approve, refuse, cancel ----------------------------------------------------

def _handover_for(request: web.Request) -> dict:
    h = handover.get(request.app[BOX], request.match_info["id"])
    if not _visible(request, h):
        raise NotFound("not in scope")
    return h


def _detail(request: web.Request, h: dict, status: int = 200, error: str | None = None,
            message: str | None = None, result: dict | None = None, token: str | None = None,
            field_errors: dict | None = None) -> web.Response:
    box = request.app[BOX]
    session = request[SESSION]
    items = []
    for item in h["items"]:
        try:
            recording = box.catalog.get_recording(item["recording_id"])
        except NotFound:
            recording = None
        visible = recording is not None and roles.recording_in_scope(box.catalog, session.user, recording)
        items.append({**item, "recording": recording if visible else None})
    single = handover.single_approval_allowed(box)
    own = session.name == h["prepared_by"]
    may_approve = handover.may_approve(box, session.user, h)
    # The package waits for its approver for an hour: this page offers it on every visit meanwhile.
    offered = request.app[DOWNLOADS].offered(h["id"], session.name) if h["state"] == handover.APPROVED else None
    return render(request, "overdracht.html", status=status, h=h, items=items, error=error, message=message,
                  result=result, token=token, offered=offered, field_errors=field_errors or {},
                  may_approve=may_approve, own=own, single=single,
                  may_close=h["state"] == handover.PREPARED and (own or roles.allowed(session.role, APPROVE)),
                  totp=bool(session.user.get("totp")), **_labels(request))


@routes.get("/overdrachten/{id}")
@needs(READ)
async def detail(request: web.Request) -> web.StreamResponse:
    return _detail(request, _handover_for(request))


@routes.post("/overdrachten/{id}/goedkeuren")
@needs(APPROVE)
async def approve(request: web.Request) -> web.StreamResponse:
    h = _handover_for(request)
    p = await posted(request)
    _, box, session, client = p.gettext, p.box, p.session, p.client
    password, code, unencrypted = p.raw("password"), p.text("code", 12) or None, p.raw("unencrypted_ok") == "yes"
    if h["state"] != handover.PREPARED:
        return _detail(request, h, 400, error=_("This handover is no longer awaiting approval."))
    if h["protection"] == "none" and not unencrypted:
        said = _("Confirm that the package may leave unencrypted.")
        return _detail(request, h, 400, error=said, field_errors={"unencrypted_ok": said})
    loop = asyncio.get_running_loop()
    if session.name == h["prepared_by"] and not handover.single_approval_allowed(box):
        # Four eyes: refused before any password is asked; the domain puts the attempt on record.
        try:
            await loop.run_in_executor(None, approve_on_own_connection, box, h["id"], session.name, None,
                                       io.BytesIO(), unencrypted, client)
        except handover.Denied:
            pass
        return _detail(request, _handover_for(request), 403,
                       error=_("You prepared this handover yourself: a second person with the right role must "
                               "approve it (four eyes). Your attempt is recorded in the audit log."))
    if not password:
        said = _("Give your password: it unlocks the key that opens the footage.")
        return _detail(request, h, 400, error=said, field_errors={"password": said})
    # The password again: users.login counts failures and locks the account, as at the login page.
    try:
        login = await check_password(box, session.name, password, code, client)
    except users.LockedOut:
        return _detail(request, h, 403, error=_("Too many wrong passwords: this account is locked for a while. "
                                                "Try again later or ask the keeper."))
    except WrongSecret:
        said = _("Wrong password or code.")
        return _detail(request, h, 400, error=said, field_errors={"password": said})
    if login.identity is None:
        return _detail(request, h, 403, error=_("Your account holds no key to open recordings."))

    try:
        result, token = await loop.run_in_executor(None, request.app[DOWNLOADS].approve, box, h, session.name,
                                                   login.identity, unencrypted, client)
    except handover.Denied:
        return _detail(request, _handover_for(request), 403, error=_(
            "This handover cannot be approved by you now. Your attempt is recorded in the audit log."))
    except KluisError as exc:
        return _detail(request, _handover_for(request), 400,
                       error=_("The package could not be made: %(reason)s") % {"reason": str(exc)})
    return _detail(request, _handover_for(request), result=result, token=token,
                   message=_("Approved. Download the package now; it is kept for one hour."))


@routes.get("/overdrachten/{id}/pakket/{grant}")
@needs(APPROVE)
async def download(request: web.Request) -> web.StreamResponse:
    item = request.app[DOWNLOADS].fetch(request.app[BOX], request.match_info["grant"], request[SESSION].name,
                                        request.match_info["id"], client=client_of(request))
    headers = {"Content-Disposition": f'attachment; filename="{item.filename}"', "Cache-Control": "no-store"}
    if item.data is not None:
        return web.Response(body=item.data, content_type="application/zip", headers=headers)
    assert item.path is not None  # Downloads.get answers NotFound for a package with neither
    return web.FileResponse(item.path, headers={**headers, "Content-Type": "application/octet-stream"})


@routes.get("/overdrachten/{id}/formulier")
@needs(READ)
async def transfer_form(request: web.Request) -> web.StreamResponse:
    """The transfer form as PDF, opened in the browser to print (no footage: metadata and hashes)."""
    h = _handover_for(request)
    box = request.app[BOX]
    manifest = handover_form.record_print(box, h["id"], request[SESSION].name, client_of(request))
    pdf = await asyncio.get_running_loop().run_in_executor(
        None, render_transfer_form, manifest, box.settings.box.timezone)
    return web.Response(body=pdf, content_type="application/pdf", headers={
        "Content-Disposition": f'inline; filename="overdrachtsformulier-{h["id"]}.pdf"',
        "Cache-Control": "no-store"})


@routes.post("/overdrachten/{id}/weigeren")
@needs(APPROVE)
async def refuse(request: web.Request) -> web.StreamResponse:
    return await _close(request, handover.refuse, N_("The handover was refused."))


@routes.post("/overdrachten/{id}/intrekken")
@needs(PREPARE)
async def cancel(request: web.Request) -> web.StreamResponse:
    return await _close(request, handover.cancel, N_("The handover was cancelled."))


async def _close(request: web.Request, action, done: str) -> web.StreamResponse:
    """Refuse or cancel a handover with a reason; `done` (marked N_) says so on the handover's page."""
    h = _handover_for(request)
    p = await posted(request)
    reason = p.text("reason", 500)
    if not reason:
        said = p.gettext("Give a reason.")
        return _detail(request, h, 400, error=said, field_errors={"reason": said})
    try:
        action(p.box, h["id"], p.session.name, reason, client=p.client)
    except handover.Denied:
        return _detail(request, _handover_for(request), 403,
                       error=p.gettext("You may not do this with this handover now. Your attempt is recorded in the audit log."))
    flash(request, p.gettext(done))
    raise web.HTTPSeeOther(f"/overdrachten/{h['id']}")

