"""A refused CLI command on record: who tried which command, and why it was refused ('command_refused').

`common.act` checks the role (and what the command checks beyond it) before any password is asked, so a
refusal there leaves no 'login_failed' entry; this one names the command instead. A wrong password or code
is counted and locked out by appliance.users as at the web login; the refusal entry comes beside its
'login_failed' entry so that the log says which command it was for.

Flooding: whoever runs the CLI can repeat a refused command as fast as processes start, without knowing a
password (the role check and a locked account come first). So per user at most PER_USER refusal entries,
and for all users together at most OVERALL, are written in a window of users.LOCK_MINUTES (the login's
own lock-out window); the entry that reaches the limit says until when further refusals go unrecorded.
"""

from __future__ import annotations

from datetime import timedelta

from appliance import audit, users
from appliance.box import Box
from appliance.clock import to_iso

ACTION = "command_refused"
PER_USER = 2 * users.MAX_FAILURES
OVERALL = 100

# Why a command was refused (the entry's details["reason"]).
ROLE = "role"                   # the user's role lacks the command's permission
CONDITION = "condition"         # what the command checks beyond the role (purpose, scope, four eyes)
DISABLED = "disabled"
UNKNOWN_USER = "unknown user"
NO_KEY_SLOT = "no key slot"
LOCKED = "locked"
WRONG_PASSWORD = "wrong password"
WRONG_CODE = "wrong password or code"  # appliance.users' own login_failed entry says which
NO_CODE = "no code"             # a second factor is set up, but no terminal to type it in
WRONG_RECOVERY_KEY = "wrong recovery key"
NO_SECOND_FACTOR = "no second factor"  # [security] totp_required names the role; none is set up yet


def record(box: Box, name: str, command: str, reason: str, message: str, permission: str | None = None) -> None:
    """Put the refusal on record, unless this user (or everyone together) already reached the limit of the
    window (details["throttled"]: refusals go unrecorded until then at the latest)."""
    now = box.clock()
    since = to_iso(now - timedelta(minutes=users.LOCK_MINUTES))
    with box.catalog.transaction():
        db = box.catalog.db
        mine = db.execute("SELECT count(*) FROM audit_log WHERE action = ? AND time >= ? AND actor = ?",
                          [ACTION, since, name[:64]]).fetchone()[0]
        everyone = db.execute("SELECT count(*) FROM audit_log WHERE action = ? AND time >= ?",
                              [ACTION, since]).fetchone()[0]
        if mine >= PER_USER or everyone >= OVERALL:
            return
        details: dict = {"command": command, "reason": reason, "problem": message[:200]}
        if permission is not None:
            details["permission"] = permission
        if mine + 1 == PER_USER or everyone + 1 == OVERALL:
            details["throttled"] = to_iso(now + timedelta(minutes=users.LOCK_MINUTES))
        audit.record(box.catalog, actor=name[:64], action="command_refused", client="cli", clock=box.clock, details=details)
