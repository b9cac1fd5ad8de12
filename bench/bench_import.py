"""kluis import vs. age and a plain copy: MB/s, peak memory, 1 MiB range reads, container chunk sizes.

Targets: import at least as fast as `age -r` on the same file (ratio >= 1.0), peak memory under
100 MB whatever the file size (shown at two sizes), a 1 MiB range at 900 MiB decrypted in under 20 ms.

Every tool runs as a fresh process on the same input, which is read once first so that it sits in the
page cache (the runs measure the tools, not the disk). The tools take turns within each round, so that a
busy moment on the shared machine hits all of them. `kluis import` goes into a fresh data dir each time
(a copy of one made once with `kluis init --kdf-profile interactive`, outside the timing); the time is
the whole command, from exec to exit, including Python's start-up, reading the input, encrypting,
hashing, writing, fsync, rename and the catalog commit. `age` and `dd` are timed the same way; age does
not fsync, dd does (conv=fsync).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import benchlib
from benchlib import MB, fmt_size, progress, ratio, result, run_child

NAME = "import"
PASSWORD = "bench horse battery staple"
RANGE_OFFSET = 900 * 2**20
RANGE_LENGTH = 2**20
START, END = "2026-01-01T09:00:00", "2026-01-01T09:10:00"

# recordings.import_file alone, timed inside a fresh process: the pipeline without the CLI's start-up.
IN_PROCESS = """
import sys, time
from datetime import datetime, timezone
from appliance import recordings
from appliance.box import Box
start = datetime(2026, 1, 1, 9, tzinfo=timezone.utc)
end = datetime(2026, 1, 1, 9, 10, tzinfo=timezone.utc)
with Box(sys.argv[1]) as box:
    wall, cpu = time.perf_counter(), time.process_time()
    recordings.import_file(box, sys.argv[2], camera="BENCH-1", officer="bench", start=start, end=end)
    print(time.perf_counter() - wall, time.process_time() - cpu)
"""


def add_arguments(group) -> None:
    group.add_argument("--chunk-sizes", type=lambda text: [benchlib.parse_size(s) for s in text.split(",")],
                       metavar="LIST", help="import: also compare container chunk sizes, e.g. 64K,256K,1M,4M")
    group.add_argument("--range-reads", type=int, default=20, help="import: timed 1 MiB range reads (median)")


class Tools:
    def __init__(self, work: Path, src: Path):
        self.work, self.src = work, src
        self.kluis = benchlib.kluis_command()
        self.password_file = work / "password.txt"
        self.password_file.write_text(PASSWORD + "\n")
        self.serial = 0
        self.recipient = None
        if shutil.which("age") and shutil.which("age-keygen"):
            key = work / "age-key.txt"
            subprocess.run(["age-keygen", "-o", str(key)], check=True, capture_output=True)
            self.recipient = subprocess.run(["age-keygen", "-y", str(key)], check=True, capture_output=True,
                                            text=True).stdout.strip()

    def fresh_box(self, chunk_size: int | None = None) -> Path:
        """A new, empty data dir (not timed): a copy of one made once by `kluis init`."""
        template = self.work / "data-template"
        if not template.exists():
            run_child(self.kluis + ["init", "--data", str(template), "--totp-required", "", "--password-file", str(self.password_file),
                                    "--kdf-profile", "interactive"])
        self.serial += 1
        data = self.work / f"data-{self.serial}"
        shutil.copytree(template, data)
        if chunk_size is not None:
            set_chunk_size(data, chunk_size)
        return data

    def kluis_import(self, src: Path, chunk_size: int | None = None, keep: bool = False):
        data = self.fresh_box(chunk_size)
        child = run_child(self.kluis + ["import", "--data", str(data), str(src), "--camera", "BENCH-1",
                                        "--officer", "bench", "--start", START, "--end", END,
                                        "--password-file", str(self.password_file)])  # the keeper logs in
        recording_id = child.stdout.decode().strip()
        if not re.fullmatch(r"[0-9a-f]{16}", recording_id):
            raise RuntimeError(f"kluis import printed {child.stdout!r}, not a recording id")
        if not keep:
            benchlib.remove(data)
        return child, data, recording_id

    def import_file(self, src: Path, chunk_size: int | None = None):
        data = self.fresh_box(chunk_size)
        child = run_child([sys.executable, "-c", IN_PROCESS, str(data), str(src)])
        benchlib.remove(data)
        wall, cpu = map(float, child.stdout.split())
        return dataclasses.replace(child, seconds=wall, cpu_seconds=cpu)

    def age(self, src: Path):
        out = self.work / "out.age"
        if self.recipient is None:
            raise RuntimeError("age-keygen is not installed: there is no age to compare with")
        child = run_child(["age", "-r", self.recipient, "-o", str(out), str(src)])
        out.unlink()
        return child

    def copy(self, src: Path):
        out = self.work / "out.copy"
        child = run_child(["dd", f"if={src}", f"of={out}", "bs=1M", "conv=fsync", "status=none"])
        out.unlink()
        return child


def set_chunk_size(data: Path, chunk_size: int) -> None:
    config = data / "kluis.toml"
    text, n = re.subn(r"(?m)^#?\s*chunk_size\s*=.*$", f"chunk_size = {chunk_size}", config.read_text(), count=1)
    if n != 1:
        raise RuntimeError(f"{config}: no chunk_size setting to change")
    config.write_text(text)


def rounds(tools: Tools, src: Path, repeats: int, contenders: dict) -> dict[str, list]:
    """`repeats` rounds; in each, every contender runs once, starting with a different one each round."""
    names = list(contenders)
    children: dict[str, list] = {name: [] for name in names}
    for r in range(repeats):
        benchlib.warm(src)
        for i in range(len(names)):
            name = names[(r + i) % len(names)]
            # Each tool starts on a quiet disk: the writeback (and, on a disk mounted with `discard`,
            # the trims) of the files the previous one wrote and removed are finished first.
            os.sync()
            children[name].append(contenders[name]())
        progress(f"round {r + 1}/{repeats}: " + ", ".join(
            f"{name} {mbps(src, children[name][-1]):.0f} MB/s" for name in names))
    return children


def child_of(outcome):
    return outcome[0] if isinstance(outcome, tuple) else outcome


def cpu_per_gb(src: Path, outcome) -> float:
    return child_of(outcome).cpu_seconds / (src.stat().st_size / 1e9)


def mbps(src: Path, outcome) -> float:
    return src.stat().st_size / child_of(outcome).seconds / MB


def run(args) -> list[dict]:
    work: Path = args.work
    size = args.size
    label = fmt_size(size)
    progress(f"making a {label} random input file")
    src = benchlib.make_input(work / "input.bin", size)
    benchlib.warm(src)
    tools = Tools(work, src)
    rows: list[dict] = []

    startup = [run_child(tools.kluis + ["--version"]).seconds * 1000 for _ in range(args.repeats)]

    contenders = {"kluis import": lambda: tools.kluis_import(src)}
    if tools.recipient:
        contenders["age -r"] = lambda: tools.age(src)
    contenders["copy"] = lambda: tools.copy(src)
    contenders["import_file()"] = lambda: tools.import_file(src)
    children = rounds(tools, src, args.repeats, contenders)
    speed = {name: result(NAME, f"{name} ({label})", [mbps(src, c) for c in got], "MB/s")
             for name, got in children.items()}
    speed["kluis import"]["note"] = "input read once before each round: in the page cache for every tool"
    speed["copy"]["note"] = "dd bs=1M conv=fsync"
    rows += speed.values()
    if "age -r" in speed:
        rows.append(ratio(NAME, "import/age", speed["kluis import"], speed["age -r"], target=">= 1.0"))
    else:
        rows.append(result(NAME, "import/age", float("nan"), "x", note="age is not installed: no baseline"))
    rows.append(ratio(NAME, "import/copy", speed["kluis import"], speed["copy"]))
    # CPU time is what a loaded machine cannot hide: with no idle core, wall time tends to it.
    cpu = {name: result(NAME, f"CPU {name}", [cpu_per_gb(src, c) for c in got], "s/GB")
           for name, got in children.items()}
    rows += cpu.values()
    speed["import_file()"]["note"] = "recordings.import_file timed inside the process: no start-up"
    if "age -r" in speed:
        rows.append(ratio(NAME, "import_file()/age", speed["import_file()"], speed["age -r"]))
    rows.append(result(NAME, "kluis start-up (kluis --version)", startup, "ms",
                       note="included in every `kluis import` above"))

    # Peak memory at the main size and at an eighth of it: bounded means it does not grow with the file.
    rows.append(result(NAME, f"peak RSS kluis import ({label})",
                       [child_of(c).peak_rss_mb for c in children["kluis import"]], "MB", target="< 100"))
    small = max(size // 8, 2**20)
    small_src = benchlib.make_input(work / "input-small.bin", small)
    benchlib.warm(small_src)
    small_peaks = [tools.kluis_import(small_src)[0].peak_rss_mb for _ in range(min(args.repeats, 3))]
    rows.append(result(NAME, f"peak RSS kluis import ({fmt_size(small)})", small_peaks, "MB", target="< 100"))
    small_src.unlink()
    for name in ("age -r", "copy"):
        if name in children:
            rows.append(result(NAME, f"peak RSS {name} ({label})", [c.peak_rss_mb for c in children[name]], "MB"))

    rows += range_reads(tools, src, args.range_reads)
    if args.chunk_sizes:
        rows += chunk_sizes(tools, src, args.chunk_sizes, args.repeats, args.range_reads)
    return rows


def range_spot(size: int) -> tuple[int, int]:
    """1 MiB at 900 MiB, or for a smaller file at the same place relative to its size, as far as it fits."""
    if size >= RANGE_OFFSET + RANGE_LENGTH:
        return RANGE_OFFSET, RANGE_LENGTH
    offset = max(min(size * 900 // 1024, size - RANGE_LENGTH), 0)
    return offset, min(RANGE_LENGTH, size - offset)


def range_read_ms(tools: Tools, src: Path, count: int, chunk_size: int | None = None) -> list[float]:
    """Decrypt the range_spot of an imported recording through the gate's reader (appliance.footage, opened
    once with the recovery-key path's rules), as the web UI does for video seeking, `count` times; checked
    against the input."""
    from appliance import footage
    from appliance.box import Box

    offset, length = range_spot(src.stat().st_size)
    with open(src, "rb") as f:
        f.seek(offset)
        expected = f.read(length)
    _, data, recording_id = tools.kluis_import(src, chunk_size, keep=True)
    samples = []
    with Box(data) as box:
        identity = box.unlock(box.default_user, PASSWORD)
        opened = footage.open_for_viewing(box, None, recording_id, "requisition", "bench", identity=identity,
                                          actor=box.default_user, client="bench", break_glass=True)
        for _ in range(count):
            started = time.perf_counter()
            got = b"".join(opened.read_range(offset, offset + length))
            samples.append((time.perf_counter() - started) * 1000)
            if got != expected:
                raise RuntimeError("range read returned the wrong bytes")
    benchlib.remove(data)
    return samples


def range_reads(tools: Tools, src: Path, count: int) -> list[dict]:
    offset, length = range_spot(src.stat().st_size)
    samples = range_read_ms(tools, src, count)
    return [result(NAME, f"read_range {fmt_size(length)} at {fmt_size(offset)}", samples, "ms", target="< 20",
                   note=f"first read (blob not in page cache): {samples[0]:.1f} ms")]


def chunk_sizes(tools: Tools, src: Path, sizes: list[int], repeats: int, range_count: int) -> list[dict]:
    """Per container chunk size: import_file() speed (no start-up, which does not depend on the chunk
    size) with age in the same rounds, CPU time, peak RSS of `kluis import`, and the range read."""
    rows = []
    for chunk in sizes:
        progress(f"chunk size {fmt_size(chunk)}")
        label = fmt_size(chunk)
        contenders: dict[str, Callable[[], benchlib.Child]] = {
            "import_file()": functools.partial(tools.import_file, src, chunk)}
        if tools.recipient:
            contenders["age"] = lambda: tools.age(src)
        children = rounds(tools, src, repeats, contenders)
        got = children["import_file()"]
        imp = result(NAME, f"chunk {label}: import_file()", [mbps(src, c) for c in got], "MB/s")
        rows.append(imp)
        if "age" in children:
            age = result(NAME, "age", [mbps(src, c) for c in children["age"]], "MB/s")
            rows.append(ratio(NAME, f"chunk {label}: import_file()/age", imp, age))
        rows.append(result(NAME, f"chunk {label}: CPU import_file()", [cpu_per_gb(src, c) for c in got],
                           "s/GB"))
        peak = [tools.kluis_import(src, chunk)[0].peak_rss_mb for _ in range(min(repeats, 2))]
        rows.append(result(NAME, f"chunk {label}: peak RSS kluis import", peak, "MB"))
        rows.append(result(NAME, f"chunk {label}: read_range 1 MiB", range_read_ms(tools, src, range_count, chunk),
                           "ms"))
        for row in rows[-5:]:
            row["chunk_size"] = chunk
    return rows
