"""`kluis reason set` and `kluis category add|remove|list` through the real CLI: an officer for their own
recording only, a team leader for the team's; a wrong reason or category is told before a password is asked;
no footage is read (no 'view' entry)."""

from __future__ import annotations

import json

from appliance import audit
from appliance.box import Box
from tests.conftest import add_role_users


def test_reason_and_categories_from_the_command_line(box_dir, kluis, password_file, tmp_path):
    data = box_dir[0]
    add_role_users(data, "hh", "tl")
    config = data / "kluis.toml"
    config.write_text(config.read_text().replace("[retention.categories]", "[retention.categories]\nincident = 90", 1))
    ids = []
    for n, officer in enumerate(("hh", "A. de Vries")):  # hh's own, and another officer's (no user: no team)
        clip = tmp_path / f"clip{n}.bin"
        clip.write_bytes(bytes([n]) * 20_000)
        ids.append(kluis("import", "--data", data, clip, "--camera", "CAM9", "--officer", officer, "--user", "admin",
                         "--password-file", password_file, "--start", "2026-12-01T10:00:00",
                         "--end", "2026-12-01T10:03:00").stdout.decode().strip())
    own, other = ids
    hh = ["--user", "hh", "--password-file", password_file]
    tl = ["--user", "tl", "--password-file", password_file]

    out = kluis("reason", "set", "--data", data, own, "--reason", "threat", "--warnings", "2", *hh).stdout.decode()
    assert out.strip() == f"{own}: threat, warnings 2"
    refused = kluis("reason", "set", "--data", data, other, "--reason", "threat", *hh, check=False)
    assert refused.returncode == 1 and "not in their scope" in refused.stderr.decode() and "Traceback" not in refused.stderr.decode()
    no_text = kluis("reason", "set", "--data", data, own, "--reason", "other", "--password-file", "/nonexistent",
                    check=False)
    assert no_text.returncode == 1 and "needs a short text" in no_text.stderr.decode()  # before any password is read
    kluis("reason", "set", "--data", data, own, "--reason", "other", "--text", "fietser op de stoep", *tl)

    out = kluis("category", "add", "--data", data, own, "incident", *tl).stdout.decode()
    assert "categories incident; term 90 days; deleted from 2027-03-01" in out
    unknown = kluis("category", "add", "--data", data, own, "onzin", "--password-file", "/nonexistent", check=False)
    assert unknown.returncode == 1 and "unknown retention category onzin (incident)" in unknown.stderr.decode()
    mine = kluis("category", "remove", "--data", data, own, "incident", *hh, check=False)
    assert mine.returncode == 1 and "only the team leader or the privacy officer" in mine.stderr.decode()
    [row] = json.loads(kluis("category", "list", "--data", data, own, "--json", *hh).stdout)
    assert (row["category"], row["term_days"], row["source"], row["set_by"]) == ("incident", 90, "cli", "tl")

    with Box(data) as box:
        recording = box.catalog.get_recording(own)
        assert (recording["reason"], recording["reason_text"], recording["warnings"]) == ("other", "fietser op de stoep", None)
        assert box.catalog.get_recording(other)["reason"] is None
        assert [e["actor"] for e in audit.entries(box.catalog, action="reason_set")] == ["hh", "tl"]
        assert audit.entries(box.catalog, action="view") == []
