"""kluis cases through the CLI: every command refused to the roles without its permission (one line, before any
password, on record as command_refused), and add, list, show (in the user's scope) and close for those with it."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from appliance import audit, cases, retention, roles
from appliance.app import cli
from appliance.app.commands.common import COMMAND_PERMISSIONS
from appliance.box import Box
from tests.handover_box import fixed_clock

NAME_OF_ROLE = {roles.KEEPER: "admin", roles.PRIVACY_OFFICER: "fg", roles.TEAM_LEADER: "tl", roles.OFFICER: "hh",
                roles.AUDITOR: "au"}
ARGS = {"cases add": ["K-9", "--purpose", "complaint"], "cases edit": ["K-9", "--title", "x"], "cases list": [], "cases show": ["K-9"],
        "cases close": ["K-9"], "cases reopen": ["K-9", "--reason", "again"]}


def run(*args, password_file=None) -> tuple[int, str, str]:
    extra = ["--password-file", str(password_file)] if password_file else []
    result = CliRunner().invoke(cli.main, [str(a) for a in args] + extra, input=None)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("command", sorted(ARGS))
def test_every_cases_command_is_refused_to_roles_without_it(command, data, pw):
    assert COMMAND_PERMISSIONS[command] in (roles.CASES_READ, roles.CASES_MANAGE)
    refused_roles = [r for r in roles.ROLES if not roles.allowed(r, COMMAND_PERMISSIONS[command])]
    assert refused_roles  # the keeper and the officer at least
    for role in refused_roles:
        code, out, err = run(*command.split(), "--data", data, *ARGS[command], "--user", NAME_OF_ROLE[role],
                             password_file=pw)
        lines = [line for line in err.splitlines() if line.strip()]
        assert code != 0 and out == "" and len(lines) == 1 and "Traceback" not in err, (role, code, out, err)
        assert COMMAND_PERMISSIONS[command] in lines[0]
    with Box(data) as box:
        on_record = [(e["actor"], e["details"]["command"]) for e in audit.entries(box.catalog, action="command_refused")]
        assert on_record == [(NAME_OF_ROLE[r], command) for r in refused_roles]
        assert cases.find(box, "K-9") is None


def test_add_list_show_and_close_by_role(data, ids, pw):
    code, out, err = run("cases", "add", "--data", data, "K-9", "--purpose", "complaint", "--title", "Klacht",
                         "--user", "tl", password_file=pw)
    assert code == 0, err
    with Box(data, clock=fixed_clock) as box:
        assert cases.get(box, "K-9")["opened_by"] == "tl"
        for key in ("noord", "zuid"):
            retention.add_hold(box, ids[key], "complaint", "K-9", "fg")
    code, out, err = run("cases", "show", "--data", data, "k-9", "--json", "--user", "tl", password_file=pw)
    shown = json.loads(out)
    assert [r["id"] for r in shown["recordings"]] == [ids["noord"]] and shown["not_in_scope"] == 1
    code, out, err = run("cases", "list", "--data", data, "--json", "--user", "au", password_file=pw)
    assert [c["reference"] for c in json.loads(out)] == ["K-9"]
    # The team leader may not close a case that holds team Zuid's recording; the privacy officer may.
    code, out, err = run("cases", "close", "--data", data, "K-9", "--user", "tl", password_file=pw)
    assert code != 0 and "outside" in err
    code, out, err = run("cases", "close", "--data", data, "K-9", "--reason", "afgehandeld", "--user", "fg",
                         password_file=pw)
    assert code == 0 and "closed case K-9" in out, err
    with Box(data) as box:
        assert not [h for h in retention.active_holds(box.catalog) if h["case_ref"] == "K-9"]
        assert cases.get(box, "K-9")["close_reason"] == "case closed: afgehandeld"
