"""Every refused CLI command is on record (issue 19, defect 6): a wrong role, a wrong password, a wrong
second-factor code, a locked account, an unknown or disabled user each leave a 'command_refused' entry that
names the command and the user, through the real `kluis` CLI in a real process. Repeating a refused command
cannot flood the log: appliance/app/commands/refusals.py caps the entries per user and window."""

from __future__ import annotations

import os
import pty
import subprocess
import time
from pathlib import Path

from appliance import audit, users
from appliance.app.commands import refusals
from appliance.box import Box
from tests.conftest import KLUIS, add_role_users, secret_file


def refusals_of(data: Path, actor: str) -> list[dict]:
    with Box(data) as box:
        return audit.entries(box.catalog, action="command_refused", actor=actor)


def run(*args) -> subprocess.CompletedProcess:
    return subprocess.run(KLUIS + [str(a) for a in args], stdin=subprocess.DEVNULL, capture_output=True,
                          timeout=120)


def test_keeper_refused_by_role_is_on_record(box_dir, password_file):
    """The keeper may not read the audit log; the role check comes before the password, and before this
    fix left nothing in the log."""
    data = box_dir[0]
    result = run("audit", "show", "--data", data, "--user", "admin", "--password-file", password_file)
    assert result.returncode != 0 and b"Traceback" not in result.stderr
    [entry] = refusals_of(data, "admin")
    assert entry["details"]["command"] == "audit show" and entry["details"]["reason"] == refusals.ROLE
    assert entry["client"] == "cli" and entry["details"]["permission"]


def test_unknown_and_disabled_users_are_on_record(box_dir, password_file):
    data = box_dir[0]
    add_role_users(data, "au")
    with Box(data) as box:
        users.set_disabled(box, "admin", "au", True)
    run("audit", "show", "--data", data, "--user", "au", "--password-file", password_file)
    run("audit", "show", "--data", data, "--user", "nobody", "--password-file", password_file)
    assert [e["details"]["reason"] for e in refusals_of(data, "au")] == [refusals.DISABLED]
    assert [e["details"]["reason"] for e in refusals_of(data, "nobody")] == [refusals.UNKNOWN_USER]


def test_wrong_password_and_then_locked_account_are_on_record(box_dir, tmp_path, password_file):
    data = box_dir[0]
    add_role_users(data, "au")
    wrong = secret_file(tmp_path / "wrong.txt", "not the password at all")
    for _ in range(users.MAX_FAILURES):
        result = run("audit", "verify", "--data", data, "--user", "au", "--password-file", wrong)
        assert result.returncode != 0 and b"Traceback" not in result.stderr
    # Locked now: even the right password is refused before it is checked.
    result = run("audit", "verify", "--data", data, "--user", "au", "--password-file", password_file)
    assert result.returncode != 0 and b"locked" in result.stderr
    entries = refusals_of(data, "au")
    assert [e["details"]["reason"] for e in entries] == [refusals.WRONG_PASSWORD] * users.MAX_FAILURES + [refusals.LOCKED]
    assert {e["details"]["command"] for e in entries} == {"audit verify"}
    with Box(data) as box:  # the login's own entries are still there beside them
        assert len(audit.entries(box.catalog, action="login_failed", actor="au")) == users.MAX_FAILURES


def test_wrong_second_factor_code_is_on_record(box_dir, password_file):
    """A user with TOTP types a wrong code in a real terminal (a pty): refused, and on record."""
    data = box_dir[0]
    add_role_users(data, "au")
    secret = users.new_totp_secret()
    with Box(data) as box:
        users.enable_totp(box, "au", secret, users.totp_code(secret, int(time.time()) // users.TOTP_STEP_S))
    valid = {users.totp_code(secret, int(time.time()) // users.TOTP_STEP_S + d) for d in (-1, 0, 1, 2)}
    wrong = next(code for code in ("000000", "111111", "222222") if code not in valid)
    master, slave = pty.openpty()
    proc = subprocess.Popen(KLUIS + ["audit", "show", "--data", str(data), "--user", "au", "--password-file",
                                     str(password_file)], stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    os.close(slave)
    os.write(master, wrong.encode() + b"\n")
    _out, err = proc.communicate(timeout=120)
    os.close(master)
    assert proc.returncode != 0 and b"Traceback" not in err
    [entry] = refusals_of(data, "au")
    assert entry["details"] == {**entry["details"], "command": "audit show", "reason": refusals.WRONG_CODE}


def test_repeated_refusals_cannot_flood_the_log(box_dir, password_file):
    """More refusals than the cap, from real processes: the log holds PER_USER entries, the last saying
    until when further ones go unrecorded; the next user is still recorded."""
    data = box_dir[0]
    procs = [subprocess.Popen(KLUIS + ["audit", "export", "--csv", "--data", str(data), "--user", "admin",
                                       "--password-file", str(password_file)],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for _ in range(refusals.PER_USER + 3)]
    for proc in procs:
        _out, err = proc.communicate(timeout=120)
        assert proc.returncode != 0 and b"Traceback" not in err
    entries = refusals_of(data, "admin")
    assert len(entries) == refusals.PER_USER
    assert [bool(e["details"].get("throttled")) for e in entries] == [False] * (refusals.PER_USER - 1) + [True]
    add_role_users(data, "tl")
    run("audit", "show", "--data", data, "--user", "tl", "--password-file", password_file)
    assert len(refusals_of(data, "tl")) == 1
