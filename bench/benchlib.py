"""Helpers for bench/bench_*.py modules: sizes, medians, timed child processes with their peak memory,
input files, and the result records bench/run.py prints and saves (see bench/README.md).

Units: MB is 10**6 bytes (MB/s too); sizes given on the command line (`8M`, `1G`) are binary (MiB, GiB).
"""

from __future__ import annotations

import operator
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

MB = 10**6
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30}


def parse_size(text: str) -> int:
    """'1G' -> 1073741824, '64K', '8M', '4096'."""
    match = re.fullmatch(r"\s*(\d+)\s*([KMG]?)(?:i?B)?\s*", text.upper())
    if not match:
        raise ValueError(f"bad size {text!r}: use e.g. 64K, 8M, 1G")
    return int(match.group(1)) * _UNITS[match.group(2)]


def fmt_size(n: int) -> str:
    for unit in ("G", "M", "K"):
        if n >= _UNITS[unit] and n % _UNITS[unit] == 0:
            return f"{n // _UNITS[unit]} {unit}iB"
    return f"{n} B"


def median(values) -> float:
    return statistics.median(values)


@dataclass(frozen=True)
class Child:
    seconds: float  # wall time from start to exit
    peak_rss_mb: float  # the child's own peak resident set size (wait4 rusage), MB
    cpu_seconds: float  # user + system CPU time of the child (and of what it waited for)
    returncode: int
    stdout: bytes
    stderr: bytes


GNU_TIME = "/usr/bin/time"  # Debian package `time` (Makefile DEBS)


def run_child(cmd: Sequence[str | os.PathLike[str]], *, check: bool = True, env: dict | None = None,
              cwd: Path | None = None) -> Child:
    """Run one command in a fresh process: its wall time and its own peak RSS.

    The peak comes from GNU time (`%M`, from wait4 of a child forked by that small C program). Measuring
    it with wait4 straight from this Python process would be wrong for small tools: Linux carries the
    high-water mark of the image a child had before exec (a fork or vfork of this ~20 MB interpreter)
    into its ru_maxrss. Without /usr/bin/time, wait4 is used and the figure is an upper bound."""
    timed = os.path.exists(GNU_TIME)
    with open(os.devnull, "rb") as stdin, tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r") as usage_file:
        argv = [GNU_TIME, "-f", "%M", "-o", usage_file.name, *map(str, cmd)] if timed else list(map(str, cmd))
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdin=stdin, stdout=out, stderr=err, env=env, cwd=cwd)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
        peak_kib = usage.ru_maxrss
        if timed:
            lines = usage_file.read().split()
            peak_kib = int(lines[-1]) if lines and lines[-1].isdigit() else peak_kib
    cpu = usage.ru_utime + usage.ru_stime
    child = Child(seconds, peak_kib * 1024 / MB, cpu, proc.returncode, stdout, stderr)
    if check and child.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({child.returncode}): "
                           f"{stderr.decode(errors='replace').strip()[-2000:]}")
    return child


def kluis_command() -> list[str]:
    """The real `kluis` console script of this environment (falls back to `python -m appliance`)."""
    script = Path(sys.executable).parent / "kluis"
    return [str(script)] if script.exists() else [sys.executable, "-m", "appliance"]


def make_input(path: Path, size: int) -> Path:
    """A file of `size` random (incompressible, like video) bytes; reused if it is already there."""
    if path.exists() and path.stat().st_size == size:
        return path
    block = 4 * 2**20
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(block, left)
            f.write(os.urandom(n))
            left -= n
    return path


def warm(path: Path) -> None:
    """Read a file once so that it is in the page cache: the runs then measure the tools, not the disk."""
    with open(path, "rb", buffering=0) as f:
        buf = bytearray(4 * 2**20)
        while f.readinto(buf):
            pass


def remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def rounds(args, bench: str, what: str) -> Iterator[Path]:
    """The args.repeats rounds of a bench, each announced (what: what a round does) with a fresh work
    directory under args.work, removed when the round is over."""
    for repeat in range(args.repeats):
        work = args.work / f"round{repeat}"
        work.mkdir()
        progress(f"{bench}: round {repeat + 1}/{args.repeats}, {what}")
        try:
            yield work
        finally:
            remove(work)


# --- processes the bench starts itself -------------------------------------------------------------------

def stop(proc: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM, and SIGKILL when it has not ended within timeout seconds."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def peak_rss_mb(pid: int) -> float:
    """A running process's peak resident memory so far (VmHWM), in MB."""
    text = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"VmHWM:\s+(\d+) kB", text)
    if found is None:
        raise RuntimeError(f"process {pid}: no VmHWM in /proc/{pid}/status")
    return int(found.group(1)) * 1024 / MB


# --- results -------------------------------------------------------------------------------------------

def result(bench: str, name: str, samples: list[float] | float, unit: str, *, target: str | None = None,
           note: str | None = None, lower_is_better: bool | None = None) -> dict:
    """One measured quantity: its median over `samples` (a number is one sample)."""
    samples = [float(s) for s in (samples if isinstance(samples, (list, tuple)) else [samples])]
    value = median(samples)
    row = {"bench": bench, "name": name, "value": value, "unit": unit, "samples": samples}
    if target:
        row["target"] = target
        row["ok"] = meets(value, target)
    if note:
        row["note"] = note
    return row


def ratio(bench: str, name: str, numerator: dict, denominator: dict, *, target: str | None = None,
          note: str | None = None) -> dict:
    """The ratio of two results' medians (both measured in the same run, so both saw the same machine).

    When both were measured in the same rounds (as many samples each, taken in turns), the row also carries
    each round's own ratio (`round_ratios`): how far apart the rounds were, which the median alone hides."""
    value = numerator["value"] / denominator["value"] if denominator["value"] else float("nan")
    row = result(bench, name, value, "x", target=target, note=note)
    ours, base = numerator["samples"], denominator["samples"]
    if len(ours) == len(base) > 1 and all(base):
        row["round_ratios"] = [a / b for a, b in zip(ours, base)]
    return row


def versus(bench: str, ours: dict, baseline: dict, name: str, process: str, label: str, peaks: list[float],
           rss_target: str) -> list[dict]:
    """Our rate, the baseline's, their ratio (name; the target every rate bench holds: >= 0.8), and the
    peak RSS of our process over the rounds."""
    return [ours, baseline, ratio(bench, name, ours, baseline, target=">= 0.8"),
            result(bench, f"peak RSS {process} ({label})", peaks, "MB", target=rss_target)]


_OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}


def meets(value: float, target: str) -> bool:
    """`target` is an operator and a number: '>= 1.0', '< 100'."""
    match = re.fullmatch(r"\s*(>=|<=|>|<)\s*([0-9.]+)\s*", target)
    if not match:
        raise ValueError(f"bad target {target!r}")
    return _OPS[match.group(1)](value, float(match.group(2)))


def progress(text: str) -> None:
    """Progress on stderr, so that stdout holds only the results."""
    print(f"  .. {text}", file=sys.stderr, flush=True)
