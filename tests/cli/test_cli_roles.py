"""The CLI obeys the same roles as the web UI: through the real `kluis` CLI, every command in
appliance.app.commands.common.COMMAND_PERMISSIONS against every role, checked against appliance.roles.

A refusal is one clear line, a non-zero exit, no traceback, no footage on stdout, and comes before any
password is asked (refused runs get no --password-file and no terminal: a prompt would fail otherwise).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import pytest

from appliance import audit, recordings, roles
from appliance.box import Box, init_box
from appliance.app.commands.common import COMMAND_PERMISSIONS
from appliance.keys import new_recovery_key
from tests.conftest import KLUIS, PASSWORD, USER_OF_ROLE, add_role_users, secret_file

KEEPER_NAME = "admin"
NAME_OF = {**USER_OF_ROLE, roles.KEEPER: KEEPER_NAME}
START = datetime(2026, 11, 20, 13, 5, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> tuple[Path, dict, str]:
    """A box with one user per role (tests/conftest.py ROLE_USERS, all with PASSWORD) and three
    recordings: the officer hh's own (Noord: hh's team, appliance/teams.py), another Noord officer's,
    and one of team Zuid. Returns (data dir, name -> recording id, recovery key)."""
    root = tmp_path_factory.mktemp("rolesbox")
    data = root / "data"
    box, recovery = init_box(data, KEEPER_NAME, PASSWORD, kdf_profile="interactive")
    box.close()
    add_role_users(data)
    ids = {}
    with Box(data) as box:
        for key, officer, team in (("own", "hh", None), ("noord", "P. Bakker", "Noord"), ("zuid", "de Vries", "Zuid")):
            clip = root / f"{key}.bin"
            clip.write_bytes(key.encode() * 5000)
            ids[key] = recordings.import_file(box, clip, camera="CAM001", officer=officer, start=START,
                                              end=START.replace(minute=7), actor=KEEPER_NAME).recording_id
            if team:  # these officers are no Kluis users: the import leaves their team unknown
                box.catalog.db.execute("UPDATE recordings SET team = ? WHERE id = ?", [team, ids[key]])
    return data, ids, recovery


@pytest.fixture
def data(template, tmp_path) -> Path:
    shutil.copytree(template[0], tmp_path / "data")
    return tmp_path / "data"


@pytest.fixture
def pw(tmp_path) -> Path:
    return secret_file(tmp_path / "pw.txt")


def start(*args) -> subprocess.Popen:
    # stdin is not a terminal: a command that tried to prompt for a password would fail, not hang.
    return subprocess.Popen(KLUIS + [str(a) for a in args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=os.environ)


def finish(proc: subprocess.Popen) -> tuple[int, bytes, str]:
    out, err = proc.communicate(timeout=120)
    return proc.returncode, out, err.decode(errors="replace")


def run(*args) -> tuple[int, bytes, str]:
    return finish(start(*args))


def assert_refused(result, *needles: str) -> str:
    code, out, err = result
    lines = [line for line in err.splitlines() if line.strip()]
    assert code != 0 and out == b"", (code, out[:100], err)
    assert "Traceback" not in err and len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def entries(data: Path, **filters) -> list[dict]:
    with Box(data) as box:
        return audit.entries(box.catalog, **filters)


def matrix_args(command: str, ids: dict, holds: dict, role: str) -> list:
    """The arguments that make `command` succeed for a role that may run it (holds: role -> hold id)."""
    own = ids["own"]  # in scope of the officer, the team leader (Noord) and the privacy officer
    return {
        "cat": ["cat", own, "--purpose", "training"],
        "hold add": ["hold", "add", own, "--purpose", "complaint", "--case", f"K-{role}"],
        "hold review": ["hold", "review", holds.get(role, 1)],
        "hold list": ["hold", "list", "--json"],
        "hold release": ["hold", "release", own, "--hold", holds.get(role, 1), "--reason", "klacht afgehandeld"],
        "retention report": ["retention", "report", "--json"],
        "audit show": ["audit", "show", "--json"],
        "audit export": ["audit", "export", "--csv"],
        "audit verify": ["audit", "verify"],
        "audit checkpoints": ["audit", "checkpoints", "--json"],
        "list": ["list", "--json"],
        "users list": ["users", "list", "--json"],
        "users edit": ["users", "edit", "admin", "--full-name", "A. de Beheerder", "--function", "beheerder"],
        "users totp-off": ["users", "totp-off", "admin"],
        "import": ["import", ids["clip"], "--camera", "CAMX", "--officer", "X", "--start", "2026-11-20T10:00:00Z",
                   "--end", "2026-11-20T10:01:00Z"],
        "axis connection-file": ["axis", "connection-file", "--site", f"W800 {role}",
                                 "--url", "https://kluis.local:8444/auth/v1.0"],
        "alerts list": ["alerts", "list", "--json"],
        # a one-word command: its first option stands where the others' second word does
        "register": ["register", "--dpia", "--out", str(Path(ids["clip"]).with_name(f"dpia-{role}.md"))],
        "reason set": ["reason", "set", own, "--reason", "threat", "--warnings", "1"],
        "category remove": ["category", "remove", own, "incident"],  # not in it: a change of nothing
        "category list": ["category", "list", own, "--json"],
    }[command]


MATRIX = ["cat", "hold add", "hold review", "hold list", "hold release", "retention report", "audit show",
          "audit export", "audit verify", "audit checkpoints", "list", "users list", "users edit", "users totp-off",
          "import", "axis connection-file", "alerts list", "register", "reason set", "category remove",
          "category list"]


def test_every_command_against_every_role(data, template, pw):
    clip = data.parent / "usb-clip.bin"
    clip.write_bytes(b"from a camera's USB storage" * 1000)
    ids = {**template[1], "clip": str(clip)}
    # The table under test is the one the CLI uses; every command with a role check is in the matrix
    # (users add, sync rewrap and verify --deep have tests of their own).
    # (kluis export ... is tested against every role in tests/handover/test_handover_cli.py.)
    assert set(COMMAND_PERMISSIONS) - set(MATRIX) == {"users add", "sync rewrap", "verify --deep"} | CAMERA_COMMANDS \
        | {c for c in COMMAND_PERMISSIONS if c.startswith("export ")} \
        | {c for c in COMMAND_PERMISSIONS if c.startswith("requests ")} \
        | {c for c in COMMAND_PERMISSIONS if c.startswith("cases ")} \
        | {"redact", "alerts test", "stats report", "category add"}  # category add: tests/cli/test_reason_category_cli.py; alerts test: tests/alerts/test_alerts_cli.py; requests: tests/requests/test_verzoeken_cli.py; cases: tests/cases/test_cases_cli.py; redact: tests/redaction/test_redactie_jobs.py; stats report: tests/statistics/test_council_report.py
    holds: dict[str, int] = {}
    refused_runs = []
    for command in MATRIX:
        permission = COMMAND_PERMISSIONS[command]
        for role in roles.ROLES:
            name = NAME_OF[role]
            args = matrix_args(command, ids, holds, role)
            if not roles.allowed(role, permission):
                # No password file: the refusal must come before a password is asked.
                refused_runs.append((command, role, [*args[:2], "--data", data, *args[2:], "--user", name]))
                continue
            code, out, err = run(*args[:2], "--data", data, *args[2:], "--user", name, "--password-file", pw)
            assert code == 0 and "Traceback" not in err, (command, role, err)
            if command == "hold add":
                holds[role] = int(out)
            if command == "cat":
                assert out == b"own" * 5000, (command, role)
            if command == "list":  # the user's scope, as on the web UI's Opnames page
                listed = json.loads(out)
                assert ids["own"] in [r["id"] for r in listed], (command, role)
                if role == roles.OFFICER:
                    assert {r["officer"] for r in listed} == {name}, listed
            if command == "hold list":
                assert {h["case_ref"] for h in json.loads(out)} == {"K-team_leader", "K-privacy_officer"}
            if command == "register":
                assert "Feitenblad voor de DPIA" in Path(args[-1]).read_text(), (command, role)
            if command == "axis connection-file":  # the file holds the new account's key
                assert json.loads(out)["BlobAPIUserName"] == f"w800-{role}".replace("_", "-"), out[:200]
    for i in range(0, len(refused_runs), 6):  # a few at a time: they are independent, start-up dominates
        batch = [(command, role, start(*args)) for command, role, args in refused_runs[i:i + 6]]
        for command, role, proc in batch:
            line = assert_refused(finish(proc), NAME_OF[role], "may not", COMMAND_PERMISSIONS[command])
            assert "password" not in line, (command, role, line)
    assert len(refused_runs) == sum(not roles.allowed(r, COMMAND_PERMISSIONS[c]) for c in MATRIX for r in roles.ROLES)
    # Who ran what, by the log: nobody who was refused logged in; every allowed run did.
    logins = [e["actor"] for e in entries(data, action="login")]
    for role in roles.ROLES:
        expected = sum(roles.allowed(role, COMMAND_PERMISSIONS[c]) for c in MATRIX)
        assert logins.count(NAME_OF[role]) == expected, (role, logins)
    assert not entries(data, action="login_failed")  # the keeper too logs in exactly for what it may do (above)
    assert [e["actor"] for e in entries(data, action="hold_release")] == ["tl", "fg"]
    assert {e["actor"] for e in entries(data, action="view")} == {"tl", "fg", "hh"}


def test_purpose_and_scope(data, template, pw):
    ids = template[1]

    def cat(rid, purpose, user, *extra):
        return run("cat", "--data", data, rid, "--purpose", purpose, "--case", "K-1", "--user", user, *extra)

    # The officer: own recordings, for training only.
    assert cat(ids["own"], "training", "hh", "--password-file", pw)[1] == b"own" * 5000
    assert_refused(cat(ids["own"], "complaint", "hh"), "hh", "purpose complaint")
    assert_refused(cat(ids["noord"], "training", "hh"), "hh", ids["noord"], "scope")
    # The team leader: the own team, by the recording's team or (without one) its officer's team.
    assert cat(ids["noord"], "complaint", "tl", "--password-file", pw)[1] == b"noord" * 5000
    assert_refused(cat(ids["zuid"], "complaint", "tl"), "tl", ids["zuid"], "scope")
    assert_refused(run("hold", "add", "--data", data, ids["zuid"], "--purpose", "complaint", "--case", "K",
                       "--user", "tl"), "tl", "scope")
    # As on the web, viewing for anything but training names the case.
    assert_refused(run("cat", "--data", data, ids["own"], "--purpose", "complaint", "--user", "fg"), "--case")
    # The privacy officer: every recording; the keeper: none.
    assert cat(ids["zuid"], "objection", "fg", "--password-file", pw)[1] == b"zuid" * 5000
    assert_refused(cat(ids["own"], "complaint", KEEPER_NAME), "admin (role keeper) may not", "recordings.view")
    # Holds listed are those in scope: the team leader does not see Zuid's.
    for rid, user in ((ids["zuid"], "fg"), (ids["own"], "fg")):
        assert run("hold", "add", "--data", data, rid, "--purpose", "complaint", "--case", "K-2", "--user", user,
                   "--password-file", pw)[0] == 0
    code, out, _ = run("hold", "list", "--data", data, "--json", "--user", "tl", "--password-file", pw)
    assert code == 0 and [h["recording_id"] for h in json.loads(out)] == [ids["own"]]
    # Refusals ask no password and leave no login entry; the views that happened are on record.
    assert {e["actor"] for e in entries(data, action="login")} == {"hh", "tl", "fg"}
    assert [(e["actor"], e["recording_id"]) for e in entries(data, action="view")] == \
        [("hh", ids["own"]), ("tl", ids["noord"]), ("fg", ids["zuid"])]


def test_break_glass_with_the_recovery_key(data, template, tmp_path):
    ids, recovery = template[1], template[2]
    key = tmp_path / "recovery.txt"
    key.write_text(recovery + "\n")
    # The keeper may not view, but the recovery key is the audited way past the roles.
    code, out, err = run("cat", "--data", data, ids["zuid"], "--purpose", "requisition", "--case", "OM-7",
                         "--recovery-key-file", key)
    assert code == 0 and out == b"zuid" * 5000, err
    trail = [(e["action"], e["actor"]) for e in entries(data, recording_id=ids["zuid"])]
    assert trail[-2:] == [("break_glass", KEEPER_NAME), ("view", KEEPER_NAME)]
    glass = entries(data, action="break_glass")[0]
    assert glass["details"] == {"command": "cat", "permission": roles.RECORDINGS_VIEW}
    assert entries(data, action="view")[0]["details"]["recovery_key"] is True
    # The auditor's break-glass read of the log is on record too; a wrong recovery key is refused and logged.
    assert run("audit", "show", "--data", data, "--json", "--user", "au", "--recovery-key-file", key)[0] == 0
    other = tmp_path / "other.txt"
    other.write_text(new_recovery_key() + "\n")
    bad = run("cat", "--data", data, ids["zuid"], "--purpose", "requisition", "--case", "OM-7",
              "--recovery-key-file", other)
    assert_refused(bad, "wrong recovery key")
    assert entries(data, action="login_failed")[-1]["details"] == {"reason": "wrong recovery key", "command": "cat"}
    assert [e["actor"] for e in entries(data, action="break_glass")] == [KEEPER_NAME, "au"]


def test_wrong_passwords_lock_the_account(data, template, tmp_path, pw):
    rid = template[1]["own"]
    wrong = tmp_path / "wrong.txt"
    wrong.write_text("not the password\n")
    args = ["cat", "--data", data, rid, "--purpose", "training", "--user", "hh"]
    lines = [assert_refused(run(*args, "--password-file", wrong)) for _ in range(5)]
    assert "wrong password for 'hh' (4 more" in lines[0]
    assert "locked" in lines[4]
    # Locked: even the right password is refused now, without being asked for.
    assert "locked" in assert_refused(run(*args))
    assert "locked" in assert_refused(run(*args, "--password-file", pw))
    failed = entries(data, action="login_failed")
    assert [e["actor"] for e in failed] == ["hh"] * 5 and failed[-1]["client"] == "cli"
    assert failed[-1]["details"]["locked_until"]
    assert not entries(data, action="view")


def test_unattended_commands_need_no_login(data):
    """retention status/run and audit checkpoint are the service's own work: no user, no password."""
    for args in (["retention", "status", "--json"], ["retention", "run", "--dry-run"], ["audit", "checkpoint"]):
        code, _out, err = run(*args[:2], "--data", data, *args[2:])
        assert code == 0, (args, err)
    assert not entries(data, action="login")


def test_verify_deep_for_any_key_holder(data, pw):
    """verify --deep shows no footage: any user whose slot opens the box key may run it; the auditor,
    who holds no key, is told so before a password is asked."""
    code, out, err = run("verify", "--data", data, "--user", "hh", "--password-file", pw)
    assert code == 0 and b"ok: 3 recording(s), hashes and every chunk's tag checked" in out, err
    assert_refused(run("verify", "--data", data, "--user", "au", "--deep"), "no key slot")
    assert [e["actor"] for e in entries(data, action="verify")] == ["hh"]


def test_users_add_and_sync_rewrap_are_the_keepers(data, pw, tmp_path):
    """The other two commands of the table: enrolling users and re-sealing file keys for the archive."""
    new_pw = tmp_path / "new.txt"
    new_pw.write_text("a new long password\n")
    for role in roles.ROLES:
        name = NAME_OF[role]
        add = ["users", "add", "--data", data, f"new-{role}", "--role", "auditor", "--new-password-file", new_pw,
               "--user", name]
        rewrap = ["sync", "rewrap", "--data", data, "--user", name]
        if role == roles.KEEPER:
            assert run(*add, "--password-file", pw)[0] == 0
            code, out, err = run(*rewrap, "--password-file", pw)
            assert code == 0 and b"re-wrapped 0 recording(s)" in out, err
        else:
            assert_refused(run(*add), name, roles.USERS_MANAGE)
            assert_refused(run(*rewrap), name, roles.SETTINGS_MANAGE)
    assert [e["details"]["user"] for e in entries(data, action="user_add")][-1] == "new-keeper"
    assert {e["actor"] for e in entries(data, action="login")} == {KEEPER_NAME}


CAMERA_COMMANDS = {"cameras pair", "cameras unpair", "cameras assign", "cameras shift"}


def test_camera_commands_are_the_keepers(data):
    """Pairing and assigning cameras: roles.CAMERAS_MANAGE, the keeper's (who pairs for real in
    tests/dock); every other role is refused before a password is asked or a camera is contacted."""
    args = {"cameras pair": ["CAM001", "12345678"], "cameras unpair": ["CAM001"],
            "cameras assign": ["CAM001", "--pooled"], "cameras shift": ["CAM001", "--officer", "hh", "--from", "2026-11-20T07:00"]}
    assert set(args) == CAMERA_COMMANDS
    runs = [(command, role, start(*command.split(), "--data", data, *extra, "--user", NAME_OF[role]))
            for command, extra in args.items() for role in roles.ROLES if role != roles.KEEPER]
    for command, role, proc in runs:
        assert not roles.allowed(role, COMMAND_PERMISSIONS[command])
        assert_refused(finish(proc), NAME_OF[role], "may not", roles.CAMERAS_MANAGE)
    # The keeper gets past the role check to the camera itself (none is known on this box).
    assert_refused(run("cameras", "assign", "--data", data, "CAM001", "--pooled", "--user", KEEPER_NAME),
                   "no password given")
    assert not entries(data, action="login")
