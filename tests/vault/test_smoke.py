"""The issue-2 path end to end through the real CLI: init, import, list, users add, cat, verify."""

import json


def test_import_list_cat_verify(tmp_path, kluis, password_file):
    data = tmp_path / "data"
    # Without the second factor a new box requires of keeper and privacy officer (typed at a terminal, set up
    # in the web UI: tests/cli/test_totp_required_cli.py): this path is about the recordings.
    out = kluis("init", "--data", data, "--password-file", password_file, "--kdf-profile", "interactive",
                "--totp-required", "")
    assert b"KLUIS-" in out.stdout
    clip = tmp_path / "clip.bin"
    clip.write_bytes(bytes(range(256)) * 9000)
    new_id = kluis("import", "--data", data, clip, "--camera", "CAM001", "--officer", "J. Jansen",
                   "--start", "2026-11-20T14:05:00+01:00", "--end", "2026-11-20T14:07:00+01:00",
                   "--password-file", password_file).stdout.decode().strip()
    # The keeper imports but neither lists nor views footage: a privacy officer, enrolled by the keeper, does.
    kluis("users", "add", "--data", data, "fg", "--role", "privacy_officer", "--new-password-file", password_file,
          "--password-file", password_file)
    rows = json.loads(kluis("list", "--data", data, "--json", "--user", "fg", "--password-file", password_file).stdout)
    assert [r["id"] for r in rows] == [new_id]
    assert rows[0]["start_time"] == "2026-11-20T13:05:00.000Z"
    plain = kluis("cat", "--data", data, new_id, "--purpose", "complaint", "--case", "KL-1", "--user", "fg",
                  "--password-file", password_file).stdout
    assert plain == clip.read_bytes()
    assert b"ok: 1 recording" in kluis("verify", "--data", data, "--password-file", password_file).stdout
