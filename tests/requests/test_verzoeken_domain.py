"""The register of requests on a real catalog with a clock the test moves: search-and-hold, deadline,
answering, the normal term afterwards, an upheld objection, linking and unlinking, all audited."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from appliance import access_requests as ar
from appliance import audit, retention, sweep
from appliance.box import Box
from appliance.errors import KluisError, NotFound
from verzoeken_helpers import INCIDENT, store


@pytest.fixture
def qbox(box_dir, clock) -> Box:
    with Box(box_dir[0], clock=clock) as opened:
        yield opened


def actions(box: Box, **filters) -> list[tuple]:
    return [(e["action"], e["recording_id"], e["case_ref"]) for e in audit.entries(box.catalog, **filters)]


@pytest.mark.parametrize("received, months, deadline", [
    ("2027-01-31", 1, "2027-02-28"), ("2028-01-31", 1, "2028-02-29"), ("2026-03-31", 1, "2026-04-30"),
    ("2026-12-15", 1, "2027-01-15"), ("2026-11-21", 2, "2027-01-21"), ("2026-08-31", 6, "2027-02-28"),
])
def test_deadline_is_calendar_months_later_clamped_to_the_months_last_day(received, months, deadline):
    assert ar.add_months(date.fromisoformat(received), months) == date.fromisoformat(deadline)


def test_answered_request_holds_then_releases_and_the_normal_term_applies(qbox, clock, tmp_path):
    inside = store(qbox, tmp_path, INCIDENT - timedelta(seconds=30))             # spans 14:05
    near = store(qbox, tmp_path, INCIDENT + timedelta(minutes=14))               # starts in the window
    outside = store(qbox, tmp_path, INCIDENT + timedelta(minutes=16))            # starts after it
    other_cam = store(qbox, tmp_path, INCIDENT, camera="CAM009", officer="de Vries")

    done = ar.register(qbox, requester="P. de Boer", kind="inzage", received_on=date(2026, 11, 21),
                       given_time=INCIDENT, actor="admin", place="Oudegracht bij de Bakkerbrug", camera="cam001")
    req = done.request
    assert req["ref"] == f"VZ-2026-{req['id']:04d}" and req["kind"] == "access_request"
    assert {m["id"] for m in done.matches} == {inside, near}  # camera filter is case-insensitive; 16 min is out
    assert "as text" in done.place_note  # a place as text narrows nothing; a point on the map does
    # Held for the request: purpose inzageverzoek, the request's reference as case reference.
    for rid in (inside, near):
        (hold,) = retention.active_holds(qbox.catalog, rid)
        assert (hold["purpose"], hold["case_ref"], hold["placed_by"]) == ("access_request", req["ref"], "admin")
        assert retention.delete_after(qbox, rid) is None
    assert retention.active_holds(qbox.catalog, outside) == [] and retention.active_holds(qbox.catalog, other_cam) == []
    # Deadline: a calendar month after receipt, days counted on the box's local date.
    assert req["deadline"] == "2026-12-21" and ar.days_left(qbox, req) == 29
    assert actions(qbox, action="request_add") == [("request_add", None, req["ref"])]
    assert {a[1] for a in actions(qbox, action="request_link")} == {inside, near}

    # 40 days on, the request is answered: the holds go, and the recordings (older than 28 days) with
    # them at the first sweep after the grace period.
    clock.advance(days=40)
    assert set(sweep.sweep(qbox).deleted) == {outside, other_cam}  # never held: gone at 28 days
    assert qbox.catalog.get_recording(inside)["state"] == "stored"  # held: the sweep left it
    closed = ar.close(qbox, req["ref"], "answered", "admin", decision_ref="AVG-2026-12")
    assert sorted(closed.released) == sorted([inside, near]) and not closed.deleted
    assert closed.request["status"] == "closed" and closed.request["outcome"] == "answered"
    for rid in (inside, near):
        assert retention.active_holds(qbox.catalog, rid) == []
        released = [e for e in audit.entries(qbox.catalog, recording_id=rid, action="hold_release")]
        assert released and released[-1]["case_ref"] == req["ref"] and "AVG-2026-12" in released[-1]["details"]["reason"]
    assert actions(qbox, action="request_close") == [("request_close", None, req["ref"])]
    grace = retention.current_policy(qbox).grace_days
    clock.advance(days=grace - 1)
    assert sweep.sweep(qbox).deleted == []        # not before the grace period after the release
    clock.advance(days=1, seconds=1)
    assert sorted(sweep.sweep(qbox).deleted) == sorted([inside, near])
    for rid in (inside, near):
        with pytest.raises(NotFound):
            qbox.catalog.get_recording(rid)
        (deleted,) = audit.entries(qbox.catalog, recording_id=rid, action="delete")
        assert deleted["actor"] == "system" and deleted["details"]["reason"] == "term expired after hold released"
    # The request remembers its recordings, now gone.
    assert {item["recording_id"]: item["recording"] for item in ar.links(qbox, req["id"])} == {inside: None, near: None}
    with pytest.raises(KluisError, match="closed"):
        ar.close(qbox, req["id"], "answered", "admin", decision_ref="again")


def test_upheld_objection_deletes_early_unless_an_aangifte_hold_keeps_it(qbox, clock, tmp_path):
    free = store(qbox, tmp_path, INCIDENT - timedelta(minutes=2), seconds=180)
    reported = store(qbox, tmp_path, INCIDENT + timedelta(minutes=5), camera="CAM002", officer="de Vries")
    retention.add_hold(qbox, reported, "police_report", "PV-2026-118", "tl")
    done = ar.register(qbox, requester="A. Bezwaarmaker", kind="bezwaar", received_on=date(2026, 11, 22),
                       given_time=INCIDENT, actor="fg")
    ref = done.request["ref"]
    assert {m["id"] for m in done.matches} == {free, reported}
    with pytest.raises(KluisError, match="cannot be closed as 'answered'"):
        ar.close(qbox, ref, "answered", "fg", "B-1")
    with pytest.raises(KluisError, match="decision reference"):
        ar.close(qbox, ref, "upheld", "fg", "")
    blob = qbox.data_dir / qbox.catalog.get_recording(free)["stored_path"]
    assert blob.exists()

    closed = ar.close(qbox, ref, "upheld", "fg", decision_ref="BZ-2026-0042")
    # The free one is gone, ahead of its 28 days, through the shredding path: key, row and blob.
    assert closed.deleted == [free]
    with pytest.raises(NotFound):
        qbox.catalog.get_recording(free)
    assert qbox.catalog.db.execute("SELECT count(*) FROM file_keys WHERE recording_id = ?", [free]).fetchone()[0] == 0
    assert not blob.exists()
    (record,) = retention.deletion_report(qbox.catalog)
    assert record["recording_id"] == free and "objection upheld" in record["reason"]
    (deleted,) = audit.entries(qbox.catalog, recording_id=free, action="delete")
    assert (deleted["actor"], deleted["case_ref"], deleted["purpose"]) == ("fg", "BZ-2026-0042", "objection")
    assert deleted["details"]["early"] is True
    # The aangifte keeps the other: not deleted, and the result says which hold (purpose, case reference).
    assert qbox.catalog.get_recording(reported)["state"] == "stored"
    assert [h["case_ref"] for h in retention.active_holds(qbox.catalog, reported)] == ["PV-2026-118"]
    assert [(h["purpose"], h["case_ref"]) for h in closed.blocked[reported]] == [("police_report", "PV-2026-118")]
    by_id = {item["recording_id"]: item for item in ar.links(qbox, done.request["id"])}
    assert by_id[free]["result"] == "deleted" and by_id[reported]["result"] == "blocked"
    assert by_id[reported]["result_detail"] == [{"hold": 1, "purpose": "police_report", "purpose_label": "aangifte",
                                                 "case_ref": "PV-2026-118"}]
    assert audit.entries(qbox.catalog, recording_id=reported, action="delete") == []
    # The request's own hold on the kept recording is released (the aangifte governs it now).
    assert actions(qbox, recording_id=reported, action="hold_release") == [("hold_release", reported, ref)]
    assert audit.verify(qbox.catalog, qbox.signing_key().verify_key).ok


def test_delete_early_names_the_holds_that_forbid_it(qbox, tmp_path):
    rid = store(qbox, tmp_path, INCIDENT)
    retention.add_hold(qbox, rid, "police_report", "PV-7", "tl")
    retention.add_hold(qbox, rid, "complaint", "K-3", "tl")
    with pytest.raises(sweep.Held) as refused:
        sweep.delete_early(qbox, rid, actor="fg", reason="objection upheld", decision_ref="B-9")
    assert "police_report PV-7" in str(refused.value) and "complaint K-3" in str(refused.value)
    assert qbox.catalog.get_recording(rid)["state"] == "stored"
    assert audit.entries(qbox.catalog, action="delete") == []


def test_link_and_unlink_are_audited_and_move_the_hold(qbox, clock, tmp_path):
    found = store(qbox, tmp_path, INCIDENT)
    elsewhere = store(qbox, tmp_path, INCIDENT + timedelta(hours=3), camera="CAM003")
    req = ar.register(qbox, requester="K. Klager", kind="klacht", received_on=date(2026, 11, 22),
                      given_time=INCIDENT, actor="fg").request
    ar.link(qbox, req["ref"], elsewhere, "fg")
    with pytest.raises(KluisError, match="linked to .* already"):
        ar.link(qbox, req["ref"], elsewhere, "fg")
    assert [h["purpose"] for h in retention.active_holds(qbox.catalog, elsewhere)] == ["complaint"]
    with pytest.raises(KluisError, match="reason"):
        ar.unlink(qbox, req["id"], found, "fg", " ")
    assert len(ar.unlink(qbox, req["id"], found, "fg", "andere persoon in beeld")) == 1
    assert retention.active_holds(qbox.catalog, found) == []
    assert actions(qbox, recording_id=found)[-4:] == [
        ("request_link", found, req["ref"]), ("hold_add", found, req["ref"]),
        ("request_unlink", found, req["ref"]), ("hold_release", found, req["ref"])]
    manual = audit.entries(qbox.catalog, recording_id=elsewhere, action="request_link")
    assert manual[-1]["details"] == {"request": req["id"], "how": "manual"}
    closed = ar.close(qbox, req["id"], "rejected", "fg", "K-BESL-1")
    assert closed.released == [elsewhere]  # the unlinked one is not the request's any more


def test_clock_uncertainty_of_a_camera_widens_its_window(qbox, clock, tmp_path):
    # CAM001's docks before and after the incident measured offsets 10 minutes apart (as the dock records
    # them at each arrival): its corrected times in between may be off by that much. A dock long ago
    # with a wild clock does not count.
    from appliance.dock import devices

    qbox.catalog.db["devices"].insert({"serial": "CAM001", "paired": 1})
    now = clock.now
    for at, offset in ((INCIDENT - timedelta(days=200), 5000.0), (INCIDENT - timedelta(days=1), -300.0),
                       (INCIDENT + timedelta(days=1), 300.0)):
        clock.now = at
        devices.record_dock(qbox, "CAM001", at - timedelta(seconds=offset), offset, "127.0.0.1")
    clock.now = now
    drifting = store(qbox, tmp_path, INCIDENT + timedelta(minutes=22))
    store(qbox, tmp_path, INCIDENT + timedelta(minutes=22), camera="CAM002")  # a steady clock: outside
    assert ar.clock_uncertainty_s(qbox, "CAM001", INCIDENT) == 600 and ar.clock_uncertainty_s(qbox, "CAM002") == 0
    found = {m["id"]: m for m in ar.search(qbox, INCIDENT, 15)}
    assert set(found) == {drifting} and found[drifting]["margin_s"] == 15 * 60 + 600
    # Between the old dock and the one before the incident the clock moved 5300 s; before any dock, only
    # docks within 30 days count (none here).
    assert ar.clock_uncertainty_s(qbox, "CAM001", INCIDENT - timedelta(days=2)) == 5300
    assert ar.clock_uncertainty_s(qbox, "CAM001", INCIDENT - timedelta(days=300)) == 0


def test_due_soon_lists_requests_near_and_past_their_deadline(qbox, clock):
    old = ar.register(qbox, requester="X", kind="inzage", received_on=date(2026, 10, 20), given_time=INCIDENT,
                      actor="fg").request
    near = ar.register(qbox, requester="Y", kind="inzage", received_on=date(2026, 10, 27), given_time=INCIDENT,
                       actor="fg").request
    ar.register(qbox, requester="Z", kind="inzage", received_on=date(2026, 11, 21), given_time=INCIDENT, actor="fg")
    due = ar.due_soon(qbox)
    assert [(r["ref"], r["days_left"]) for r in due] == [(old["ref"], -2), (near["ref"], 5)]


def test_bad_input_is_refused_before_anything_is_written(qbox):
    for kwargs, message in (
        ({"kind": "verzoek"}, "unknown kind"), ({"requester": " "}, "requester"),
        ({"received_on": date(2027, 1, 1)}, "future"), ({"window_minutes": -1}, "window"),
        ({"place": "a\x00b"}, "control characters"),
    ):
        args = {"requester": "R", "kind": "inzage", "received_on": date(2026, 11, 21), "given_time": INCIDENT,
                "actor": "fg", **kwargs}
        with pytest.raises(KluisError, match=message):
            ar.register(qbox, **args)
    assert qbox.catalog.db.execute("SELECT count(*) FROM requests").fetchone()[0] == 0


def test_a_derivative_held_for_the_request_follows_it(qbox, tmp_path):
    """A redacted derivative (appliance.redaction stores it with derived_from and holds it under the
    request's reference) is released with the request, or deleted with an upheld objection."""
    original = store(qbox, tmp_path, INCIDENT)
    for kind, outcome in (("inzage", "answered"), ("bezwaar", "upheld")):
        req = ar.register(qbox, requester="R", kind=kind, received_on=date(2026, 11, 22), given_time=INCIDENT,
                          actor="fg").request
        derivative = store(qbox, tmp_path, INCIDENT, camera="CAM001-R")
        qbox.catalog.db.execute("UPDATE recordings SET derived_from = ? WHERE id = ?", [original, derivative])
        retention.add_hold(qbox, derivative, req["kind"], req["ref"], "fg")
        closed = ar.close(qbox, req["id"], outcome, "fg", "B-1")
        assert retention.active_holds(qbox.catalog, derivative) == []
        if outcome == "upheld":
            assert set(closed.deleted) == {original, derivative}
        else:
            assert set(closed.released) == {original, derivative}


def test_a_real_redacted_version_made_for_an_objection_goes_with_it(qbox, tmp_path):
    """Through the redaction itself (appliance.redaction, no face detection to keep it quick): the
    derivative is made for the request, linked to its original, and deleted with the upheld objection."""
    from appliance import recordings, redaction, users
    from appliance.dock.footage import make_mp4
    from verzoeken_helpers import PASSWORD

    clip = make_mp4(tmp_path / "clip.mp4", 1, INCIDENT, "CAM001", width=160, height=120)
    original = recordings.import_file(qbox, clip, camera="CAM001", officer="jansen", start=INCIDENT,
                                      actor="admin").recording_id
    clip.unlink()
    req = ar.register(qbox, requester="B", kind="bezwaar", received_on=date(2026, 11, 22), given_time=INCIDENT,
                      actor="admin").request
    users.add_user(qbox, "admin", "fg", "privacy_officer", PASSWORD, identity=qbox.unlock("admin", PASSWORD))
    made = redaction.redact(qbox, qbox.unlock("fg", PASSWORD), original, redaction.Plan(detect_faces=False),
                            actor="fg", purpose="objection", case_ref=req["ref"], request_id=req["ref"])
    assert qbox.catalog.get_recording(made.recording_id)["derived_from"] == original
    assert [m["id"] for m in ar.search(qbox, INCIDENT, 15)] == [original]  # the copy is no footage of its own
    closed = ar.close(qbox, req["ref"], "upheld", "admin", "BZ-7")
    assert set(closed.deleted) == {original, made.recording_id}
    for rid in (original, made.recording_id):
        (entry,) = audit.entries(qbox.catalog, recording_id=rid, action="delete")
        assert entry["case_ref"] == "BZ-7"


def test_an_access_request_answered_with_a_passphrase_package_of_the_redacted_version(qbox, tmp_path):
    """The whole way through the other parts of issues 7 and 8: found and held -> redacted version made
    for the request -> handover package with an age passphrase (prepared by one privacy officer, approved
    by another) that opens with that passphrase -> answered -> every hold of the request released."""
    from appliance import handover, package_verify, recordings, redaction, users
    from appliance.dock.footage import make_mp4
    from verzoeken_helpers import PASSWORD

    admin = qbox.unlock("admin", PASSWORD)
    for name in ("fg", "fg2"):
        users.add_user(qbox, "admin", name, "privacy_officer", PASSWORD, identity=admin)
    clip = make_mp4(tmp_path / "clip.mp4", 1, INCIDENT, "CAM001", width=160, height=120)
    original = recordings.import_file(qbox, clip, camera="CAM001", officer="jansen", start=INCIDENT,
                                      actor="admin").recording_id
    clip.unlink()
    ref = ar.register(qbox, requester="P. de Boer", kind="inzage", received_on=date(2026, 11, 22),
                      given_time=INCIDENT, actor="fg").request["ref"]
    derivative = redaction.redact(qbox, qbox.unlock("fg", PASSWORD), original, redaction.Plan(detect_faces=False),
                                  actor="fg", purpose="access_request", case_ref=ref, request_id=ref).recording_id
    handover_id = handover.prepare(qbox, "fg", [derivative], receiver="P. de Boer (verzoeker)",
                                   basis="AVG art. 15 (inzageverzoek)", case_ref=ref, purpose="access_request",
                                   protection="passphrase")
    out = tmp_path / "pakket.age"
    made = handover.approve(qbox, handover_id, "fg2", qbox.unlock("fg2", PASSWORD), out)
    assert made["protection"] == "passphrase" and made["passphrase"]
    assert [f["recording_id"] for f in made["files"]] == [derivative]  # the redacted version, not the original
    assert package_verify.verify(out, passphrase=made["passphrase"]).ok
    closed = ar.close(qbox, ref, "answered", "fg", "AVG-2026-3")
    assert set(closed.released) == {original, derivative}
    for rid in (original, derivative):
        assert [h for h in retention.active_holds(qbox.catalog, rid) if h["case_ref"] == ref] == []


def test_deadline_window_and_warning_come_from_kluis_toml(qbox, tmp_path):
    from appliance import config

    config.write_template(qbox.data_dir, {"requests": {"deadline_months": 2, "window_minutes": 30, "warn_days": 0}})
    late = store(qbox, tmp_path, INCIDENT + timedelta(minutes=25))
    req = ar.register(qbox, requester="R", kind="inzage", received_on=date(2026, 10, 31), given_time=INCIDENT,
                      actor="fg")
    assert req.request["deadline"] == "2026-12-31" and req.request["window_minutes"] == 30
    assert [m["id"] for m in req.matches] == [late]
    assert ar.due_soon(qbox) == []  # 39 days left, warned 0 days ahead
    config.write_template(qbox.data_dir, {"requests": {"warn_days": 40}})
    assert [r["ref"] for r in ar.due_soon(qbox)] == [req.request["ref"]]
    (qbox.data_dir / "kluis.toml").write_text("[requests]\ndeadline_months = 0\n")
    with pytest.raises(KluisError, match="deadline_months"):
        ar.register(qbox, requester="R", kind="inzage", received_on=date(2026, 11, 1), given_time=INCIDENT, actor="fg")
