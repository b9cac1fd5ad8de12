"""[security] totp_required on the command line: `kluis init` writes it for a new box (keeper and privacy
officer), and a command by a user of such a role without a second factor is refused, on record, with a
message in English and Dutch that says how to set it up. A box whose kluis.toml lacks it requires nothing."""

from __future__ import annotations

import tomllib
from datetime import datetime, timezone

from appliance import audit, config, users
from appliance.box import Box
from appliance.config_models import TOTP_REQUIRED_NEW_BOX


def _init(kluis, data, password_file, *extra):
    return kluis("init", "--data", data, "--password-file", password_file, "--kdf-profile", "interactive", *extra)


def test_new_box_requires_a_second_factor_of_keeper_and_privacy_officer(tmp_path, kluis, password_file):
    data = tmp_path / "data"
    out = _init(kluis, data, password_file).stdout.decode()
    assert "Second factor (TOTP) required for: keeper, privacy_officer" in out
    written = tomllib.loads((data / "kluis.toml").read_text())
    assert written["security"]["totp_required"] == TOTP_REQUIRED_NEW_BOX == ["keeper", "privacy_officer"]

    refused = kluis("users", "add", "--data", data, "au", "--role", "auditor", "--new-password-file", password_file,
                    "--password-file", password_file, check=False)
    message = refused.stderr.decode()
    assert refused.returncode != 0
    assert "admin (keeper) must use a second factor on this box before `kluis users add`" in message
    assert "/account" in message and "moet op deze kluis een tweede factor" in message
    assert "Traceback" not in message
    with Box(data) as box:
        failed = audit.entries(box.catalog, action="command_refused")
        assert [e["details"]["reason"] for e in failed] == ["no second factor"]
        assert failed[0]["details"]["command"] == "users add" and failed[0]["client"] == "cli"
        assert [u["name"] for u in users.list_users(box)] == ["admin"]  # nothing was done

        # Once the keeper has set it up (in the web UI), the command line asks for the code instead.
        secret = users.new_totp_secret()
        now = datetime.now(timezone.utc)
        users.enable_totp(box, "admin", secret, users.totp_code(secret, int(now.timestamp()) // 30))
    asks = kluis("users", "add", "--data", data, "au", "--role", "auditor", "--new-password-file", password_file,
                 "--password-file", password_file, check=False)
    assert asks.returncode != 0 and "run in a terminal to type the code" in asks.stderr.decode()
    assert "must use a second factor" not in asks.stderr.decode()


def test_a_role_not_named_and_a_box_that_opts_out_are_not_held_up(tmp_path, kluis, password_file):
    data = tmp_path / "data"
    _init(kluis, data, password_file, "--totp-required", "")
    assert "totp_required" not in tomllib.loads((data / "kluis.toml").read_text()).get("security", {})
    kluis("users", "add", "--data", data, "au", "--role", "auditor", "--new-password-file", password_file,
          "--password-file", password_file)
    assert b"ok:" in kluis("audit", "verify", "--data", data, "--user", "au", "--password-file", password_file).stdout


def test_unknown_role_is_refused_at_init(tmp_path, kluis, password_file):
    result = kluis("init", "--data", tmp_path / "data", "--password-file", password_file, "--kdf-profile",
                   "interactive", "--totp-required", "keeper,boss", check=False)
    assert result.returncode == 2 and "unknown role(s) boss" in result.stderr.decode()
    assert not (tmp_path / "data").exists()


def test_the_only_keeper_who_lost_the_phone_turns_it_off_with_the_recovery_key(box_dir, kluis, password_file,
                                                                                 tmp_path):
    data, recovery = box_dir
    with Box(data) as box:
        config.change(data, {"security": {"totp_required": ["keeper"]}})
        secret = users.new_totp_secret()
        now = datetime.now(timezone.utc)
        users.enable_totp(box, "admin", secret, users.totp_code(secret, int(now.timestamp()) // 30))
    key_file = tmp_path / "recovery.txt"
    key_file.write_text(recovery + "\n")
    out = kluis("users", "totp-off", "--data", data, "admin", "--recovery-key-file", key_file).stdout.decode()
    assert "Second factor of admin turned off; their role requires one" in out
    with Box(data) as box:
        assert users.get(box, "admin")["totp"] is False
        assert [e["action"] for e in audit.entries(box.catalog)][-2:] == ["break_glass", "user_change"]
        assert audit.entries(box.catalog, action="user_change")[-1]["details"] == {"user": "admin", "totp": False}
    # ... and until they set up a new one in the web UI, their password alone does not run commands.
    refused = kluis("users", "list", "--data", data, "--password-file", password_file, check=False)
    assert refused.returncode != 0 and "must use a second factor" in refused.stderr.decode()
