"""Logged-in sessions, kept only in the server's memory.

A session holds the user's row and, for roles that read footage or enrol users, the box's private key
unwrapped from their key slot at login. It is never written to disk: a restart logs everybody out,
which is the point. Idle sessions end after the configured number of minutes.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable

from nacl.public import PrivateKey

from appliance.clock import Clock
from appliance.footage import Footage


@dataclass
class Grant:
    """Permission to stream one recording: the gate's reader (appliance.footage), handed out only after
    its 'view' audit entry was committed."""
    recording_id: str
    purpose: str
    case_ref: str | None
    audit_seq: int
    footage: Footage


@dataclass
class Session:
    id: str
    user: dict
    identity: PrivateKey | None
    csrf: str
    last_seen: datetime
    grants: dict[str, Grant] = field(default_factory=dict)
    # the redaction editor's last previews (a few seconds, low resolution, blurred): id -> (the recording's
    # id, MP4 bytes), in memory
    previews: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    pending_totp: str | None = None  # a second-factor secret shown to the user, not yet confirmed
    flashes: list[str] = field(default_factory=list)  # what the last action did, for the next page (app.flash)

    def take_flashes(self) -> list[str]:
        """The confirmations waiting to be shown, once: the page that shows them empties the list."""
        taken, self.flashes = self.flashes, []
        return taken

    @property
    def name(self) -> str:
        return self.user["name"]

    @property
    def role(self) -> str:
        return self.user["role"]


class Sessions:
    def __init__(self, clock: Clock, idle_minutes: float | Callable[[], float]):
        self.clock = clock
        self._idle = idle_minutes  # a callable reads the current setting, so a change applies at once
        self._by_id: dict[str, Session] = {}

    @property
    def idle(self) -> timedelta:
        return timedelta(minutes=float(self._idle() if callable(self._idle) else self._idle))

    def new(self, user: dict, identity: PrivateKey | None) -> Session:
        session = Session(secrets.token_urlsafe(32), user, identity, secrets.token_urlsafe(32), self.clock())
        self._by_id[session.id] = session
        return session

    def get(self, session_id: str | None) -> tuple[Session | None, Session | None]:
        """(the live session, or None; the session that just expired for idleness, or None)."""
        session = self._by_id.get(session_id or "")
        if session is None:
            return None, None
        now = self.clock()
        if now - session.last_seen > self.idle:
            self.drop(session.id)
            return None, session
        session.last_seen = now
        return session, None

    def drop(self, session_id: str) -> None:
        session = self._by_id.pop(session_id, None)
        if session is not None:
            session.identity = None
            session.grants.clear()

    def drop_user(self, name: str) -> None:
        """End every session of a user (after a role change, password reset or disabling)."""
        for session in [s for s in self._by_id.values() if s.name == name]:
            self.drop(session.id)

    def __len__(self) -> int:
        return len(self._by_id)
