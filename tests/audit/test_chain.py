"""The audit log's hash chain and signed checkpoints on a real catalog file."""

from __future__ import annotations

import sqlite3

from appliance import audit
from appliance.box import Box
from appliance.purposes import PURPOSES, parse_purpose


def _fill(box: Box, n: int = 5) -> None:
    for i in range(n):
        audit.record(box.catalog, actor="admin", action="view", recording_id=f"rec{i}", purpose="complaint",
                     case_ref=f"K-{i}", client="cli", details={"n": i, "note": "één"}, clock=box.clock)


def test_record_chains_and_verifies(box):
    _fill(box)
    rows = audit.entries(box.catalog)
    assert [r["seq"] for r in rows] == [1, 2, 3, 4, 5]
    assert rows[0]["prev_hash"] == audit.GENESIS
    assert all(rows[i]["prev_hash"] == rows[i - 1]["hash"] for i in range(1, 5))
    assert rows[2]["details"] == {"n": 2, "note": "één"}
    report = audit.verify(box.catalog, box.signing_key().verify_key)
    assert report.ok and report.count == 5 and report.first_bad is None


def test_edit_is_detected_and_named(box):
    _fill(box)
    conn = sqlite3.connect(box.data_dir / "catalog.db")
    conn.execute("DROP TRIGGER audit_log_no_update")
    conn.execute("UPDATE audit_log SET purpose = 'training' WHERE seq = 3")
    conn.commit()
    conn.close()
    report = audit.verify(box.catalog, box.signing_key().verify_key)
    assert not report.ok and report.first_bad == 3


def test_triggers_refuse_changes(box):
    _fill(box, 1)
    conn = sqlite3.connect(box.data_dir / "catalog.db")
    try:
        conn.execute("DELETE FROM audit_log")
    except sqlite3.IntegrityError as exc:
        assert "append-only" in str(exc)
    else:
        raise AssertionError("delete from audit_log was allowed")
    finally:
        conn.close()


def test_purposes_contract():
    assert set(PURPOSES) == {"police_report", "complaint", "access_request", "requisition", "objection", "training"}
    assert PURPOSES["requisition"].nl == "vordering OM"
    assert parse_purpose("Klacht") == "complaint"
    assert parse_purpose("police_report") == "police_report"


def test_entries_take_the_box_clock(box_dir):
    from datetime import datetime, timezone

    fixed = datetime(2031, 5, 6, 7, 8, 9, 123000, tzinfo=timezone.utc)
    with Box(box_dir[0], clock=lambda: fixed) as box:
        audit.record(box.catalog, actor="admin", action="login", client="10.0.0.9")
        [entry] = audit.entries(box.catalog)
    assert entry["time"] == "2031-05-06T07:08:09.123Z"
