"""What every subcommand shares: the --data option, opening the box, reading secrets safely.

Secrets never come from the command line: a prompt in a terminal, or --password-file /
--recovery-key-file for scripts and tests.

The CLI obeys the same roles as the web UI (appliance.roles): COMMAND_PERMISSIONS below is the one place
that says which permission each command needs, and `act` is the one way a command checks it.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import wraps
from pathlib import Path
from typing import Any, Callable

import click
from nacl.public import PrivateKey

from appliance import audit, roles, users
from appliance.box import Box
from appliance.errors import KluisError, NotFound, WrongSecret
from . import refusals

data_option = click.option(
    "--data", "data_dir", required=True, envvar="KLUIS_DATA", type=click.Path(path_type=Path),
    help="The box's data directory (or $KLUIS_DATA).",
)


def opened_with(open_: Callable[[Path], Any], option=data_option):
    """A decorator: open what the data directory option names with open_ (a context manager) for the
    command, as its first argument, and close it afterwards."""

    def decorate(func):
        @option
        @wraps(func)
        def wrapper(data_dir: Path, **kwargs):
            with open_(data_dir) as opened:
                return func(opened, **kwargs)

        return wrapper

    return decorate


with_box = opened_with(Box)  # the box named by --data


def read_secret_file(path: Path) -> str:
    try:
        text = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise KluisError(f"cannot read {path}: {exc.strerror}") from None
    if not text or not text[0]:
        raise KluisError(f"{path} is empty")
    return text[0]


def ask_password(password_file: Path | None, prompt: str = "Password", confirm: bool = False) -> str:
    if password_file is not None:
        return read_secret_file(password_file)
    if not sys.stdin.isatty():
        raise KluisError("no password given: use --password-file F (or run in a terminal)")
    return click.prompt(prompt, hide_input=True, confirmation_prompt=confirm)


def secret_options(func):
    """--user, --password-file, --recovery-key-file for commands that act for a person."""
    func = click.option("--recovery-key-file", type=click.Path(path_type=Path),
                        help="Break-glass: open with the recovery key in this file.")(func)
    func = click.option("--password-file", type=click.Path(path_type=Path),
                        help="Read the password from this file (first line).")(func)
    func = click.option("--user", "user", help="Who acts (default: the user made at init).")(func)
    return func


def acting_user(box: Box, user: str | None) -> str:
    return user or box.default_user


# Command -> the permission it needs (roles.PERMISSIONS says which roles hold it). Read with roles.py's
# docstring: the keeper runs users, cameras, settings and storage and sees no footage; the auditor reads
# the audit log and the deletion report only. COMMAND_CONDITIONS says what a command checks beyond the
# permission; NO_LOGIN names the commands that deliberately take no login, and why. Every command is in
# COMMAND_PERMISSIONS or NO_LOGIN: tests/test_docs.py checks it, and docs/generate.py writes the README's
# table and docs/cli-reference.md from these three tables.
#
# Every command in COMMAND_PERMISSIONS also takes --recovery-key-file: the break-glass path (no role check;
# the recovery key unlocks; a 'break_glass' audit entry is committed before the command does anything).
COMMAND_PERMISSIONS: dict[str, str | None] = {
    "cat": roles.RECORDINGS_VIEW,
    "list": roles.RECORDINGS_LIST,
    "import": roles.CAMERAS_MANAGE,
    "users list": roles.USERS_MANAGE,
    "hold add": roles.HOLDS_MANAGE,
    "hold release": roles.HOLDS_MANAGE,
    "hold review": roles.HOLDS_MANAGE,
    "hold list": roles.HOLDS_MANAGE,
    # the officer's reason and the retention categories (appliance/recordings.py, appliance/retention.py)
    "reason set": roles.RECORDINGS_ANNOTATE,
    "category add": roles.RECORDINGS_CATEGORIZE,
    "category remove": roles.RECORDINGS_CATEGORIZE,
    "category list": roles.RECORDINGS_LIST,
    "retention report": roles.DELETION_REPORT,
    "audit show": roles.AUDIT_READ,
    "audit export": roles.AUDIT_READ,
    "audit verify": roles.AUDIT_READ,
    "audit checkpoints": roles.AUDIT_READ,
    "users add": roles.USERS_MANAGE,
    "users edit": roles.USERS_MANAGE,
    "users totp-off": roles.USERS_MANAGE,
    "cameras pair": roles.CAMERAS_MANAGE,
    "cameras unpair": roles.CAMERAS_MANAGE,
    "cameras assign": roles.CAMERAS_MANAGE,
    "cameras shift": roles.CAMERAS_MANAGE,
    "axis connection-file": roles.CAMERAS_MANAGE,  # an Axis W800's account and connection file
    "sync rewrap": roles.SETTINGS_MANAGE,
    "alerts test": roles.SETTINGS_MANAGE,   # a test mail and syslog line to the addresses in [alerts], [syslog]
    "alerts list": roles.SETTINGS_MANAGE,
    "verify --deep": None,
    "redact": roles.RECORDINGS_REDACT,   # + the recording in scope; a redacted copy, held for the purpose
    # handovers (appliance/handover.py): approve also needs a second person unless [handover] single_approval
    "export prepare": roles.HANDOVER_PREPARE,
    "export cancel": roles.HANDOVER_PREPARE,
    "export approve": roles.HANDOVER_APPROVE,
    "export refuse": roles.HANDOVER_APPROVE,
    "export list": roles.HANDOVER_READ,
    "export register": roles.HANDOVER_READ,
    "export custody": roles.AUDIT_READ,
    # requests of people who were filmed (appliance/access_requests.py): the privacy officer's register
    "requests add": roles.REQUESTS_MANAGE,
    "requests list": roles.REQUESTS_MANAGE,
    "requests show": roles.REQUESTS_MANAGE,
    "requests link": roles.REQUESTS_MANAGE,
    "requests unlink": roles.REQUESTS_MANAGE,
    "requests close": roles.REQUESTS_MANAGE,
    "requests extend": roles.REQUESTS_MANAGE,
    "requests letter": roles.REQUESTS_MANAGE,
    "stats report": roles.STATS_REPORT,  # the report to the council: counts only, no personal data
    # the processing register entry and the DPIA's fact sheet (appliance/register.py)
    "register": roles.REGISTER_READ,
    # cases (appliance/cases.py, appliance/case_file.py): one reference for recordings, holds, handovers, requests
    "cases add": roles.CASES_MANAGE,
    "cases edit": roles.CASES_MANAGE,
    "cases list": roles.CASES_READ,
    "cases show": roles.CASES_READ,
    "cases close": roles.CASES_MANAGE,
    "cases reopen": roles.CASES_MANAGE,
}

# What a command checks beyond its permission (the act() call's `check`, or the domain call it makes).
COMMAND_CONDITIONS: dict[str, str] = {
    "cat": "a purpose the role may name (and --case unless `training`); the recording in the user's scope",
    "list": "lists only the recordings in the user's scope",
    "import": "for cameras that offer only USB storage",
    "hold add": "the recording in the user's scope",
    "hold release": "the recording in the user's scope",
    "hold review": "the recording in the user's scope",
    "hold list": "lists only holds on recordings in the user's scope",
    "reason set": "the recording in the user's scope (an officer: their own); shows no footage",
    "category add": "the recording in the user's scope; a category of `[retention.categories]`",
    "category remove": "the recording in the user's scope; an officer only a category they added",
    "category list": "the recording in the user's scope",
    "sync rewrap": "storage work: re-seals file keys, shows no footage",
    "verify --deep": "a key slot that opens the box key (it checks chunk tags and shows no footage); "
                     "audited as 'verify'",
    "redact": "the recording in the user's scope",
    "export prepare": "the recordings in the user's scope",
    "export cancel": "the recordings in the user's scope",
    "export approve": "not the one who prepared it (unless `[handover] single_approval`)",
    "export refuse": "not the one who prepared it (unless `[handover] single_approval`)",
    "export list": "a team leader sees the own team's handovers only",
    "export register": "a team leader sees the own team's handovers only",
    "stats report": "counts every recording of the box; on record in the audit log",
    "cases list": "a team leader sees the cases with the own team's recordings (or that they opened)",
    "cases show": "the recordings in the user's scope (the auditor: all, as in the custody report)",
    "cases close": "a team leader: only a case whose held recordings are all the own team's; "
                   "a request's case closes with the request",
}

# Commands that take no login, and why. The unattended service's own work must stay runnable from a timer
# without a stored password; it shows no footage and no personal data and changes nothing the policy does
# not already demand. Whoever may run these is decided by who may read (or write) the data directory, like
# `kluis serve` itself.
_UNATTENDED = "the unattended service's own work, runnable from a timer"
_OVERVIEW = "what the overview shows every user, like `kluis status`"
_BACKUP = "public keys only: runs from a timer or when a USB disk is plugged in"
_SIMULATOR = "test and demo equipment: a simulated camera, not the box"
_ARCHIVE = "the central archive's own data directory, not a box"
NO_LOGIN: dict[str, str] = {
    "init": "creates the box and its first user: there is nobody to log in yet",
    "serve": "the service itself (discovery, offload, retention, web UI, sync)",
    "status": "what the overview shows every user, and the web UI certificate's fingerprint",
    "config check": "reads kluis.toml only, changes nothing, and must work when a bad setting stops the box",
    "cameras list": _OVERVIEW,
    "cameras alerts": _OVERVIEW,
    "axis list": _OVERVIEW,
    "sync status": _OVERVIEW,
    "verify": "checks every recording's files without the box key and shows no footage (`--deep` needs a "
              "login)",
    "retention status": _UNATTENDED,
    "retention run": _UNATTENDED,
    "sync run": _UNATTENDED,
    "audit checkpoint": _UNATTENDED + " (signs checkpoints as 'system')",
    "audit prune": _UNATTENDED + " (applies [audit] term_days under a pruning checkpoint signed as 'system'; "
                                 "shows no entry)",
    "sync enroll": "the archive's one-time token authorises it",
    "backup": _BACKUP,
    "backup journal": _BACKUP,
    "backup verify": _BACKUP,
    "backup list": _BACKUP,
    "backup push": _BACKUP,
    "backup ssh-key": "makes the box's own login key for a network target and prints its public half; no footage",
    "restore": "checks a keeper's password or the recovery key against the key slots inside the backup: "
               "there is no box yet to log in to",
    "update verify": "checks a bundle's signature against the release key; reads no footage",
    "update apply": "the release key's signature authorises it; run by whoever may write the service's venv "
                    "(root); the web UI only stages a checked bundle",
    "update build": "the maintainer's side: the release key never goes onto a box",
    "update keygen": "the maintainer's side: the release key never goes onto a box",
    "export verify": "what the receiver of a handover package runs",
    "export box-key": "prints the box's public signing key, for the receiver",
    "demo": "test and demo equipment: a temporary box and simulated cameras",
    "camera-sim": _SIMULATOR,
    "camera-sim record": _SIMULATOR,
    "axis-sim": _SIMULATOR,
    "usb ingest": "public keys only: runs from the udev unit when a registered camera is plugged in",
    "usb files": "lists what was left on the cameras; shows no footage",
    "usb profiles": "the camera profiles the box knows; no personal data",
    "archive init": _ARCHIVE,
    "archive token": _ARCHIVE,
    "archive serve": _ARCHIVE,
    "archive list": _ARCHIVE,
    "archive show": _ARCHIVE,
    "archive export": _ARCHIVE,
    "archive alerts": _ARCHIVE,
    "archive checkpoints": _ARCHIVE,
    "archive witness-restart": _ARCHIVE,
    "archive requisition add": _ARCHIVE,
    "archive requisition list": _ARCHIVE,
    "archive requisition close": _ARCHIVE,
}


@dataclass
class Actor:
    """Who acts in a command, as `act` established it."""
    name: str                       # for the audit log
    user: dict | None               # their users row (slot removed); None on the break-glass path
    identity: PrivateKey | None     # the box's private key, when the command needs it
    break_glass: bool = False


def act(box: Box, command: str, user: str | None, password_file: Path | None, recovery_key_file: Path | None,
        *, need_key: bool = False, check: Callable[[dict], None] | None = None,
        recording_id: str | None = None) -> Actor:
    """Establish who runs `command` and that their role allows it (COMMAND_PERMISSIONS).

    With a password: the role (and `check(user_row)`, e.g. purpose and scope) is checked before any
    password is asked, then the user logs in through appliance.users (lock-out after repeated wrong
    passwords; 'login' / 'login_failed' in the audit log, client 'cli').
    With --recovery-key-file: break-glass. No role check; the recovery key unlocks, and a 'break_glass'
    entry naming the command is committed before the command does anything. A wrong recovery key is on
    record too ('login_failed')."""
    permission = COMMAND_PERMISSIONS[command]
    name = acting_user(box, user)

    def refused(reason: str, exc: Exception) -> Exception:
        refusals.record(box, name, command, reason, str(exc), permission)
        return exc

    if recovery_key_file is not None:
        key = read_secret_file(recovery_key_file)
        try:
            identity = box.unlock_recovery(key)
        except WrongSecret as exc:
            with box.catalog.transaction():
                audit.record(box.catalog, actor=name, action="login_failed", client="cli",
                             details={"reason": "wrong recovery key", "command": command})
            raise refused(refusals.WRONG_RECOVERY_KEY, exc) from None
        with box.catalog.transaction():
            audit.record(box.catalog, actor=name, action="break_glass", recording_id=recording_id, client="cli",
                         details={"command": command, "permission": permission})
        return Actor(name, None, identity, break_glass=True)
    try:
        row = box.catalog.get_user(name)
    except NotFound as exc:
        raise refused(refusals.UNKNOWN_USER, exc) from None
    if row["disabled"]:
        raise refused(refusals.DISABLED, roles.Forbidden(f"user {name!r} is disabled"))
    if permission is not None:
        try:
            roles.require(row["role"], permission, name)
        except roles.Forbidden as exc:
            raise refused(refusals.ROLE, exc) from None
    if check is not None:
        try:
            check(row)
        except KluisError as exc:
            raise refused(refusals.CONDITION, exc) from None
    if need_key and not (row["slot"] or {}).get("sealed"):
        raise refused(refusals.NO_KEY_SLOT, KluisError(f"user {name!r} holds no key slot and cannot open recordings"))
    try:
        users.require_second_factor(box, row, command)  # [security] totp_required: set it up in the web UI first
    except KluisError as exc:
        raise refused(refusals.NO_SECOND_FACTOR, exc) from None
    try:
        started = users.login_start(box, name, "cli")  # refuses a locked account before a password is asked
    except users.LockedOut as exc:
        raise refused(refusals.LOCKED, exc) from None
    password = ask_password(password_file, f"Password for {name}")
    try:
        code = ask_code(name) if started and started.get("totp_secret") else None
    except KluisError as exc:
        raise refused(refusals.NO_CODE, exc) from None
    try:
        login = users.login(box, name, password, client="cli", code=code)
    except users.LockedOut as exc:  # this wrong password was the last one allowed
        raise refused(refusals.WRONG_CODE if code is not None else refusals.WRONG_PASSWORD, exc) from None
    except WrongSecret:
        left = users.MAX_FAILURES - box.catalog.get_user(name)["failed_logins"]
        raise refused(refusals.WRONG_CODE if code is not None else refusals.WRONG_PASSWORD,
                      WrongSecret(f"wrong password{' or code' if code is not None else ''} for {name!r} "
                                  f"({left} more wrong attempt(s) lock the account)")) from None
    return Actor(name, login.user, login.identity)


def ask_code(name: str) -> str:
    """The second factor of a user who set one up (typed: a code is good for 30 seconds only)."""
    if not sys.stdin.isatty():
        raise KluisError(f"{name} has a second factor: run in a terminal to type the code")
    return click.prompt(f"Code from the authenticator app for {name}")


def emit_json(value) -> None:
    import json

    click.echo(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def shows(text: Callable[[Any], None]):
    """For a command that shows something: adds --json. The command returns what it shows; with --json that
    goes out as JSON (emit_json), without it text(value) prints it for people."""

    def decorate(func):
        @click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
        @wraps(func)
        def wrapper(*args, as_json: bool, **kwargs) -> None:
            value = func(*args, **kwargs)
            if as_json:
                emit_json(value)
            else:
                text(value)

        return wrapper

    return decorate


def table(columns: list[str]) -> Callable[[list[dict]], None]:
    """A `shows` text that prints rows as a table of these columns."""
    return lambda rows: print_table(rows, columns)


def print_table(rows: list[dict], columns: list[str]) -> None:
    widths = {c: max([len(c)] + [len(str(r.get(c) if r.get(c) is not None else "")) for r in rows]) for c in columns}
    click.echo("  ".join(c.ljust(widths[c]) for c in columns).rstrip())
    for row in rows:
        cells = [str(row.get(c) if row.get(c) is not None else "") for c in columns]
        click.echo("  ".join(v.ljust(widths[c]) for v, c in zip(cells, columns)).rstrip())
