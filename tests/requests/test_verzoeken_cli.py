"""kluis requests through the real CLI on a real box: add (found and held), list, show, close; an upheld
objection says which hold kept a recording; the roles table holds for every subcommand."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from pypdf import PdfReader

from appliance import access_requests as ar
from appliance import audit, retention, roles, sweep
from appliance.box import Box
from appliance.app.commands.common import COMMAND_PERMISSIONS
from tests.conftest import ROLE_USERS, add_role_users
from verzoeken_helpers import Clock, store

TZ = ZoneInfo("Europe/Amsterdam")


def incident_now() -> datetime:
    """Two days ago at 14:05 local: the CLI runs on the real clock."""
    local = datetime.now(TZ).replace(hour=14, minute=5, second=0, microsecond=0) - timedelta(days=2)
    return local.astimezone(timezone.utc)


def test_add_list_show_close_then_the_normal_term(box_dir, privacy_officer, kluis, tmp_path):
    data = box_dir[0]
    incident = incident_now()
    with Box(data) as box:
        hit = store(box, tmp_path, incident - timedelta(seconds=20))
        miss = store(box, tmp_path, incident + timedelta(hours=2))
    received = (incident + timedelta(days=1)).astimezone(TZ).date()
    out = kluis("requests", "add", "--data", data, "--requester", "P. de Boer", "--kind", "inzage",
                "--received", received.isoformat(), "--time", incident.astimezone(TZ).strftime("%Y-%m-%dT%H:%M"),
                "--place", "Markt, bij de fontein", *privacy_officer).stdout.decode()
    assert "request VZ-" in out and "access request" in out
    assert f"deadline {ar.add_months(received, 1).isoformat()} (" in out and "day(s) left)" in out
    assert f"held  {hit}" in out and miss not in out
    assert "give it as a point on the map" in out
    assert "1 recording(s) found and held for VZ-" in out

    listed = json.loads(kluis("requests", "list", "--data", data, "--json", *privacy_officer).stdout)
    (row,) = listed
    assert (row["requester"], row["status"], row["linked"]) == ("P. de Boer", "open", 1)
    assert 27 <= row["days_left"] <= 31
    ref = row["ref"]
    table = kluis("requests", "list", "--data", data, *privacy_officer).stdout.decode()
    assert ref in table and "day(s) left" in table
    assert json.loads(kluis("requests", "list", "--data", data, "--search", "someone else", "--json",
                            *privacy_officer).stdout) == []
    shown = kluis("requests", "show", "--data", data, ref, *privacy_officer).stdout.decode()
    assert f"held      {hit}" in shown and "day(s) left" in shown and "Markt, bij de fontein" in shown
    assert f"no redacted version yet: kluis redact --data DIR ID --purpose access_request --request {ref}" in shown

    closed = kluis("requests", "close", "--data", data, str(row["id"]), "--outcome", "answered",
                   "--decision", "AVG-2026-77", *privacy_officer).stdout.decode()
    assert f"{ref} closed: answered (AVG-2026-77)" in closed and f"released  {hit}" in closed
    with Box(data) as box:
        assert retention.active_holds(box.catalog, hit) == []
        trail = [(e["action"], e["actor"], e["client"]) for e in audit.entries(box.catalog) if e["case_ref"] == ref]
        assert ("request_add", "fg", "cli") in trail and ("request_close", "fg", "cli") in trail
        assert ("hold_add", "fg", "cli") in trail and ("hold_release", "fg", "cli") in trail
    # The normal term applies again: after 28 days and the grace period, the sweep deletes it.
    later = Clock(datetime.now(timezone.utc) + timedelta(days=29 + 7))
    with Box(data, clock=later) as box:
        assert hit in sweep.sweep(box).deleted
    listed = json.loads(kluis("requests", "list", "--data", data, "--all", "--json", *privacy_officer).stdout)
    assert listed[0]["outcome"] == "answered" and listed[0]["decision_ref"] == "AVG-2026-77"
    assert "(deleted)" in kluis("requests", "show", "--data", data, ref, *privacy_officer).stdout.decode()


def test_extend_and_the_letters_through_the_cli(box_dir, privacy_officer, kluis, tmp_path):
    data = box_dir[0]
    incident = incident_now()
    received = (incident + timedelta(days=1)).astimezone(TZ).date()
    out = kluis("requests", "add", "--data", data, "--requester", "P. de Boer", "--kind", "inzage", "--received",
                received.isoformat(), "--time", incident.astimezone(TZ).strftime("%Y-%m-%dT%H:%M"),
                "--place-at", "geo:52.0907,5.1214", "--radius", "100", *privacy_officer).stdout.decode()
    assert "place 'geo:52.0907,5.1214': 0 recording(s)" in out
    ref = out.split()[1]
    first = ar.add_months(received, 1)
    out = kluis("requests", "extend", "--data", data, ref, "--months", "2", "--reason", "veel camera's",
                *privacy_officer).stdout.decode()
    assert f"deadline {first.isoformat()} extended by 2 month(s) to {ar.add_months(received, 3).isoformat()}" in out
    show = kluis("requests", "show", "--data", data, ref, *privacy_officer).stdout.decode()
    assert f"extended by 2 month(s) from {first.isoformat()}: veel camera's" in show
    assert "(point 52.0907, 5.1214, within 100 m)" in show
    refused = kluis("requests", "extend", "--data", data, ref, "--months", "1", "--reason", "x", *privacy_officer,
                    check=False)
    assert refused.returncode != 0 and "at most 2" in refused.stderr.decode()
    letter = tmp_path / "verlenging.pdf"
    kluis("requests", "letter", "--data", data, ref, "--kind", "extension", "--out", letter, *privacy_officer)
    text = " ".join(" ".join(page.extract_text().split()) for page in PdfReader(letter).pages)
    assert ref in text and "veel camera's" in text and "P. de Boer" in text
    refused = kluis("requests", "letter", "--data", data, ref, "--kind", "outcome", "--out", tmp_path / "x.pdf",
                    *privacy_officer, check=False)
    assert refused.returncode != 0 and "still open" in refused.stderr.decode() and not (tmp_path / "x.pdf").exists()
    with Box(data) as box:
        trail = [(e["action"], e["client"]) for e in audit.entries(box.catalog) if e["case_ref"] == ref]
        assert ("request_extend", "cli") in trail and ("request_letter", "cli") in trail


def test_upheld_objection_names_the_hold_that_kept_a_recording(box_dir, privacy_officer, kluis, tmp_path):
    data = box_dir[0]
    incident = incident_now()
    with Box(data) as box:
        free = store(box, tmp_path, incident - timedelta(seconds=20))
        kept = store(box, tmp_path, incident, camera="CAM002")
        retention.add_hold(box, kept, "police_report", "PV-2026-118", "tl")
    added = json.loads(kluis("requests", "add", "--data", data, "--requester", "B. Ezwaar", "--kind", "bezwaar",
                             "--received", datetime.now(TZ).date().isoformat(), "--time", incident.isoformat(),
                             "--json", *privacy_officer).stdout)
    assert {m["id"] for m in added["found"]} == {free, kept} and len(added["holds"]) == 2
    ref = added["request"]["ref"]
    refused = kluis("requests", "close", "--data", data, ref, "--outcome", "upheld", *privacy_officer, check=False)
    assert refused.returncode != 0 and "decision reference" in refused.stderr.decode()
    out = kluis("requests", "close", "--data", data, ref, "--outcome", "upheld", "--decision", "BZ-2026-0042",
                *privacy_officer).stdout.decode()
    assert f"deleted   {free} (ahead of its term)" in out
    assert f"kept      {kept}: not deleted, held for police report PV-2026-118" in out
    shown = kluis("requests", "show", "--data", data, ref, *privacy_officer).stdout.decode()
    assert "not deleted: held for aangifte PV-2026-118" in shown
    with Box(data) as box:
        (entry,) = audit.entries(box.catalog, recording_id=free, action="delete")
        assert (entry["actor"], entry["case_ref"], entry["client"]) == ("fg", "BZ-2026-0042", "cli")
        assert box.catalog.get_recording(kept)["state"] == "stored"


def test_every_requests_subcommand_is_refused_to_roles_without_the_permission(box_dir, password_file, kluis):
    data = box_dir[0]
    add_role_users(data, "tl", "au")
    commands = sorted(c for c in COMMAND_PERMISSIONS if c.startswith("requests "))
    assert commands == ["requests add", "requests close", "requests extend", "requests letter", "requests link",
                        "requests list", "requests show", "requests unlink"]
    args = {"requests add": ["--requester", "X", "--kind", "inzage", "--received", "2026-11-21", "--time",
                             "2026-11-20T14:05"],
            "requests close": ["1", "--outcome", "withdrawn"], "requests link": ["1", "abc"],
            "requests list": [], "requests show": ["1"], "requests unlink": ["1", "abc", "--reason", "x"],
            "requests extend": ["1", "--months", "1", "--reason", "x"],
            "requests letter": ["1", "--kind", "receipt", "--out", "/tmp/kluis-refused-letter.pdf"]}
    for name in ("tl", "au", "admin"):
        role = ROLE_USERS[name][0] if name in ROLE_USERS else roles.KEEPER
        assert not roles.allowed(role, roles.REQUESTS_MANAGE)
        for command in commands if name == "tl" else ["requests add", "requests list"]:  # bounded time
            result = kluis(*command.split(), "--data", data, *args[command], "--user", name,
                           "--password-file", password_file, check=False)
            assert result.returncode != 0 and "may not do this (requests.manage)" in result.stderr.decode(), (name, command)
    with Box(data) as box:  # refused before any password: no login was even attempted
        assert [e for e in audit.entries(box.catalog) if e["action"] in ("login", "login_failed")] == []
        assert box.catalog.db.execute("SELECT count(*) FROM requests").fetchone()[0] == 0
