"""What a handler starts from, in one call: for a posted form the box, who acts and from where, the user's
language and the form's fields as bounded text (`await posted(request)`); for a page of one recording
that recording, if the user may see it (`recording_in_path(request)`). Route modules use these instead of
repeating those lines at the top of every handler."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from aiohttp import web
from multidict import MultiDictProxy

from appliance import roles
from appliance.box import Box

from .app import BOX, SESSION, UserError, client_of, gettext_for
from .i18n import N_
from .sessions import Session

MAX_FIELD = 4000  # characters a form field may hold unless the handler says less

# How the refusal of an over-long field names it (the form's labels); another field is "a field".
FIELD_LABELS = {
    "case_ref": N_("Case reference"), "reason": N_("Reason"), "officer": N_("Officer"), "serial": N_("Serial number"),
    "code": N_("Code"), "site": N_("Site name"), "url": N_("Address"), "until": N_("Until"), "ends": N_("To"),
    "recording": N_("Recording"), "decision_ref": N_("Reference of the decision"), "name": N_("User name"),
    "requester": N_("Requester"), "place": N_("Place"), "camera": N_("Camera"), "contact": N_("Contact"),
    "notes": N_("Notes"), "received_on": N_("Received on"), "given_time": N_("Time"), "window": N_("Search window"),
    "kind": N_("Kind of request"), "team": N_("Team"),
    # the handover form (overdracht_nieuw.html) and the redaction form (redactie.html) use the same labels
    "recording_ids": N_("Recording ids (one per line)"), "receiver_org": N_("Organisation"), "receiver_unit": N_("Unit"),
    "receiver_name": N_("Name"), "receiver_number": N_("Official number"), "basis_article": N_("Article"),
    "age_recipient": N_("Public key"), "request_ref": N_("Request (optional)"),
    "keep": N_("Keep regions (not blurred): one per line"), "boxes": N_("Boxes to blur at keyframes: one per line"),
    "mute": N_("Mute audio: one range per line"),
}


class TooLong(UserError):
    """A field longer than its limit: refused with a message, never cut (a cut case reference would be
    another case's). A 400 page; nothing was changed. `field`: the form's name of the field, for a page
    that marks it."""

    def __init__(self, message: str, field: str = ""):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Posted:
    box: Box
    session: Session
    form: MultiDictProxy
    client: str                      # for the audit log: 'web ADDRESS'
    gettext: Callable[[str], str]    # into the user's language

    def text(self, key: str, limit: int = MAX_FIELD) -> str:
        """A field as trimmed text ('' when absent); TooLong when it holds more than `limit` characters."""
        value = str(self.form.get(key, "")).strip()
        if len(value) > limit:
            _ = self.gettext
            raise TooLong(_("“%(field)s” holds %(length)d characters; at most %(limit)d are allowed. Nothing was "
                            "saved: go back, shorten it and send the form again.")
                          % {"field": _(FIELD_LABELS.get(key, N_("a field"))), "length": len(value), "limit": limit},
                          key)
        return value

    def raw(self, key: str) -> str:
        """A field exactly as sent (a password: spaces count)."""
        return str(self.form.get(key, ""))

    def fields(self, keys, limit: int = MAX_FIELD) -> dict[str, str]:
        return {key: self.text(key, limit) for key in keys}


async def posted(request: web.Request) -> Posted:
    return Posted(request.app[BOX], _session(request), await request.post(), client_of(request),
                  gettext_for(request))


def recording_in_path(request: web.Request) -> dict:
    """The recording the path names ({id}), if the user's role and scope allow it; NotFound (a 404)
    otherwise."""
    return roles.recording_for(request.app[BOX].catalog, _session(request).user, request.match_info["id"])


def _session(request: web.Request) -> Session:
    return request[SESSION]  # set by the auth middleware before any handler that starts here runs
