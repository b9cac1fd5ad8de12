"""A redacted copy is not counted as a recording (issue 20): making it counts as its original's outcome
'redacted', a view of the copy counts as a view of the original, and the copy's deletion adds nothing. A
real copy through appliance.redaction (PyAV, a short MP4 of the dock's test footage, no face detector)."""

from __future__ import annotations

from datetime import timedelta

from appliance import footage, recordings, stats_report, sweep
from appliance.dock.footage import make_mp4
from appliance.redaction.derivative import redact
from appliance.redaction.plan import Plan
from tests.conftest import PASSWORD, add_role_users
from tests.moving_clock import T0


def test_a_redacted_copy_counts_for_its_original(sbox, clock, tmp_path):
    add_role_users(sbox.data_dir, "fg", "hh")
    start = T0 - timedelta(days=1)
    clip = make_mp4(tmp_path / "clip.mp4", 2, start, "CAM001")
    original = recordings.import_file(sbox, clip, camera="CAM001", officer="hh", start=start).recording_id
    key = sbox.unlock("fg", PASSWORD)
    copy = redact(sbox, key, original, Plan(detect_faces=False), actor="fg", purpose="access_request",
                  case_ref="VZ-2026-0001").recording_id
    footage.open_for_viewing(sbox, sbox.catalog.get_user("fg"), copy, "access_request", "VZ-2026-0001", identity=key)

    tables = stats_report.report(sbox.catalog, None).tables
    assert tables["per_month"] == [("2026-02", 1)]  # the copy is no recording of its own
    assert dict(tables["outcome"]) == {"redacted": 1}
    assert tables["views"] == [("access_request", 1)] and tables["source"] == [("import", 1)]
    linked = {r[0] for r in sbox.catalog.db.execute("SELECT DISTINCT recording_id FROM statistics")}
    assert linked == {original}

    clock.set(T0 + timedelta(days=40))  # the original's term is over; the copy is held for its request
    assert sweep.sweep(sbox).deleted == [original]
    after = stats_report.report(sbox.catalog, None).tables
    assert after["per_month"] == [("2026-02", 1)]
    assert dict(after["outcome"]) == {"redacted": 1, "deleted_term": 1}
