"""The benchmark harness runs end to end on a small file (untimed: speed targets live in bench/)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUN = ROOT / "bench" / "run.py"


def bench(*args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(RUN), "--workdir", str(tmp_path), "--out", str(tmp_path / "out"), *args],
        capture_output=True, text=True, timeout=120,
    )


def value(stdout: str, name: str) -> float:
    match = re.search(rf"^import +{re.escape(name)} +([0-9.]+) ", stdout, re.M)
    assert match, f"no result line for {name!r} in:\n{stdout}"
    return float(match.group(1))


@pytest.mark.skipif(not Path("/usr/bin/age").exists(), reason="Debian package age (make debs)")
def test_import_benchmark_prints_results_ratios_and_json(tmp_path):
    done = bench("--only", "import", "--size", "8M", "--repeats", "1", "--range-reads", "3", "--chunk-sizes", "64K",
                 tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for name in ("kluis import (8 MiB)", "age -r (8 MiB)", "copy (8 MiB)", "import_file() (8 MiB)"):
        assert value(out, name) > 0
    assert re.search(r"^import +import/age +[0-9.]+ x .*target >= 1.0: (ok|MISSED)$", out, re.M), out
    assert re.search(r"^import +import/copy +[0-9.]+ x", out, re.M), out
    for size in ("8 MiB", "1 MiB"):  # peak memory at two sizes
        assert 1 < value(out, f"peak RSS kluis import ({size})") < 1000
    assert re.search(r"^import +read_range 1 MiB at 7 MiB +[0-9.]+ ms .*target < 20: (ok|MISSED)$", out, re.M)
    assert re.search(r"^targets: \d+ met, \d+ missed", out, re.M)
    assert value(out, "chunk 64 KiB: import_file()") > 0
    assert re.search(r"^import +chunk 64 KiB: import_file\(\)/age +[0-9.]+ x", out, re.M), out
    assert 1 < value(out, "chunk 64 KiB: peak RSS kluis import") < 1000
    assert value(out, "chunk 64 KiB: read_range 1 MiB") > 0

    record = json.loads((tmp_path / "out" / "latest.json").read_text())
    rows = {row["name"]: row for row in record["results"]}
    assert record["size"] == 8 * 2**20 and record["benchmarks"] == ["import"]
    imp, age = rows["kluis import (8 MiB)"], rows["age -r (8 MiB)"]
    assert rows["import/age"]["value"] == pytest.approx(imp["value"] / age["value"])
    assert rows["import/age"]["ok"] == (rows["import/age"]["value"] >= 1.0)
    assert rows["chunk 64 KiB: import_file()"]["chunk_size"] == 65536
    assert list(tmp_path.glob("kluis-bench-*")) == []  # the work dir (1 GiB inputs at full size) is removed


def test_unknown_benchmark_is_refused(tmp_path):
    done = bench("--only", "nosuch", tmp_path=tmp_path)
    assert done.returncode == 2
    assert "unknown benchmark(s): nosuch" in done.stderr and "import" in done.stderr


def test_ratios_show_their_rounds_and_each_run_lands_in_the_history(tmp_path):
    """Issue 21: a ratio says how far apart its rounds were, and every run appends its medians with the
    commit id to the history file (bench/history.jsonl beside the default --out), one line a run."""
    assert Path("/usr/bin/age").exists(), "the import benchmark's baseline is age: run `make debs`"
    for run in (1, 2):
        done = bench("--only", "import", "--size", "4M", "--repeats", "2", "--range-reads", "2", tmp_path=tmp_path)
        assert done.returncode == 0, done.stderr
        lines = (tmp_path / "history.jsonl").read_text().splitlines()
        assert len(lines) == run
    match = re.search(r"^import +import/age +[0-9.]+ x.*\n +rounds: ([0-9.]+), ([0-9.]+) \(spread ([0-9.]+)\.\.([0-9.]+)\)$",
                      done.stdout, re.M)
    assert match, done.stdout
    first, second, low, high = map(float, match.groups())
    assert (low, high) == (min(first, second), max(first, second))

    record = json.loads((tmp_path / "out" / "latest.json").read_text())
    rows = {row["name"]: row for row in record["results"]}
    imp, age = rows["kluis import (4 MiB)"], rows["age -r (4 MiB)"]
    assert rows["import/age"]["round_ratios"] == pytest.approx([a / b for a, b in zip(imp["samples"], age["samples"])])

    line = json.loads(lines[-1])
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                          text=True).stdout.strip()
    assert line["commit"].removesuffix("+dirty") == head
    assert line["results"]["import: import/age"]["value"] == pytest.approx(rows["import/age"]["value"], abs=1e-4)
    assert line["results"]["import: import/age"]["rounds"] == pytest.approx([low, high], abs=1e-2)
    assert line["repeats"] == 2 and line["cpus"] >= 1
