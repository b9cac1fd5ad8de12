"""Users of the box: enrol, change role, reset password (re-wrapping the key slot), log in with lock-out.

No HTTP here: the CLI (`kluis users`) and the web UI (`/gebruikers`, `/login`) both call these functions.
Every change is checked against appliance.roles and lands in the audit log in the same transaction.

What a key slot protects: the box's private key rests on disk only wrapped under a password (or the
recovery key), so a box stolen while switched off reveals no footage. What it does not protect: a root
user on the running box can read the memory of the service, where a logged-in user's unwrapped key lives.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import struct
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from nacl.public import PrivateKey

from . import audit, keys, roles, teams
from .box import Box
from .clock import from_iso, to_iso
from .errors import KluisError, NotFound, WrongSecret

MAX_FAILURES = 5          # wrong passwords in a row before the account locks
LOCK_MINUTES = 15
MIN_PASSWORD = 10
MAX_PERSON_TEXT = 120  # a full name or a function, as it fits a form's field
TOTP_STEP_S = 30          # RFC 6238 defaults, what every authenticator app uses
TOTP_DIGITS = 6
TOTP_WINDOW = 1           # steps either side accepted: clocks of phones drift


class LockedOut(KluisError):
    """Too many wrong passwords: the account is locked for a while."""


@dataclass
class Login:
    user: dict                      # the users row (name, role, team, ...), slot removed
    identity: PrivateKey | None     # the box's private key, for roles that read footage or enrol


def _profile(box: Box) -> str:
    return box.settings.security.kdf_profile


def _public(row: dict) -> dict:
    public = {k: v for k, v in row.items() if k not in ("slot", "totp_secret", "totp_last_step")}
    public["totp"] = bool(row.get("totp_secret"))
    return public


def get(box: Box, name: str) -> dict:
    return _public(box.catalog.get_user(name))


def list_users(box: Box) -> list[dict]:
    rows = box.catalog.db.query(
        "SELECT name, full_name, function, role, team, created_at, disabled, failed_logins, locked_until, "
        "json_extract(slot, '$.sealed') IS NOT NULL AS has_key, totp_secret IS NOT NULL AS totp "
        "FROM users ORDER BY name")
    return [dict(r, has_key=bool(r["has_key"]), totp=bool(r["totp"])) for r in rows]


def _actor_row(box: Box, actor: str, permission: str) -> dict:
    row = box.catalog.get_user(actor)
    if row["disabled"]:
        raise roles.Forbidden(f"user {actor!r} is disabled")
    roles.require(row["role"], permission, actor)
    return row


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise KluisError(f"a password needs at least {MIN_PASSWORD} characters")


def check_name(name: str) -> None:
    if not name or len(name) > 64 or not name.isprintable() or name != name.strip():
        raise KluisError("a user name is 1 to 64 printable characters without spaces around it")


def person_text(value, what: str) -> str | None:
    """A full name or function as forms print it: one line, spaces folded, printable, bounded; None when
    empty (the login name stands in). Refused, not cut, when too long."""
    text = " ".join(str(value or "").split())
    if not text:
        return None
    if len(text) > MAX_PERSON_TEXT or not text.isprintable():
        raise KluisError(f"{what} is at most {MAX_PERSON_TEXT} printable characters")
    return text


def person_label(row: dict | None, login: str | None = None) -> str:
    """How pages and forms name a person: "J. de Vries (teamleider handhaving)"; the login name when no
    full name was given (and with the function when one was)."""
    row = row or {}
    name = row.get("full_name") or row.get("name") or login or ""
    return f"{name} ({row['function']})" if row.get("function") else name


def person_entry(box: Box, login: str | None) -> dict:
    """{'login', 'full_name', 'function'} of a user, as manifests and forms carry it; {} for no login,
    the login alone for a user no longer on the box."""
    if not login:
        return {}
    try:
        row = box.catalog.get_user(login)
    except NotFound:
        row = {}
    return {"login": login, "full_name": row.get("full_name"), "function": row.get("function")}


def people(box: Box) -> dict[str, dict]:
    """Every user's name, full name and function, by login name (for pages naming several people)."""
    return {r["name"]: dict(r) for r in box.catalog.db.query("SELECT name, full_name, function FROM users")}


def set_person(box: Box, actor: str, name: str, full_name: str | None, function: str | None,
               client: str | None = None) -> dict:
    """The keeper sets a user's full name and function (empty: cleared, the login name is used)."""
    _actor_row(box, actor, roles.USERS_MANAGE)
    full_name, function = person_text(full_name, "a full name"), person_text(function, "a function")
    _keeper_sets(box, actor, name, "full_name = ?, function = ?", [full_name, function],
                 {"full_name": full_name, "function": function}, client)
    return get(box, name)


def _new_slot(box: Box, role: str, password: str, identity: PrivateKey | None) -> dict:
    if role in roles.SLOT_ROLES:
        if identity is None:
            raise KluisError(f"role {role} holds a key slot: the acting user must unlock the box key")
        if bytes(identity.public_key) != bytes(box.public_key):
            raise KluisError("that key belongs to another box")
        return keys.new_slot(password, bytes(identity), _profile(box))
    return keys.new_slot(password, None, _profile(box))


def add_user(box: Box, actor: str, name: str, role: str, password: str, *, team: str | None = None,
             identity: PrivateKey | None = None, client: str | None = None, full_name: str | None = None,
             function: str | None = None) -> dict:
    """Enrol a user. Roles that read footage get a key slot, which needs the actor's unlocked key.
    `full_name` and `function` name the person on forms (optional: the login name stands in)."""
    _actor_row(box, actor, roles.USERS_MANAGE)
    check_name(name)
    roles.check_role(role)
    check_password(password)
    full_name, function = person_text(full_name, "a full name"), person_text(function, "a function")
    team = (team or "").strip() or None
    if role == roles.TEAM_LEADER and not team:
        raise KluisError("a team leader needs a team")
    slot = _new_slot(box, role, password, identity)
    with box.catalog.transaction():
        box.catalog.add_user(name, role, slot, box.now_iso(), team=team, full_name=full_name, function=function)
        teams.adopt_recordings(box.catalog, name, team)  # recordings made before the box knew the officer
        person = {k: v for k, v in (("full_name", full_name), ("function", function)) if v}
        audit.record(box.catalog, actor=actor, action="user_add", client=client,
                     details={"user": name, "role": role, "team": team, "key_slot": slot["sealed"] is not None,
                              **person})
    return get(box, name)


def change_role(box: Box, actor: str, name: str, role: str, *, team: str | None = None,
                client: str | None = None) -> dict:
    """A new role (and team). Dropping to a role without footage removes the wrapped key from the slot;
    moving up to one needs a password reset, because only the user's password can wrap the key."""
    _actor_row(box, actor, roles.USERS_MANAGE)
    roles.check_role(role)
    row = box.catalog.get_user(name)
    team = (team or "").strip() or None
    if role == roles.TEAM_LEADER and not team:
        raise KluisError("a team leader needs a team")
    slot = row["slot"]
    if role in roles.SLOT_ROLES and slot.get("sealed") is None:
        raise KluisError(f"role {role} needs a key slot: reset {name}'s password together with the role change")
    if name == actor and role != row["role"]:
        raise KluisError("you cannot change your own role")
    if role not in roles.SLOT_ROLES and slot.get("sealed") is not None:
        slot = {**slot, "sealed": None}  # the verifier still checks the password; the key is gone
    with box.catalog.transaction():
        box.catalog.db.execute("UPDATE users SET role = ?, team = ?, slot = ? WHERE name = ?",
                               [role, team, _dumps(slot), name])
        teams.adopt_recordings(box.catalog, name, team)
        audit.record(box.catalog, actor=actor, action="role_change", client=client,
                     details={"user": name, "from": row["role"], "to": role, "team": team})
    return get(box, name)


def reset_password(box: Box, actor: str, name: str, new_password: str, *, role: str | None = None,
                   team: str | None = None, identity: PrivateKey | None = None,
                   client: str | None = None) -> dict:
    """A new password for a user (their key slot is re-wrapped under it). A user may change their own;
    otherwise the keeper does it. `role` changes the role in the same step (needed to move a user to a
    role that reads footage)."""
    if actor != name:
        _actor_row(box, actor, roles.USERS_MANAGE)
    row = box.catalog.get_user(name)
    check_password(new_password)
    new_role = roles.check_role(role) if role else row["role"]
    if role and name == actor and role != row["role"]:
        raise KluisError("you cannot change your own role")
    new_team = row["team"] if team is None else ((team or "").strip() or None)
    slot = _new_slot(box, new_role, new_password, identity)
    with box.catalog.transaction():
        box.catalog.db.execute(
            "UPDATE users SET slot = ?, role = ?, team = ?, failed_logins = 0, locked_until = NULL "
            "WHERE name = ?", [_dumps(slot), new_role, new_team, name])
        teams.adopt_recordings(box.catalog, name, new_team)
        audit.record(box.catalog, actor=actor, action="key_slot_change", client=client,
                     details={"user": name, "key_slot": slot["sealed"] is not None})
        if new_role != row["role"]:
            audit.record(box.catalog, actor=actor, action="role_change", client=client,
                         details={"user": name, "from": row["role"], "to": new_role, "team": new_team})
    return get(box, name)


def set_disabled(box: Box, actor: str, name: str, disabled: bool, client: str | None = None) -> None:
    _actor_row(box, actor, roles.USERS_MANAGE)
    if name == actor:
        raise KluisError("you cannot disable yourself")
    _keeper_sets(box, actor, name, "disabled = ?, failed_logins = 0, locked_until = NULL", [int(disabled)],
                 {"disabled": disabled}, client)


def _keeper_sets(box: Box, actor: str, name: str, assignments: str, params: list, change: dict,
                 client: str | None) -> None:
    """The keeper (checked by the caller) sets columns of user name's row: the UPDATE's assignments (a
    constant of the caller's) with their params; a 'user_change' entry names the change."""
    box.catalog.get_user(name)  # an unknown user is refused
    with box.catalog.transaction():
        box.catalog.db.execute(f"UPDATE users SET {assignments} WHERE name = ?", [*params, name])
        audit.record(box.catalog, actor=actor, action="user_change", client=client, details={"user": name, **change})


def _dumps(slot: dict) -> str:
    return json.dumps(slot)


def login(box: Box, name: str, password: str, client: str | None = None, code: str | None = None) -> Login:
    """Check a password (and, for a user who set one up, the TOTP code) and unwrap the user's key slot
    (one Argon2id run). Counts failures and locks the account for LOCK_MINUTES after MAX_FAILURES in a
    row. Raises WrongSecret (one message for an unknown user, a wrong password or code) or LockedOut.

    Three steps, so that a server can run the slow middle one (Argon2id, no catalog) on a worker thread
    and keep every catalog access on its own thread: login_start, open_user_slot, login_finish."""
    row = login_start(box, name, client)
    secret: object
    try:
        secret = open_user_slot(box, row, password)
    except WrongSecret:
        secret = WRONG
    return login_finish(box, name, row, secret, code, client)


WRONG = object()  # open_user_slot's outcome for a wrong password, handed to login_finish


def login_start(box: Box, name: str, client: str | None = None) -> dict | None:
    """The user's row (None for an unknown name); LockedOut while locked; a disabled user is refused."""
    try:
        row = box.catalog.get_user(name)
    except NotFound:
        return None
    if row["locked_until"] and from_iso(row["locked_until"]) > box.clock():
        raise LockedOut(f"account locked until {row['locked_until']} after repeated wrong passwords")
    if row["disabled"]:
        with box.catalog.transaction():
            audit.record(box.catalog, actor=name, action="login_failed", client=client,
                         details={"reason": "disabled"})
        raise WrongSecret("wrong user name or password")
    return row


def open_user_slot(box: Box, row: dict | None, password: str) -> bytes | None:
    """The Argon2id step (no catalog access): the slot's secret, or WrongSecret. For an unknown user the
    same work is done, so that the answer's timing does not tell who exists."""
    if row is None:
        keys.new_slot(password or "x", None, _profile(box))
        raise WrongSecret("wrong user name or password")
    return keys.open_slot(row["slot"], password)


def login_finish(box: Box, name: str, row: dict | None, secret: Any, code: str | None = None,
                 client: str | None = None) -> Login:
    """Count the outcome of open_user_slot (`secret`, or WRONG), check the TOTP code, audit."""
    now = box.clock()
    if row is None:
        with box.catalog.transaction():
            audit.record(box.catalog, actor=name[:64], action="login_failed", client=client,
                         details={"reason": "unknown user"})
        raise WrongSecret("wrong user name or password")
    step = None
    if secret is not WRONG and row.get("totp_secret"):
        step = totp_step(row["totp_secret"], code or "", now, after=row.get("totp_last_step"))
    if secret is WRONG or (row.get("totp_secret") and step is None):
        with box.catalog.transaction():
            failures = box.catalog.db.execute("SELECT failed_logins FROM users WHERE name = ?",
                                              [name]).fetchone()[0] + 1
            locked = to_iso(now + timedelta(minutes=LOCK_MINUTES)) if failures >= MAX_FAILURES else None
            box.catalog.db.execute("UPDATE users SET failed_logins = ?, locked_until = ? WHERE name = ?",
                                   [0 if locked else failures, locked, name])
            audit.record(box.catalog, actor=name, action="login_failed", client=client,
                         details={"reason": "wrong password" if secret is WRONG else "wrong code",
                                  "failures": failures, "locked_until": locked})
        if locked:
            raise LockedOut(f"account locked until {locked} after {MAX_FAILURES} wrong passwords")
        raise WrongSecret("wrong user name, password or code")
    identity = None
    if secret is not None and row["role"] in roles.SLOT_ROLES:
        identity = box._identity(secret)
    with box.catalog.transaction():
        box.catalog.db.execute("UPDATE users SET failed_logins = 0, locked_until = NULL, "
                               "totp_last_step = coalesce(?, totp_last_step) WHERE name = ?", [step, name])
        audit.record(box.catalog, actor=name, action="login", client=client,
                     details={"second_factor": "totp"} if step is not None else None)
    return Login(_public(box.catalog.get_user(name)), identity)


def logout(box: Box, name: str, client: str | None = None, reason: str = "user") -> None:
    with box.catalog.transaction():
        audit.record(box.catalog, actor=name, action="logout", client=client, details={"reason": reason})


def unlock_account(box: Box, actor: str, name: str, client: str | None = None) -> None:
    _actor_row(box, actor, roles.USERS_MANAGE)
    _keeper_sets(box, actor, name, "failed_logins = 0, locked_until = NULL", [], {"unlocked": True}, client)


def random_password() -> str:
    return secrets.token_urlsafe(12)



# Second factor: TOTP (RFC 6238) ------------------------------------------------------------------------

def new_totp_secret() -> str:
    return base64.b32encode(secrets.token_bytes(20)).decode()


def totp_code(secret: str, step: int) -> str:
    key = base64.b32decode(secret)
    digest = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10 ** TOTP_DIGITS).zfill(TOTP_DIGITS)


def totp_step(secret: str, code: str, moment, after: int | None = None) -> int | None:
    """The time step whose code this is (within the window), or None. A step at or before `after` (the
    last one used) does not count: a code seen over someone's shoulder cannot be used again."""
    code = "".join(ch for ch in code if ch.isdigit())
    if len(code) != TOTP_DIGITS:
        return None
    now = int(moment.timestamp()) // TOTP_STEP_S
    for step in range(now - TOTP_WINDOW, now + TOTP_WINDOW + 1):
        if (after is None or step > after) and hmac.compare_digest(totp_code(secret, step), code):
            return step
    return None


def totp_uri(box: Box, name: str, secret: str) -> str:
    """What an authenticator app reads (typed in, or as a QR code made elsewhere)."""
    from urllib.parse import quote

    issuer = box.settings.box.name
    return (f"otpauth://totp/{quote(issuer)}:{quote(name)}?secret={secret}&issuer={quote(issuer)}"
            f"&digits={TOTP_DIGITS}&period={TOTP_STEP_S}")


class SecondFactorRequired(roles.Forbidden):
    """A user whose role must use a second factor ([security] totp_required) has not set one up."""


SETUP_HINT = ("log in to the web UI and set up the second factor on the My account page (/account); "
              "a keeper can turn off a lost one on the Users page")
SETUP_HINT_NL = ("log in op de webinterface en stel de tweede factor in op de pagina Mijn account (/account); "
                 "een beheerder kan een verloren telefoon uitzetten op de pagina Gebruikers")


def totp_required(box: Box, role: str) -> bool:
    """Whether users of `role` must log in with a second factor ([security] totp_required)."""
    return role in box.settings.security.totp_required


def second_factor_missing(box: Box, user: dict) -> bool:
    """A user (a users row, or its public form) whose role requires a second factor they have not set up."""
    has = user["totp"] if "totp" in user else bool(user.get("totp_secret"))
    return totp_required(box, user["role"]) and not has


def require_second_factor(box: Box, user: dict, command: str) -> None:
    """Refuse a command line of a user whose role requires a second factor they lack (in English and Dutch:
    the message names how to set it up)."""
    if second_factor_missing(box, user):  # the caller puts the refusal on record (commands/refusals.py)
        raise SecondFactorRequired(
            f"{user['name']} ({user['role']}) must use a second factor on this box before `kluis {command}`: "
            f"{SETUP_HINT}.\n{user['name']} moet op deze kluis een tweede factor (code uit een authenticator-app) gebruiken: {SETUP_HINT_NL}.")


def enable_totp(box: Box, name: str, secret: str, code: str, client: str | None = None) -> None:
    """A user turns on the second factor, proving with a code that their app has the secret."""
    step = totp_step(secret, code, box.clock())
    if step is None:
        raise KluisError("that code does not match: check the phone's clock and type the current code")
    with box.catalog.transaction():
        box.catalog.db.execute("UPDATE users SET totp_secret = ?, totp_last_step = ? WHERE name = ?",
                               [secret, step, name])
        audit.record(box.catalog, actor=name, action="user_change", client=client,
                     details={"user": name, "totp": True})


def disable_totp(box: Box, actor: str, name: str, client: str | None = None) -> None:
    """The keeper turns a user's second factor off (a lost phone); the user sets it up again."""
    _actor_row(box, actor, roles.USERS_MANAGE)
    _keeper_sets(box, actor, name, "totp_secret = NULL, totp_last_step = NULL", [], {"totp": False}, client)


def change_own_password(box: Box, name: str, current: str, new: str, identity: PrivateKey | None,
                        client: str | None = None) -> dict:
    """A user changes their own password (the current one is checked; the key slot is re-wrapped)."""
    try:
        keys.open_slot(box.catalog.get_user(name)["slot"], current)
    except WrongSecret:
        raise WrongSecret("the current password is wrong") from None
    return reset_password(box, name, name, new, identity=identity, client=client)
