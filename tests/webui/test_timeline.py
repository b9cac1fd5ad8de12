"""appliance.timeline on a real box (the web suite's box: a user per role, real MP4 recordings): whose views a
user sees, where a view sits on the timeline, what a player's report puts on record, and that the lookup
uses the audit log's index by recording however long the log is."""

from __future__ import annotations

from appliance import audit, footage, timeline
from appliance.clock import to_iso
from tests.webui.conftest import PASSWORD, START


def _view(box, name: str, recording_id: str, purpose: str = "complaint", case_ref: str | None = "KL-1"):
    identity = box.unlock(name, PASSWORD)
    return footage.open_for_viewing(box, box.catalog.get_user(name), recording_id, purpose, case_ref,
                                    identity=identity, client="web 127.0.0.1")


def test_a_view_is_placed_where_its_player_played(web_box, rec_ids):
    rid = rec_ids["noord"]
    recording = web_box.catalog.get_recording(rid)
    opened = _view(web_box, "fg", rid)
    seq = timeline.record_played(web_box, "fg", recording, opened.audit_seq, "complaint", "KL-1", "10-12;11.5-13")
    assert seq is not None
    [view] = timeline.views(web_box, web_box.catalog.get_user("fg"), recording)
    assert (view["seq"], view["actor"], view["purpose"], view["case_ref"], view["own"]) == \
        (opened.audit_seq, "fg", "complaint", "KL-1", True)
    assert view["ranges"] == [[10.0, 13.0]]  # overlapping stretches merged
    assert view["at"] == to_iso(START.replace(second=10))
    entry = audit.entries(web_box.catalog, action=timeline.PLAYED)[-1]
    assert (entry["actor"], entry["recording_id"], entry["purpose"], entry["details"]) == \
        ("fg", rid, "complaint", {"view": opened.audit_seq, "ranges": [[10.0, 13.0]]})


def test_a_report_adds_an_entry_only_when_it_adds_a_stretch(web_box, rec_ids):
    rid = rec_ids["noord"]
    recording = web_box.catalog.get_recording(rid)
    opened = _view(web_box, "tl", rid)

    def report(text: str):
        return timeline.record_played(web_box, "tl", recording, opened.audit_seq, "complaint", "KL-1", text)

    assert report("0-4") is not None
    assert report("0-4") is None and report("1-3") is None  # already on record
    assert report("0-4;6-8") is not None
    assert report("") is None and report("<script>") is None and report("5-5") is None
    assert report("15-99999") is not None  # clipped to the recording's 20 s
    played = [e["details"]["ranges"] for e in audit.entries(web_box.catalog, action=timeline.PLAYED)]
    assert played == [[[0.0, 4.0]], [[0.0, 4.0], [6.0, 8.0]], [[15.0, 20.0]]]
    assert timeline.views(web_box, web_box.catalog.get_user("tl"), recording)[0]["ranges"] == \
        [[0.0, 4.0], [6.0, 8.0], [15.0, 20.0]]
    assert len(timeline.parse_ranges(";".join(f"{2 * i}-{2 * i + 0.5}" for i in range(10)), 20.0)) == 10
    assert len(timeline.parse_ranges(";".join(f"{i}.1-{i}.2" for i in range(80)), 1000)) == timeline.MAX_RANGES


def test_a_team_leader_sees_only_own_views_the_privacy_officer_everyones(web_box, rec_ids):
    rid = rec_ids["noord"]
    recording = web_box.catalog.get_recording(rid)
    by_fg = _view(web_box, "fg", rid, "access_request", "IV-88")
    by_tl = _view(web_box, "tl", rid)
    by_officer = _view(web_box, "jansen", rid, "training", None)
    for name, opened in (("fg", by_fg), ("tl", by_tl), ("jansen", by_officer)):
        timeline.record_played(web_box, name, recording, opened.audit_seq, "complaint", None, "1-2")
    seen = {name: [(v["actor"], v["purpose"]) for v in timeline.views(web_box, web_box.catalog.get_user(name), recording)]
            for name in ("fg", "tl", "jansen")}
    assert seen["fg"] == [("jansen", "training"), ("tl", "complaint"), ("fg", "access_request")]  # newest first
    assert seen["tl"] == [("tl", "complaint")]
    assert seen["jansen"] == [("jansen", "training")]
    assert timeline.may_see_others(web_box.catalog.get_user("fg"))
    assert not timeline.may_see_others(web_box.catalog.get_user("tl"))
    # other recordings' views are not this recording's
    assert timeline.views(web_box, web_box.catalog.get_user("fg"), web_box.catalog.get_recording(rec_ids["zuid"])) == []


def test_a_view_without_a_place_is_listed_unplaced_and_a_still_has_its_moment(web_box, rec_ids):
    rid = rec_ids["noord"]
    recording = web_box.catalog.get_recording(rid)
    _view(web_box, "fg", rid)
    with web_box.catalog.transaction():
        audit.record(web_box.catalog, actor="fg", action="view", recording_id=rid, purpose="access_request",
                     case_ref="IV-1", details={"still_at_s": 7.5, "for": "redaction"})
    still, plain = timeline.views(web_box, web_box.catalog.get_user("fg"), recording)
    assert still["ranges"] == [[7.5, 7.5]] and plain["ranges"] == [] and plain["at"] is None


def test_the_lookup_uses_the_index_by_recording(web_box, rec_ids):
    plan = " ".join(row[3] for row in web_box.catalog.db.execute(
        "EXPLAIN QUERY PLAN SELECT seq, time, actor, action, purpose, case_ref, details FROM audit_log "
        "WHERE recording_id = ? AND action IN (?, ?, ?, ?) ORDER BY seq DESC LIMIT ?",
        [rec_ids["noord"], *timeline.VIEW_ACTIONS, timeline.PLAYED, timeline.MAX_ENTRIES]).fetchall())
    assert "USING INDEX audit_log_recording (recording_id=?)" in plan, plan
    assert "SCAN" not in plan and "TEMP B-TREE" not in plan, plan
    # and the same with many entries of other recordings in the log (the planner's choice holds after ANALYZE)
    with web_box.catalog.transaction():
        for i in range(3000):
            audit.record(web_box.catalog, actor="tl", action="view", recording_id=f"other{i % 300}",
                         purpose="complaint", case_ref="K")
    web_box.catalog.db.execute("ANALYZE")
    recording = web_box.catalog.get_recording(rec_ids["noord"])
    assert timeline.views(web_box, web_box.catalog.get_user("fg"), recording) == []
    plan = " ".join(row[3] for row in web_box.catalog.db.execute(
        "EXPLAIN QUERY PLAN SELECT seq FROM audit_log WHERE recording_id = ? AND action IN (?, ?, ?, ?) "
        "AND actor = ? ORDER BY seq DESC LIMIT ?",
        [rec_ids["noord"], *timeline.VIEW_ACTIONS, timeline.PLAYED, "tl", 10]).fetchall())
    assert "USING INDEX audit_log_recording (recording_id=?)" in plan and "SCAN" not in plan, plan


def test_bookmarks_only_from_the_catalog_and_frame_rate_from_the_file(web_box, rec_ids):
    recording = web_box.catalog.get_recording(rec_ids["noord"])
    assert timeline.bookmarks(web_box, recording) == []  # an imported file brings none
    opened = _view(web_box, "fg", rec_ids["noord"])
    assert timeline.frame_rate(opened) == 10.0  # the fixture's clips are 10 fps
    assert timeline.duration_s(recording) == 20.0
