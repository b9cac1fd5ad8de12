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

from .app import BOX, SESSION, client_of, gettext_for
from .sessions import Session

MAX_FIELD = 4000  # characters kept of a form field unless the handler says less


@dataclass(frozen=True)
class Posted:
    box: Box
    session: Session
    form: MultiDictProxy
    client: str                      # for the audit log: 'web ADDRESS'
    gettext: Callable[[str], str]    # into the user's language

    def text(self, key: str, limit: int = MAX_FIELD) -> str:
        """A field as trimmed text of at most `limit` characters ('' when absent)."""
        return str(self.form.get(key, "")).strip()[:limit]

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
