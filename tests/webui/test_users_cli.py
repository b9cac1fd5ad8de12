"""`kluis users add/list` and the users domain: key slots follow roles, the CLI obeys the roles table."""

from __future__ import annotations

import json

import pytest

from appliance import audit, roles, users
from appliance.box import Box
from appliance.errors import KluisError
from tests.conftest import PASSWORD


def test_users_add_wraps_a_slot_for_footage_roles_only(box_dir, kluis, password_file, tmp_path):
    data, _ = box_dir
    new_pw = tmp_path / "new.txt"
    new_pw.write_text("another long password\n")
    out = kluis("users", "add", "--data", data, "tl", "--role", "team_leader", "--team", "Noord",
                "--new-password-file", new_pw, "--password-file", password_file).stdout.decode()
    assert "tl" in out
    kluis("users", "add", "--data", data, "au", "--role", "auditor", "--new-password-file", new_pw,
          "--user", "admin", "--password-file", password_file)
    listed = {u["name"]: u for u in json.loads(kluis("users", "list", "--data", data, "--json", "--password-file", password_file).stdout)}
    assert listed["tl"]["role"] == "team_leader" and listed["tl"]["team"] == "Noord" and listed["tl"]["has_key"]
    assert listed["au"]["role"] == "auditor" and not listed["au"]["has_key"]
    with Box(data) as box:
        # The team leader's slot opens the box's key; the auditor's holds none.
        assert bytes(box.unlock("tl", "another long password").public_key) == bytes(box.public_key)
        with pytest.raises(KluisError):
            box.unlock("au", "another long password")
        assert [e["details"]["user"] for e in audit.entries(box.catalog, action="user_add")] == ["tl", "au"]
    table = kluis("users", "list", "--data", data, "--password-file", password_file).stdout.decode()
    assert "team_leader" in table and "auditor" in table


def test_users_add_needs_the_keeper_role_and_the_right_password(box_dir, kluis, password_file, tmp_path):
    data, _ = box_dir
    new_pw = tmp_path / "new.txt"
    new_pw.write_text("another long password\n")
    kluis("users", "add", "--data", data, "tl", "--role", "team_leader", "--team", "Noord",
          "--new-password-file", new_pw, "--password-file", password_file)
    refused = kluis("users", "add", "--data", data, "x", "--role", "officer", "--new-password-file", new_pw,
                    "--user", "tl", "--password-file", new_pw, check=False)
    assert refused.returncode == 1 and "may not" in refused.stderr.decode()
    kluis("users", "add", "--data", data, "au", "--role", "auditor", "--new-password-file", new_pw,
          "--password-file", password_file)
    no_slot = kluis("users", "add", "--data", data, "x", "--role", "auditor", "--new-password-file", new_pw,
                    "--user", "au", "--password-file", new_pw, check=False)
    assert no_slot.returncode == 1 and "may not" in no_slot.stderr.decode(), "the role is checked first"
    assert "Traceback" not in refused.stderr.decode()
    wrong = kluis("users", "add", "--data", data, "y", "--role", "officer", "--new-password-file", new_pw,
                  "--password-file", new_pw, check=False)
    assert wrong.returncode == 1 and "wrong password" in wrong.stderr.decode()
    short = tmp_path / "short.txt"
    short.write_text("short\n")
    too_short = kluis("users", "add", "--data", data, "z", "--role", "officer", "--new-password-file", short,
                      "--password-file", password_file, check=False)
    assert too_short.returncode == 1 and "at least" in too_short.stderr.decode()


def test_role_change_and_password_reset_move_the_key(box):
    identity = box.unlock("admin", PASSWORD)
    users.add_user(box, "admin", "kim", roles.AUDITOR, "first password!", identity=identity)
    with pytest.raises(KluisError, match="reset"):
        users.change_role(box, "admin", "kim", roles.PRIVACY_OFFICER)
    users.reset_password(box, "admin", "kim", "second password!", role=roles.PRIVACY_OFFICER, identity=identity)
    assert bytes(box.unlock("kim", "second password!").public_key) == bytes(box.public_key)
    users.change_role(box, "admin", "kim", roles.AUDITOR)
    with pytest.raises(KluisError):
        box.unlock("kim", "second password!")  # the key left the slot with the role
    assert users.login(box, "kim", "second password!").identity is None
    actions = [e["action"] for e in audit.entries(box.catalog) if (e["details"] or {}).get("user") == "kim"]
    assert actions == ["user_add", "key_slot_change", "role_change", "role_change"]
