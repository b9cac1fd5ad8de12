"""A user's full name and function: set by the keeper on /gebruikers and with `kluis users add/edit`,
refused (not cut) when too long, on record; an old catalog gains the columns empty, and the login name
stands in until they are filled."""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

from appliance import audit, users
from appliance.box import Box
from appliance.catalog import SCHEMA_VERSION
from tests.conftest import PASSWORD
from tests.web_helpers import csrf_of

RELEASE = Path(__file__).resolve().parents[1] / "backup" / "release" / "f82f3c0.tar.xz"


async def test_the_keeper_names_people_on_the_users_page(web):
    await web.as_role("keeper")
    page = await (await web.client.get("/gebruikers")).text()
    assert "Volledige naam" in page and "Functie" in page
    token = csrf_of(page)
    added = await web.client.post("/gebruikers", allow_redirects=False, data={
        "csrf": token, "name": "jdv", "role": "auditor", "password": "a long enough password",
        "full_name": "  Joke   de Vries ", "function": "auditor gemeentelijke handhaving"})
    assert added.status == 303
    row = users.get(web.box, "jdv")
    assert (row["full_name"], row["function"]) == ("Joke de Vries", "auditor gemeentelijke handhaving")
    page = await (await web.client.get("/gebruikers")).text()
    assert "<td>Joke de Vries</td>" in page and "<td>auditor gemeentelijke handhaving</td>" in page

    too_long = await web.client.post("/gebruikers/jdv/persoon", data={
        "csrf": token, "full_name": "J" * 121, "function": "auditor"})
    text = await too_long.text()
    assert too_long.status == 400 and "Een volledige naam is hoogstens 120 tekens" in text
    assert users.get(web.box, "jdv")["full_name"] == "Joke de Vries"  # refused, not cut

    changed = await web.client.post("/gebruikers/jdv/persoon", allow_redirects=False, data={
        "csrf": token, "full_name": "Joke de Vries-Smit", "function": ""})
    assert changed.status == 303
    row = users.get(web.box, "jdv")
    assert (row["full_name"], row["function"]) == ("Joke de Vries-Smit", None)
    assert users.person_label(row) == "Joke de Vries-Smit"
    [entry] = [e for e in audit.entries(web.box.catalog, action="user_change") if e["details"]["user"] == "jdv"]
    assert entry["details"] == {"user": "jdv", "full_name": "Joke de Vries-Smit", "function": None}


def test_users_add_and_edit_on_the_command_line(box_dir, kluis, password_file, tmp_path):
    data, _ = box_dir
    new_pw = tmp_path / "new.txt"
    new_pw.write_text("another long password\n")
    kluis("users", "add", "--data", data, "tl", "--role", "team_leader", "--team", "Noord",
          "--full-name", "Tom Lint", "--function", "teamleider handhaving",
          "--new-password-file", new_pw, "--password-file", password_file)
    out = kluis("users", "edit", "--data", data, "tl", "--function", "coördinator handhaving",
                "--password-file", password_file).stdout.decode()
    assert "Tom Lint (coördinator handhaving)" in out  # the name kept, the function changed
    listed = {u["name"]: u for u in json.loads(kluis("users", "list", "--data", data, "--json",
                                                     "--password-file", password_file).stdout)}
    assert (listed["tl"]["full_name"], listed["tl"]["function"]) == ("Tom Lint", "coördinator handhaving")
    assert listed["admin"]["full_name"] is None
    refused = kluis("users", "edit", "--data", data, "tl", "--full-name", "x" * 200,
                    "--password-file", password_file, check=False)
    assert refused.returncode != 0 and "at most 120" in refused.stderr.decode()
    # Only the keeper names people.
    refused = kluis("users", "edit", "--data", data, "admin", "--full-name", "Ik", "--user", "tl",
                    "--password-file", new_pw, check=False)
    assert refused.returncode != 0
    with Box(data) as box:
        assert box.catalog.get_user("admin")["full_name"] is None


def test_an_old_catalog_gains_empty_names_and_the_login_name_stands_in(tmp_path):
    with tarfile.open(RELEASE) as tar:
        tar.extractall(tmp_path, filter="data")
    data = tmp_path / "box"
    shutil.rmtree(tmp_path / "archive", ignore_errors=True)
    with Box(data) as box:
        assert box.catalog.version == SCHEMA_VERSION
        assert ("users", "person") in {tuple(r) for r in box.catalog.db.execute(
            "SELECT migration_set, name FROM schema_migrations")}
        fg = users.get(box, "fg")
        assert fg["full_name"] is None and fg["function"] is None
        assert users.person_label(fg) == "fg"
        assert box.unlock("fg", PASSWORD) is not None  # the rows are otherwise untouched
        users.set_person(box, "admin", "fg", "Fatima Genç", "privacybeheerder")
        assert users.person_label(users.get(box, "fg")) == "Fatima Genç (privacybeheerder)"
