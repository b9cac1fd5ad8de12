"""The Opnames queries: correct answers (overlap, scope, paging without gaps) and index use at scale.
Speed is measured in bench/bench_opnames.py; here only the query plans and a quick untimed bench run."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

from appliance import recording_search

ROOT = Path(__file__).resolve().parents[2]
FG = {"name": "fg", "role": "privacy_officer", "team": None}


def _fill(box, n: int) -> None:
    start = datetime(2026, 11, 1, tzinfo=timezone.utc)
    rows = []
    for i in range(n):
        s = start + timedelta(minutes=10 * i)
        length = timedelta(hours=5) if i == 7 else timedelta(minutes=3)  # one long recording
        rows.append({"id": f"r{i:05d}", "camera_serial": f"CAM{i % 4}", "officer": f"o{i % 5}", "team": f"t{i % 2}",
                     "start_time": s.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                     "end_time": (s + length).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                     "size": 1, "blob_size": 1, "sha256": f"{i:064x}", "stored_path": f"blobs/{i}",
                     "chunk_size": 65536, "ingested_at": "2026-11-01T00:00:00.000Z", "state": "stored",
                     "source": "import"})
    box.catalog.db["recordings"].insert_all(rows)


def test_time_range_finds_every_overlapping_recording_including_long_ones(box):
    _fill(box, 200)
    at = datetime(2026, 11, 1, 3, 0, tzinfo=timezone.utc)  # inside r00007 (01:10 to 06:10) only, and r00018 starts
    page = recording_search.search(box.catalog, FG, recording_search.Filters(start=at, end=at + timedelta(seconds=1)))
    assert {r["id"] for r in page.rows} == {"r00007", "r00018"}


def test_paging_walks_every_row_once_in_order(box):
    _fill(box, 230)
    seen = []
    for number in range(1, 6):
        page = recording_search.search(box.catalog, FG, recording_search.Filters(page=number, sort="officer", descending=False))
        seen += [(r["officer"], r["id"]) for r in page.rows]
    assert len(seen) == 230 and len(set(seen)) == 230
    assert [o for o, _ in seen] == sorted(o for o, _ in seen)
    team = recording_search.search(box.catalog, {"name": "x", "role": "team_leader", "team": "t1"}, recording_search.Filters())
    assert team.total == 115 and all(r["team"] == "t1" for r in team.rows)
    assert recording_search.choices(box.catalog, {"name": "x", "role": "team_leader", "team": "t1"})["teams"] == ["t1"]


def test_filters_use_indexes(box):
    _fill(box, 50)
    box.catalog.db.execute("ANALYZE")
    for filters, index in [(recording_search.Filters(officer="o1"), "recordings_officer"),
                           (recording_search.Filters(team="t1"), "recordings_team"),
                           (recording_search.Filters(start=datetime(2026, 11, 1, tzinfo=timezone.utc),
                                            end=datetime(2026, 11, 1, 1, tzinfo=timezone.utc)), "recordings_start")]:
        where, params = recording_search._where(box.catalog, FG, filters)
        plan = " ".join(row[3] for row in box.catalog.db.execute(
            f"EXPLAIN QUERY PLAN SELECT r.rowid FROM recordings r WHERE {where} "
            f"ORDER BY r.start_time DESC, r.rowid DESC LIMIT 50", params))
        assert index in plan, (filters, plan)
    longest = " ".join(r[3] for r in box.catalog.db.execute(
        "EXPLAIN QUERY PLAN SELECT max(julianday(end_time) - julianday(start_time)) FROM recordings"))
    assert "recordings_duration" in longest


def test_opnames_benchmark_runs(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "run.py"), "--only", "opnames",
                           "--opnames-recordings", "2000", "--repeats", "1", "--workdir", str(tmp_path),
                           "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "one officer (2000)" in done.stdout and "without/with indexes" in done.stdout
