"""Web UI recordings table (Opnames) at 100 000 recordings: filter, sort and page queries, with vs without indexes.

Setup, outside the timing: a box whose catalog gets --opnames-recordings rows (inserted directly, 40
cameras, 90 officers (users) in 6 teams, half the rows without a team of their own as a camera offload
makes them, 1 % under hold; no blobs: the queries never touch them). Each query is
what one page load of /opnames runs (appliance.recording_search.search: count + one page; choices: the filter lists),
timed in this process over --repeats runs, for a privacy officer (all recordings) and a team leader (own
team). The baseline is the same query on a copy of the catalog without the web UI's indexes (migration
"webui"), to show what they buy. Targets: every page load < 100 ms with the indexes.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from benchlib import progress, ratio, result

NAME = "opnames"
WEBUI_INDEXES = ("recordings_officer", "recordings_team", "recordings_state")


def add_arguments(group) -> None:
    group.add_argument("--opnames-recordings", type=int, default=100_000, metavar="N",
                       help="recordings in the catalog (default 100000)")


def build(data: Path, total: int) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from appliance.box import init_box
    from appliance.clock import to_iso

    box, _ = init_box(data, "admin", "bench-password", kdf_profile="interactive")
    box.close()
    now = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)
    conn = sqlite3.connect(data / "catalog.db", isolation_level=None)
    conn.execute("BEGIN")
    rows, holds = [], []
    for i in range(total):
        start = now - timedelta(minutes=7 * i)
        rid = f"{i:016x}"
        officer = i % 90
        team = f"team {officer % 6}" if i % 2 else None  # docked recordings name only the officer
        rows.append((rid, "CAM%03d" % (i % 40), f"officer {officer}", team, to_iso(start),
                     to_iso(start + timedelta(minutes=3)), 10_000_000, 10_000_200, os.urandom(32).hex(),
                     f"blobs/x/{rid}", 1 << 20, to_iso(start), "stored", "dock", ("threat", "insult", None)[i % 3]))
        if i % 100 == 0:
            holds.append((rid, ("complaint", "police_report")[i % 2], f"K-{i}", "bench", to_iso(now),
                          to_iso(now + timedelta(days=90))))
    conn.executemany(
        "INSERT INTO recordings (id, camera_serial, officer, team, start_time, end_time, size, blob_size, sha256, "
        "stored_path, chunk_size, ingested_at, state, source, reason) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    conn.executemany("INSERT INTO users (name, role, team, slot, created_at) VALUES (?, 'officer', ?, '{}', ?)",
                     [(f"officer {n}", f"team {n % 6}", to_iso(now)) for n in range(90)])
    conn.executemany("INSERT INTO holds (recording_id, purpose, case_ref, placed_by, placed_at, review_at) "
                     "VALUES (?, ?, ?, ?, ?, ?)", holds)
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def cases():
    from appliance.recording_search import Filters

    pa = {"name": "fg", "role": "privacy_officer", "team": None}
    tl = {"name": "tl", "role": "team_leader", "team": "team 3"}
    hour = datetime(2026, 11, 1, 14, 0, tzinfo=timezone.utc)
    return [
        ("newest first, page 1", pa, Filters()),
        ("newest first, last page", pa, Filters(page=2000)),
        ("an hour on a date", pa, Filters(start=hour, end=hour + timedelta(hours=1))),
        ("one officer", pa, Filters(officer="officer 17")),
        ("one camera, sorted by officer", pa, Filters(camera="CAM007", sort="officer")),
        ("held for a complaint", pa, Filters(purpose="complaint")),
        ("team leader, own team, page 5", tl, Filters(page=5)),
        ("sorted by officer, page 100", pa, Filters(sort="officer", descending=False, page=100)),
    ]


def page_load(catalog, user, filters) -> float:
    from appliance.recording_search import choices, search

    began = time.perf_counter()
    search(catalog, user, filters)
    choices(catalog, user)
    return (time.perf_counter() - began) * 1000


def run(args) -> list[dict]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from appliance.catalog import Catalog

    total = args.opnames_recordings
    data = args.work / "with"
    progress(f"building a catalog with {total} recordings")
    build(data, total)
    bare = args.work / "without"
    shutil.copytree(data, bare)
    conn = sqlite3.connect(bare / "catalog.db", isolation_level=None)
    for index in WEBUI_INDEXES:
        conn.execute(f"DROP INDEX {index}")
    conn.execute("ANALYZE")
    conn.close()
    rows = []
    with_catalog, without_catalog = Catalog(data / "catalog.db"), Catalog(bare / "catalog.db")
    try:
        for label, user, filters in cases():
            ours, base = [], []
            for _ in range(args.repeats):  # interleaved, so that a busy moment hits both
                ours.append(page_load(with_catalog, user, filters))
                base.append(page_load(without_catalog, user, filters))
            a = result(NAME, f"{label} ({total})", ours, "ms", target="< 100")
            b = result(NAME, f"{label}, no web UI indexes", base, "ms")
            rows += [a, b, ratio(NAME, f"{label}: without/with indexes", b, a, note="context: what the indexes buy")]
    finally:
        with_catalog.close()
        without_catalog.close()
    return rows
