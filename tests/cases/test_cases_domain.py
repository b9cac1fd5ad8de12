"""Cases (appliance/cases.py, appliance/case_file.py) on a real box: the backfill of an upgraded catalog, a case
opened by the hold, handover or request that first names it, a case's file from all its sources with its audit
trail, the team leader's scope, the case-level handover, and closing (holds released, on record)."""

from __future__ import annotations

import sqlite3

import pytest

from appliance import access_requests as ar
from appliance import audit, case_file, cases, footage, handover, retention, roles, sweep
from appliance.box import Box
from appliance.errors import KluisError, NotFound
from tests.cases.conftest import BASIS, RECEIVER, request_case
from tests.conftest import PASSWORD
from tests.handover_box import fixed_clock


def user(box: Box, name: str) -> dict:
    return box.catalog.get_user(name)


def test_the_backfill_makes_cases_of_the_references_an_upgraded_box_has(data, ids):
    """A catalog from before cases, with holds, a handover and requests (one closed): the step opens a case for
    every distinct reference (case aside), with its first purpose and person, and closes the closed request's."""
    with Box(data, clock=fixed_clock) as box:
        db = box.catalog.db
        # What an older Kluis wrote: rows straight into its tables, no cases.
        db.execute("INSERT INTO holds (recording_id, purpose, case_ref, placed_by, placed_at) VALUES "
                   "(?, 'police_report', 'PV-2026-118', 'tl', '2026-11-20T15:00:00.000Z'), "
                   "(?, 'complaint', 'pv-2026-118', 'fg', '2026-11-21T10:00:00.000Z'), "
                   "(?, 'complaint', ' K-12 ', 'fg', '2026-11-21T11:00:00.000Z')",
                   [ids["noord"], ids["noord2"], ids["zuid"]])
        db.execute("INSERT INTO handovers (id, seq, state, receiver, basis, case_ref, purpose, protection, prepared_by, "
                   "prepared_at) VALUES ('OV-2026-0001', 1, 'prepared', 'Politie', 'vrijwillige verstrekking', "
                   "'OM-77', 'requisition', 'passphrase', 'fg2', '2026-11-21T12:00:00.000Z')")
        for n, status in ((1, "open"), (2, "closed")):
            db.execute("INSERT INTO requests (ref, kind, requester, received_on, deadline, given_time, window_minutes, "
                       "registered_by, registered_at, status, outcome, closed_by, closed_at) VALUES "
                       "(?, 'access_request', 'A. Burger', '2026-11-21', '2026-12-21', '2026-11-20T13:05:00.000Z', 15, "
                       "'fg', ?, ?, ?, ?, ?)",
                       [f"VZ-2026-000{n}", f"2026-11-21T0{n}:00:00.000Z", status,
                        "answered" if status == "closed" else None, "fg2" if status == "closed" else None,
                        "2026-11-22T09:00:00.000Z" if status == "closed" else None])
        db.conn.commit()
    conn = sqlite3.connect(data / "catalog.db")
    conn.executescript("DROP INDEX audit_log_case; DROP INDEX holds_case; DROP INDEX handovers_case; DROP TABLE cases; "
                       "DELETE FROM schema_migrations WHERE migration_set = 'cases';")
    conn.execute(f"PRAGMA user_version = {conn.execute('SELECT count(*) FROM schema_migrations').fetchone()[0]}")
    conn.commit()
    conn.close()

    with Box(data, clock=fixed_clock) as box:  # opening migrates: the step runs with its backfill
        found = {c["reference"]: c for c in cases.list_cases(box)}
        assert set(found) == {"PV-2026-118", "K-12", "OM-77", "VZ-2026-0001", "VZ-2026-0002"}
        pv = found["PV-2026-118"]
        assert (pv["kind"], pv["opened_by"], pv["opened_at"], pv["origin"]) == (
            "police_report", "tl", "2026-11-20T15:00:00.000Z", "backfill")
        assert cases.get(box, "pv-2026-118")["id"] == pv["id"]  # the lower-case hold is the same case
        assert (found["OM-77"]["kind"], found["OM-77"]["opened_by"]) == ("requisition", "fg2")
        assert found["VZ-2026-0001"]["closed_at"] is None
        assert (found["VZ-2026-0002"]["closed_by"], found["VZ-2026-0002"]["close_reason"]) == (
            "fg2", "request closed: answered")
        # Its file finds both holds, whatever their spelling.
        shown = case_file.open_file(box, user(box, "fg"), "PV-2026-118")
        assert [r["id"] for r in shown.recordings] == [ids["noord"], ids["noord2"]]


def test_a_hold_with_a_new_reference_opens_its_case_and_a_closed_case_takes_none(hbox, ids):
    box = hbox
    assert cases.find(box, "PV-2026-500") is None
    retention.add_hold(box, ids["noord"], "police_report", "PV-2026-500", "tl")
    case = cases.get(box, "PV-2026-500")
    assert (case["kind"], case["opened_by"], case["origin"], case["closed_at"]) == (
        "police_report", "tl", "hold", None)
    opened = audit.entries(box.catalog, action="case_open")
    assert [(e["actor"], e["case_ref"], e["purpose"], e["details"]["origin"]) for e in opened] == [
        ("tl", "PV-2026-500", "police_report", "hold")]
    # The same case, typed otherwise: no second case, and the hold names it as the case spells it.
    retention.add_hold(box, ids["noord2"], "police_report", "  pv-2026-500 ", "fg")
    assert len(cases.list_cases(box)) == 1
    assert {h["case_ref"] for h in retention.active_holds(box.catalog)} == {"PV-2026-500"}
    assert len(audit.entries(box.catalog, action="case_open")) == 1
    # A handover naming a new reference opens its case too, with its purpose.
    handover.prepare(box, "fg", [ids["zuid"]], receiver=RECEIVER, basis=BASIS, case_ref="OM-2026-9",
                     purpose="requisition", protection="passphrase")
    assert (cases.get(box, "OM-2026-9")["origin"], cases.get(box, "OM-2026-9")["kind"]) == ("handover", "requisition")

    case_file.close(box, "fg", user(box, "fg"), "PV-2026-500")
    with pytest.raises(cases.CaseClosed):
        retention.add_hold(box, ids["zuid"], "police_report", "PV-2026-500", "fg")
    assert not [h for h in retention.active_holds(box.catalog, ids["zuid"]) if h["case_ref"] == "PV-2026-500"]
    cases.reopen(box, "PV-2026-500", "fg", "new evidence")
    retention.add_hold(box, ids["zuid"], "police_report", "PV-2026-500", "fg")
    assert [e["details"]["reason"] for e in audit.entries(box.catalog, action="case_reopen")] == ["new evidence"]


def view(box: Box, recording_id: str, ref: str) -> None:
    """The privacy officer views a recording for the request, through the one gate (audited 'view')."""
    footage.open_for_viewing(box, user(box, "fg"), recording_id, "access_request", ref,
                             identity=box.unlock("fg", PASSWORD))


def test_a_case_file_lists_the_recordings_of_every_source_and_its_audit_trail(hbox, ids):
    box = hbox
    ref = request_case(box, ids)
    view(box, ids["noord2"], ref)
    shown = case_file.open_file(box, user(box, "fg"), ref)
    assert shown.case["origin"] == "request"
    by_id = {r["id"]: r["sources"] for r in shown.recordings}
    assert by_id == {ids["noord"]: ["hold", "request", "audit"], ids["noord2"]: ["hold", "audit"],
                     ids["zuid"]: ["hold", "handover", "audit"]}
    assert [r["id"] for r in shown.recordings] == [ids["noord"], ids["noord2"], ids["zuid"]]  # by start
    assert shown.span == (shown.recordings[0]["start_time"], shown.recordings[-1]["end_time"])
    assert [r["ref"] for r in shown.requests] == [ref] and len(shown.handovers) == 1
    assert {h["recording_id"] for h in shown.holds} == set(by_id)
    actions = [e["action"] for e in shown.trail]
    assert actions[:3] == ["case_open", "request_add", "request_link"]
    assert {"hold_add", "handover_prepare", "view"} <= set(actions)
    assert all(e["case_ref"].casefold() == ref.casefold() for e in shown.trail)


def test_a_team_leader_sees_the_own_teams_recordings_of_a_case_only(hbox, ids):
    box = hbox
    ref = request_case(box, ids)
    view(box, ids["noord"], ref)
    tl = user(box, "tl")
    shown = case_file.open_file(box, tl, ref)
    assert [r["id"] for r in shown.recordings] == [ids["noord"], ids["noord2"]]
    assert shown.hidden == 1
    assert {h["recording_id"] for h in shown.holds} == {ids["noord"], ids["noord2"]}
    assert shown.handovers == []  # the handover of the Zuid recording is not the team's
    trail = [(e["action"], e["recording_id"]) for e in shown.trail]
    assert ("handover_prepare", ids["zuid"]) not in trail and ("hold_add", ids["noord2"]) in trail
    assert ("view", ids["noord"]) not in trail  # another person's view: audit.read only
    # The privacy officer and the auditor see the whole case.
    assert case_file.open_file(box, user(box, "fg"), ref).hidden == 0
    assert case_file.open_file(box, user(box, "au"), ref).hidden == 0
    # A case of team Zuid only: not in the team leader's list, and not found on its page.
    retention.add_hold(box, ids["zuid"], "complaint", "K-ZUID-1", "fg")
    assert "K-ZUID-1" not in {c["reference"] for c in case_file.visible_cases(box, tl)}
    assert "K-ZUID-1" in {c["reference"] for c in case_file.visible_cases(box, user(box, "fg"))}
    with pytest.raises(NotFound):
        case_file.open_file(box, tl, "K-ZUID-1")
    # The officer has no cases at all.
    assert not case_file.visible_to(box, user(box, "hh"), cases.get(box, ref))


def test_the_case_level_handover_carries_every_recording_in_the_preparers_scope(hbox, ids):
    box = hbox
    cases.open_case(box, "PV-2026-700", "police_report", "fg", title="Mishandeling Oudegracht")
    for key in ("noord", "noord2", "zuid"):
        retention.add_hold(box, ids[key], "police_report", "PV-2026-700", "fg")
    by_tl = case_file.prepare_handover(box, user(box, "tl"), "PV-2026-700", receiver=RECEIVER, basis=BASIS,
                                       protection="passphrase")
    prepared = handover.get(box, by_tl)
    assert prepared["recording_ids"] == [ids["noord"], ids["noord2"]]
    assert (prepared["state"], prepared["case_ref"], prepared["purpose"], prepared["prepared_by"]) == (
        "prepared", "PV-2026-700", "police_report", "tl")
    by_fg = handover.get(box, case_file.prepare_handover(box, user(box, "fg"), "pv-2026-700", receiver=RECEIVER,
                                                         basis=BASIS, protection="passphrase"))
    assert by_fg["recording_ids"] == [ids["noord"], ids["noord2"], ids["zuid"]]
    # Four eyes stay: the preparer cannot approve it.
    with pytest.raises(handover.Denied):
        handover.check_approver(box, by_fg, "fg", "approve", None)
    assert {h["id"] for h in case_file.open_file(box, user(box, "fg"), "PV-2026-700").handovers} == {by_tl, by_fg["id"]}


def test_closing_a_case_releases_its_holds_on_record_and_keeps_its_history(hbox, ids):
    box = hbox
    for key in ("noord", "zuid"):
        retention.add_hold(box, ids[key], "police_report", "PV-2026-800", "fg")
    retention.add_hold(box, ids["noord"], "complaint", "K-OTHER", "fg")  # another case's hold stays
    # A team leader may not close a case that holds another team's recording.
    with pytest.raises(roles.Forbidden):
        case_file.close(box, "tl", user(box, "tl"), "PV-2026-800")
    assert cases.is_open(cases.get(box, "PV-2026-800"))
    with pytest.raises(roles.Forbidden):
        case_file.close(box, "au", user(box, "au"), "PV-2026-800")
    released = case_file.close(box, "fg", user(box, "fg"), "PV-2026-800", "verdict final")
    assert len(released) == 2
    held = {h["case_ref"] for h in retention.active_holds(box.catalog)}
    assert held == {"K-OTHER"}
    releases = audit.entries(box.catalog, action="hold_release")
    assert {e["details"]["reason"] for e in releases} == {"case closed: verdict final"}
    closed = audit.entries(box.catalog, action="case_close")
    assert [(e["actor"], e["case_ref"], e["details"]["holds_released"]) for e in closed] == [("fg", "PV-2026-800", 2)]
    case = cases.get(box, "PV-2026-800")
    assert (case["closed_by"], case["close_reason"]) == ("fg", "case closed: verdict final")
    shown = case_file.open_file(box, user(box, "fg"), "PV-2026-800")
    assert len(shown.recordings) == 2 and all(h["released_at"] for h in shown.holds)
    assert [e["action"] for e in shown.trail][-1] == "case_close"
    with pytest.raises(KluisError):
        case_file.close(box, "fg", user(box, "fg"), "PV-2026-800")
    with pytest.raises(cases.CaseClosed):
        case_file.prepare_handover(box, user(box, "fg"), "PV-2026-800", receiver=RECEIVER, basis=BASIS,
                                   protection="passphrase")


def test_a_requests_case_closes_with_the_request(hbox, ids):
    box = hbox
    ref = request_case(box, ids)
    with pytest.raises(KluisError, match="close the request"):
        case_file.close(box, "fg", user(box, "fg"), ref)
    ar.close(box, ref, "answered", "fg", decision_ref="BES-1")
    case = cases.get(box, ref)
    assert (case["closed_by"], case["close_reason"]) == ("fg", "request closed: answered")


def test_a_reference_in_other_capitals_names_the_same_cases_holds_everywhere(hbox, ids):
    """`kluis hold release --case pv-2026-9` releases the hold of PV-2026-9, and a sweep's early deletion
    ignores the caller's own case however it is typed: one rule (cases.same_ref) wherever a reference is compared."""
    box = hbox
    retention.add_hold(box, ids["noord"], "police_report", "PV-2026-9", "fg")
    retention.add_hold(box, ids["noord"], "complaint", "K-1", "fg")
    assert [h["case_ref"] for h in sweep.blocking_holds(box, ids["noord"], ignore_case_ref="pv-2026-9 ")] == ["K-1"]
    assert len(retention.release_hold(box, ids["noord"], "done", "fg", case_ref="pv-2026-9")) == 1
    assert [h["case_ref"] for h in retention.active_holds(box.catalog, ids["noord"])] == ["K-1"]
