"""kluis export through the real CLI: every command against every role that may not run it (refused in one
line, before any password, and on record), four eyes before a password, --from/--to, list and register."""

from __future__ import annotations

import json
import os
import subprocess

from click.testing import CliRunner

from appliance import audit, handover, roles
from appliance.app import cli
from appliance.box import Box
from appliance.app.commands.common import COMMAND_PERMISSIONS
from tests.conftest import KLUIS
from tests.handover.conftest import BASIS, CASE, RECEIVER
from tests import dutch_csv

NAME_OF_ROLE = {roles.KEEPER: "admin", roles.PRIVACY_OFFICER: "fg", roles.TEAM_LEADER: "tl", roles.OFFICER: "hh",
                roles.AUDITOR: "au"}


def run(*args, password_file=None) -> tuple[int, str, str]:
    """The `kluis` command in-process (click's runner: the same code as the installed command, without a
    Python start per call), with no terminal: a command that tried to prompt for a password would fail."""
    extra = ["--password-file", str(password_file)] if password_file else []
    result = CliRunner().invoke(cli.main, [str(a) for a in args] + extra, input=None)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def run_process(*args, password_file=None) -> tuple[int, str, str]:
    """The real installed CLI in a subprocess, for the end-to-end case."""
    extra = ["--password-file", str(password_file)] if password_file else []
    result = subprocess.run(KLUIS + [str(a) for a in args] + extra, stdin=subprocess.DEVNULL, capture_output=True,
                            timeout=120, env=os.environ)
    return result.returncode, result.stdout.decode(), result.stderr.decode()


def refused_line(result) -> str:
    code, out, err = result
    lines = [line for line in err.splitlines() if line.strip()]
    assert code != 0 and out == "" and "Traceback" not in err and len(lines) == 1, (code, out, err)
    return lines[0]


def denials(data) -> list[dict]:
    """The refusals of export commands on record: handover_denied, and command_refused for the custody report
    (a command of the log's readers, refused as every other such command)."""
    with Box(data) as box:
        return audit.entries(box.catalog, action="handover_denied") + [
            e for e in audit.entries(box.catalog, action="command_refused") if e["details"]["command"] == "export custody"]


def prepare_args(data, rid, *extra):
    return ["export", "prepare", "--data", data, rid, "--receiver", RECEIVER, "--basis", BASIS, "--case", CASE,
            "--purpose", "vordering OM", "--unencrypted", *extra]


def test_every_export_command_is_refused_to_roles_without_it_before_a_password(data, ids, pw, tmp_path):
    code, out, err = run(*prepare_args(data, ids["noord"], "--user", "fg"), password_file=pw)
    assert code == 0, err
    hid = out.strip()
    commands = {
        "export prepare": prepare_args(data, ids["noord"]),
        "export approve": ["export", "approve", "--data", data, hid, "--out", tmp_path / "p.zip", "--unencrypted"],
        "export refuse": ["export", "refuse", "--data", data, hid, "--reason", "nee"],
        "export cancel": ["export", "cancel", "--data", data, hid, "--reason", "nee"],
        "export list": ["export", "list", "--data", data, "--json"],
        "export register": ["export", "register", "--data", data, "--csv"],
        "export custody": ["export", "custody", "--data", data, "--recording", ids["noord"], "--out", tmp_path / "c.pdf"],
    }
    assert set(commands) == {c for c in COMMAND_PERMISSIONS if c.startswith("export ")}
    refusals = 0
    for command, args in commands.items():
        for role in roles.ROLES:
            if roles.allowed(role, COMMAND_PERMISSIONS[command]):
                continue
            line = refused_line(run(*args, "--user", NAME_OF_ROLE[role]))  # no password file given
            assert "may not" in line and COMMAND_PERMISSIONS[command] in line, line
            refusals += 1
    # prepare, cancel: keeper, officer, auditor; approve, refuse: all but the privacy officer;
    # list, register: keeper, officer; custody: keeper, team leader, officer
    assert refusals == 3 + 4 + 4 + 3 + 2 + 2 + 3
    entries = denials(data)
    assert len(entries) >= refusals
    assert {e["actor"] for e in entries} == {"admin", "hh", "au", "tl"}
    assert not (tmp_path / "p.zip").exists() and not (tmp_path / "c.pdf").exists()
    with Box(data) as box:
        assert handover.get(box, hid)["state"] == "prepared"
        assert not audit.entries(box.catalog, action="login", actor="hh")  # no one got as far as a password


def test_four_eyes_is_refused_before_the_password_and_on_record(data, ids, pw, tmp_path):
    code, out, err = run(*prepare_args(data, ids["noord"], "--user", "fg"), password_file=pw)
    hid = out.strip()
    before = len(denials(data))
    line = refused_line(run_process("export", "approve", "--data", data, hid, "--out", tmp_path / "p.zip",
                                    "--unencrypted", "--user", "fg"))
    assert "four eyes" in line and "fg" in line
    [entry] = denials(data)[before:]
    assert entry["details"]["step"] == "approve" and entry["recording_id"] == ids["noord"]
    code, out, err = run_process("export", "approve", "--data", data, hid, "--out", tmp_path / "p.zip",
                                 "--unencrypted", "--user", "fg2", password_file=pw)
    assert code == 0, err
    assert f"handover {hid} approved by fg2" in out and (tmp_path / "p.zip").exists()
    line = refused_line(run("export", "approve", "--data", data, hid, "--out", tmp_path / "q.zip", "--unencrypted",
                            "--user", "fg2", password_file=pw))
    assert "is approved, not awaiting approval" in line


def test_a_team_leader_prepares_for_the_own_team_only(data, ids, pw):
    line = refused_line(run(*prepare_args(data, ids["zuid"], "--user", "tl")))
    assert "not in their scope" in line
    assert denials(data)[-1]["recording_id"] == ids["zuid"]
    code, out, err = run(*prepare_args(data, ids["noord"], "--user", "tl"), password_file=pw)
    assert code == 0, err
    code, out, err = run("export", "list", "--data", data, "--json", "--user", "tl", password_file=pw)
    assert [h["id"] for h in json.loads(out)] == [out_id := json.loads(out)[0]["id"]] and out_id.startswith("OV-")


def test_from_and_to_as_seconds_or_clock_time(data, ids, pw):
    # noord starts 2026-11-20 13:05:00 UTC, 14:05:00 in the box's time zone (Europe/Amsterdam)
    code, out, err = run(*prepare_args(data, ids["noord"], "--from", "14:05:02", "--to", "6.5", "--user", "fg"),
                         password_file=pw)
    assert code == 0, err
    with Box(data) as box:
        [item] = handover.get(box, out.strip())["items"]
    assert (item["clip_from_s"], item["clip_to_s"]) == (2.0, 6.5)
    line = refused_line(run(*prepare_args(data, ids["noord"], ids["zuid"], "--from", "1", "--to", "2", "--user", "fg")))
    assert "exactly one" in line
    line = refused_line(run(*prepare_args(data, ids["noord"], "--from", "1", "--user", "fg")))
    assert "both --from and --to" in line


def test_refuse_cancel_list_and_register(data, ids, pw, tmp_path):
    hids = [run(*prepare_args(data, ids["noord"], "--user", "fg"), password_file=pw)[1].strip() for _ in range(2)]
    code, out, err = run("export", "refuse", "--data", data, hids[0], "--reason", "geen vordering", "--user", "fg2",
                         password_file=pw)
    assert code == 0 and "refused by fg2" in out, err
    code, out, err = run("export", "cancel", "--data", data, hids[1], "--reason", "dubbel", "--user", "fg",
                         password_file=pw)
    assert code == 0 and "cancelled by fg" in out, err
    code, out, err = run("export", "register", "--data", data, "--csv", "--out", tmp_path / "reg.csv", "--user", "au",
                         password_file=pw)
    assert code == 0, err
    rows = dutch_csv.records((tmp_path / "reg.csv").read_bytes(), handover.REGISTER_COLUMNS)
    assert [(r["id"], r["state"], r["refused_by"]) for r in rows] == [(hids[0], "refused", "fg2"),
                                                                     (hids[1], "cancelled", "fg")]
    code, out, err = run("export", "list", "--data", data, "--recording", ids["noord"], "--user", "au",
                         password_file=pw)
    assert code == 0 and hids[0] in out and hids[1] in out and "refused" in out, err


def test_the_team_leader_gets_no_whole_register_and_nobody_breaks_glass(data, ids, pw, tmp_path):
    line = refused_line(run("export", "register", "--data", data, "--csv", "--user", "tl", password_file=pw))
    assert "privacy officer and the auditor" in line
    assert denials(data)[-1]["actor"] == "tl" and denials(data)[-1]["details"]["step"] == "register"
    key = tmp_path / "recovery.txt"
    key.write_text("KLUIS-NOT-CHECKED\n")
    line = refused_line(run(*prepare_args(data, ids["noord"]), "--recovery-key-file", key))
    assert "not with the recovery key" in line
    assert denials(data)[-1]["recording_id"] == ids["noord"]
