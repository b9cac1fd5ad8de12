"""Reading the log at scale: a page is keyset-paged over an index per filter, and a download is read in
batches, so neither holds or sorts the whole log."""

from __future__ import annotations

from appliance import audit


def _fill(box, n: int) -> None:
    with box.catalog.transaction():
        for i in range(n):
            audit.record(box.catalog, actor=f"u{i % 3}", action="view" if i % 2 else "login", recording_id=f"r{i % 5}")


def test_pages_follow_each_other_without_gap_or_overlap(box):
    _fill(box, 37)
    for filters in ({}, {"action": "view"}, {"actor": "u1"}, {"recording_id": "r2"}):
        expected = [e["seq"] for e in audit.entries(box.catalog, newest_first=True, **filters)]
        seen, after = [], None
        while True:
            rows = audit.page(box.catalog, after=after, limit=4, **filters)
            seen += [r["seq"] for r in rows]
            if len(rows) < 4:
                break
            after = (rows[-1]["time"], rows[-1]["seq"])
        assert seen == expected, filters


def test_each_entry_reads_in_batches_and_misses_none(box):
    _fill(box, 23)
    assert [e["seq"] for e in audit.each_entry(box.catalog, batch=5)] == [e["seq"] for e in audit.entries(box.catalog)]
    assert [e["seq"] for e in audit.each_entry(box.catalog, action="view", batch=3)] == \
        [e["seq"] for e in audit.entries(box.catalog, action="view")]


def test_each_filter_of_a_page_is_served_by_an_index(box):
    """The plan SQLite picks: no full scan of the log and no sort of the matches (the cost at 1M entries)."""
    sql = "EXPLAIN QUERY PLAN SELECT seq FROM audit_log WHERE {} ORDER BY time DESC, seq DESC LIMIT 101"
    for where, params in (("1", []), ("action = ?", ["view"]), ("actor = ?", ["u1"]), ("recording_id = ?", ["r1"]),
                          ("time >= ? AND time < ?", ["2026", "2027"]),
                          ("action = ? AND time <= ? AND (time < ? OR seq < ?)", ["view", "2027", "2027", 5])):
        plan = " ".join(row[-1] for row in box.catalog.db.execute(sql.format(where), params).fetchall())
        # in index order, stopped by the LIMIT; a filter searches its index instead of scanning the log
        assert "INDEX" in plan and "TEMP B-TREE" not in plan, (where, plan)
        assert where == "1" or "SEARCH" in plan, (where, plan)
