"""What a recording's page and the officer's "Mijn opnames" share: the reason form (reason, its text,
the warnings given) and the categories with the deletion date they give, and the handling of both forms.

Neither shows footage: setting a reason or a category is information about a recording, not a purpose
to view it (appliance.recordings.set_reason, appliance.retention.set_category, the one place each
changes). The web routes stay thin: they call these and render their own page on a refusal.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from appliance import recording_reasons, recordings, retention, roles
from appliance.clock import to_iso
from appliance.errors import KluisError

from .app import BOX, LANG, SESSION, flash
from .labels import reason_label
from .posted import Posted


def deletion_of(box, recording: dict, policy: retention.Policy | None = None) -> dict:
    """When the sweep deletes the recording: the term (the longest of its categories'), the moment (None
    while held), whether that has come. `held`: an active hold keeps it (the page says "held" then)."""
    policy = policy or retention.current_policy(box)
    categories = retention.category_names(box.catalog, recording["id"])
    holds = retention.list_holds(box.catalog, recording["id"], include_released=True)
    deletion: dict[str, object] = {"at": None, "term": policy.term_days(categories),
                                   "held": any(not h["released_at"] for h in holds), "due": False}
    if recording["state"] == "stored":
        moment = retention.delete_after(box, recording, policy)
        deletion.update(at=to_iso(moment) if moment else None, held=moment is None or bool(deletion["held"]),
                        due=moment is not None and moment <= box.clock())
    return deletion


def context(request: web.Request, recording: dict) -> dict:
    """What the two forms need: the configured reasons with their labels, which ask for a text, the
    recording's categories (each with its term, and whether this user may take it off) and those it can
    still be put in, and its deletion."""
    box, user, lang = request.app[BOX], request[SESSION].user, request[LANG]
    reasons = recording_reasons.current(box)
    offered = reasons.offered()
    policy = retention.current_policy(box)
    own_only = user["role"] in roles.CATEGORIZE_OWN_ONLY
    categories = []
    for row in retention.categories_of(box.catalog, recording["id"]):
        row["term"] = policy.term_days([row["category"]])
        row["configured"] = row["category"] in policy.categories
        row["removable"] = not own_only or row["set_by"] == user["name"]
        categories.append(row)
    have = {row["category"] for row in categories}
    return {
        "reasons": [(code, reason_label(code, lang, offered)) for code in offered],
        "free_text": list(reasons.free_text),
        "reason_label": reason_label(recording.get("reason"), lang, offered),
        "categories": categories,
        "addable": [(name, days) for name, days in sorted(policy.categories.items()) if name not in have],
        "default_days": policy.default_days,
        "deletion": deletion_of(box, recording, policy),
        "derived": bool(recording.get("derived_from")),
        "stored": recording["state"] == "stored",
    }


@dataclass
class Refused:
    """A form refused: the message and the field it is about, and the values to show again."""
    message: str
    field_errors: dict[str, str] = field(default_factory=dict)
    form: dict[str, str] = field(default_factory=dict)


REASON_FIELDS = {"reason": "reason", "reason_text": "reason_text", "warnings": "warnings"}


def save_reason(request: web.Request, p: Posted, recording: dict) -> Refused | None:
    """The reason form posted: set it (None), or say what is wrong (Refused). Flashes what it did."""
    _ = p.gettext
    kept = {"reason": p.raw("reason"), "reason_text": p.text("reason_text", recording_reasons.MAX_TEXT + 100),
            "warning_given": p.raw("warning_given"), "warnings": p.text("warnings", 10)}
    messages = {
        "reason": _("Choose a reason for recording."),
        "reason_text": _("Say in a few words why (at most %(n)d characters).") % {"n": recording_reasons.MAX_TEXT},
        "warnings": _("The number of warnings must be a whole number from 1 to %(n)d.")
        % {"n": recording_reasons.MAX_WARNINGS},
    }
    try:
        warnings = recording_reasons.parse_warnings(kept["warning_given"], kept["warnings"])
        recordings.set_reason(p.box, recording, kept["reason"], warnings, text=kept["reason_text"],
                              actor=p.session.name, client=p.client)
    except recording_reasons.ReasonError as refused:
        said = messages[refused.field]
        return Refused(said, {REASON_FIELDS[refused.field]: said}, kept)
    except KluisError:
        return Refused(_("This recording is a redacted copy or is being deleted: its reason cannot be set."))
    flash(request, _("Reason for recording saved."))
    return None


def save_category(request: web.Request, p: Posted, recording: dict) -> Refused | None:
    """The category form posted (add=NAME or remove=NAME): change it (None), or say why not (Refused)."""
    _ = p.gettext
    user = p.session.user
    add, remove = p.raw("add").strip(), p.raw("remove").strip()
    if not add and not remove:
        said = _("Choose a category.")
        return Refused(said, {"category_add": said})
    try:
        retention.set_category(p.box, recording["id"], p.session.name, add=[add] if add else [],
                                       remove=[remove] if remove else [], source="web",
                                       only_own=user["role"] in roles.CATEGORIZE_OWN_ONLY, client=p.client)
    except retention.NotYours:
        return Refused(_("You can only take off a category you added yourself; ask your team leader."))
    except KluisError:
        said = _("This category is not configured on this box (or the recording is being deleted).")
        return Refused(said, {"category_add": said} if add else {})
    if add:
        flash(request, _("Category %(name)s added.") % {"name": add})
    else:
        flash(request, _("Category %(name)s taken off.") % {"name": remove})
    return None
