"""kluis backup of all footage (each recording copied once, verified on the target) against cp -r + sync.

Setup, outside the timing: a box (`init_box`, fast KDF) with --backup-size of footage in recordings of
--backup-recording-size (default 10 GiB in 256 MiB recordings, as `recordings.import_file` stores them).
Each round, in alternating order: `kluis backup --data D --to T` onto an empty target (every recording is
new: the incremental backup of that much footage), and `cp -r D/blobs T2 && sync` of the same blobs to the
same file system (the baseline: copying the ciphertext and making it durable, nothing else). Targets are
removed after each measurement, so the disk holds the footage and one copy at a time. Reported: both rates,
their ratio (target >= 0.8), the second run's time (nothing new to copy), our peak RSS, the CPU seconds
per GB of both (the read-back hash is CPU work cp does not do: on a loaded machine that, not the disk,
sets the ratio), and the load average (the machine is shared) at the start and end.
"""

from __future__ import annotations

import os
import shutil
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import benchlib
from benchlib import fmt_size, make_input, parse_size, progress, remove, result, run_child

NAME = "backup"


def add_arguments(group) -> None:
    group.add_argument("--backup-size", type=parse_size, default=parse_size("10G"),
                       help="footage on the box to back up (default 10G; e.g. 512M for a quick run)")
    group.add_argument("--backup-recording-size", type=parse_size, default=parse_size("256M"),
                       help="size of each recording (default 256M)")


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def make_box(work: Path, total: int, each: int) -> Path:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from appliance import recordings
    from appliance.box import init_box

    data = work / "data"
    box, _ = init_box(data, "admin", "bench-password", kdf_profile="interactive")
    clip = work / "clip.bin"
    end = datetime.now(timezone.utc) - timedelta(hours=1)
    with box:
        count = max(1, total // each)
        for i in range(count):
            progress(f"{NAME}: importing recording {i + 1}/{count} ({fmt_size(each)})")
            make_input(clip, each)  # a new one each time: the box stores the same footage once
            recordings.import_file(box, clip, camera="BENCH-1", officer="bench",
                                   start=end - timedelta(minutes=5 * (i + 1)), end=end - timedelta(minutes=5 * i),
                                   actor="admin")
            clip.unlink()
    return data


def run(args) -> list[dict]:
    total, each = args.backup_size, min(args.backup_recording_size, args.backup_size)
    free = shutil.disk_usage(args.work).free
    if free < 2.2 * total:  # the footage and one copy at a time, and room left for the others on the disk
        raise RuntimeError(f"--backup-size {fmt_size(total)} needs {fmt_size(int(2.2 * total))} free in "
                           f"{args.work}, there is {fmt_size(free)}: give a smaller --backup-size")
    load_start = _load()
    data = make_box(args.work, total, each)
    blob_bytes = sum(p.stat().st_size for p in (data / "blobs").glob("*/*"))
    kluis = benchlib.kluis_command()
    ours, base, again, peaks, cpu_ours, cpu_base = [], [], [], [], [], []
    gb = blob_bytes / 1e9
    for repeat in range(args.repeats):
        target, copy = args.work / "target", args.work / "cp-target"
        order = ["ours", "cp"] if repeat % 2 == 0 else ["cp", "ours"]
        for who in order:
            progress(f"{NAME}: round {repeat + 1}/{args.repeats}, {who} ({fmt_size(blob_bytes)})")
            if who == "ours":
                child = run_child([*kluis, "backup", "--data", data, "--to", target])
                ours.append(blob_bytes / child.seconds / benchlib.MB)
                cpu_ours.append(child.cpu_seconds / gb)
                peaks.append(child.peak_rss_mb)
                again.append(run_child([*kluis, "backup", "--data", data, "--to", target]).seconds)
                remove(target)
            else:
                child = run_child(["sh", "-c", f'cp -r "{data / "blobs"}" "{copy}" && sync'])
                base.append(blob_bytes / child.seconds / benchlib.MB)
                cpu_base.append(child.cpu_seconds / gb)
                remove(copy)
    label = fmt_size(blob_bytes)
    a = result(NAME, f"kluis backup, all new ({label})", ours, "MB/s")
    b = result(NAME, f"cp -r + sync ({label})", base, "MB/s")
    rows = benchlib.versus(NAME, a, b, "backup/cp", "kluis backup", label, peaks, "< 200")
    rows.append(result(NAME, f"kluis backup, nothing new ({label} on the target)", again, "s",
                       note="the incremental run: the catalog snapshot and a size check per recording"))
    # CPU per GB (user + system of the process and its children): what a loaded machine makes wall time of.
    rows.append(result(NAME, "CPU kluis backup", cpu_ours, "s/GB", note="copy, read-back SHA-256, catalog"))
    rows.append(result(NAME, "CPU cp -r + sync", cpu_base, "s/GB"))
    rows.append(result(NAME, "load average (1, 5, 15 min) at start", 0.0, "x", note=load_start))
    rows.append(result(NAME, "load average (1, 5, 15 min) at end", 0.0, "x", note=_load()))
    remove(data)
    return rows
