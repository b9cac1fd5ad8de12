"""Retention sweep: `kluis retention run` over 100 000 recordings of which 10 000 expire, vs a bare delete.

Setup, outside the timing: a box (`init_box`, fast KDF) whose catalog gets --retention-recordings rows
(recordings + wrapped-key rows, inserted directly for speed); --retention-expired of them ended 40 days
ago, the rest yesterday, and 1 % of the expired ones are under hold. The expired ones get a tiny blob
each (the sweep never touches the blobs of the others, so those are not written: setup speed). Each round
copies that data dir afresh, flushes it to disk (so that the copy's write-back does not land in the
timing) and times, in fresh processes and interleaved:
- ours: `kluis retention run` (start-up, policy check, shredding in batches with deletion records,
  audit entries and the statistics folded into their months' totals, blob removal with directory fsyncs, row deletion, WAL truncation);
- baseline: a bare Python script that deletes the same expired rows (keys, then recordings, one
  transaction, synchronous=FULL) and unlinks their blobs: the floor without audit, records or holds.
Targets (from the issue): sweep < 10 s and peak RSS < 200 MB. The ratio to the baseline is shown for
context (no target: ours does more work by design).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

from benchlib import kluis_command, progress, ratio, result, run_child

NAME = "retention"

BASELINE = r'''
import os, sqlite3, sys
data = sys.argv[1]
conn = sqlite3.connect(os.path.join(data, "catalog.db"), isolation_level=None)
conn.execute("PRAGMA synchronous=FULL")
conn.execute("PRAGMA secure_delete=ON")
conn.execute("BEGIN IMMEDIATE")
rows = conn.execute("SELECT id, stored_path FROM recordings WHERE end_time <= ? AND id NOT IN "
                    "(SELECT recording_id FROM holds WHERE released_at IS NULL)", [sys.argv[2]]).fetchall()
conn.executemany("DELETE FROM file_keys WHERE recording_id = ?", [(r[0],) for r in rows])
conn.executemany("DELETE FROM recordings WHERE id = ?", [(r[0],) for r in rows])
conn.execute("COMMIT")
for _, path in rows:
    os.unlink(os.path.join(data, path))
print(len(rows))
'''


def add_arguments(group) -> None:
    group.add_argument("--retention-recordings", type=int, default=100_000, metavar="N",
                       help="recordings in the catalog (default 100000)")
    group.add_argument("--retention-expired", type=int, default=10_000, metavar="N",
                       help="of which expired (default 10000)")


def build(data: Path, total: int, expired: int) -> None:
    """A box with `total` catalogued recordings and tiny blobs; `expired` of them past the term."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from appliance.box import init_box
    from appliance.clock import to_iso

    box, _ = init_box(data, "admin", "bench-password", kdf_profile="interactive")
    box.close()
    now = datetime.now(timezone.utc)
    conn = sqlite3.connect(data / "catalog.db", isolation_level=None)
    conn.execute("BEGIN")
    recordings, keys, holds, stats = [], [], [], []
    for i in range(total):
        old = i < expired
        end = now - (timedelta(days=40) if old else timedelta(days=1)) - timedelta(seconds=i)
        sha = os.urandom(32).hex()
        rid = os.urandom(8).hex()
        path = f"blobs/{sha[:2]}/{sha}"
        recordings.append((rid, "CAM%03d" % (i % 40), f"officer {i % 90}", "team A", to_iso(end - timedelta(minutes=3)),
                           to_iso(end), 1000, 1200, sha, path, 65536, to_iso(end), "stored", "dock"))
        keys.append((rid, os.urandom(200)))
        # the statistics' linked rows a stored recording has (appliance/statistics.py): the sweep folds them
        stats += [(to_iso(end)[:7], "team A", fact, value, 1, rid) for fact, value in (
            ("recordings", ""), ("source", "dock"), ("camera_model", "BC-1"), ("reason", ("", "aggression")[i % 2]),
            ("warning", ("", "yes", "no")[i % 3]), ("category", ""))]
        if old and i % 100 == 0:
            holds.append((rid, "complaint", f"K-{i}", "bench", to_iso(now), to_iso(now + timedelta(days=90))))
        if old:
            blob = data / path
            blob.parent.mkdir(exist_ok=True)
            blob.write_bytes(b"x" * 64)
    conn.executemany(
        "INSERT INTO recordings (id, camera_serial, officer, team, start_time, end_time, size, blob_size, sha256, "
        "stored_path, chunk_size, ingested_at, state, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        recordings)
    conn.executemany("INSERT INTO file_keys (recording_id, header) VALUES (?, ?)", keys)
    conn.executemany("INSERT INTO holds (recording_id, purpose, case_ref, placed_by, placed_at, review_at) "
                     "VALUES (?, ?, ?, ?, ?, ?)", holds)
    conn.executemany("INSERT INTO statistics (month, team, fact, value, n, recording_id) VALUES (?, ?, ?, ?, ?, ?)",
                     stats)
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def run(args) -> list[dict]:
    total, expired = args.retention_recordings, args.retention_expired
    held = len(range(0, expired, 100))
    template = args.work / "template"
    progress(f"building a box with {total} recordings, {expired} expired ({held} of them held)")
    build(template, total, expired)
    cutoff = (datetime.now(timezone.utc) - timedelta(days=28)).isoformat(timespec="milliseconds")
    cutoff = cutoff.replace("+00:00", "Z")
    ours, base, rss = [], [], []
    for n in range(args.repeats):
        progress(f"round {n + 1}/{args.repeats}")
        for which in ("ours", "base"):
            data = args.work / f"{which}-{n}"
            shutil.copytree(template, data)
            os.sync()
            if which == "ours":
                child = run_child([*kluis_command(), "retention", "run", "--data", str(data)])
                deleted = int(child.stdout.split()[-2]) if child.stdout else -1
                if deleted != expired - held:
                    raise RuntimeError(f"the sweep deleted {deleted}, expected {expired - held}: "
                                       f"{child.stdout!r} {child.stderr!r}")
                ours.append(child.seconds)
                rss.append(child.peak_rss_mb)
            else:
                child = run_child([sys.executable, "-c", BASELINE, str(data), cutoff])
                base.append(child.seconds)
            shutil.rmtree(data)
    label = f"{expired} of {total}"
    a = result(NAME, f"kluis retention run ({label})", ours, "s", target="< 10")
    b = result(NAME, f"bare delete ({label})", base, "s")
    return [
        a, b, ratio(NAME, "sweep/bare delete", a, b, note="context only: audit, deletion records, holds, fsyncs"),
        result(NAME, f"peak RSS kluis retention run ({label})", rss, "MB", target="< 200"),
    ]
