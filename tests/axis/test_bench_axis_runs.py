"""bench/bench_axis.py runs end to end on small clips (untimed: the speed and memory targets live in bench/):
its rows, the per-round ratios and the CPU per GiB of each side, as the JSON record keeps them."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_axis_benchmark_prints_rates_each_rounds_ratio_and_cpu(tmp_path):
    assert shutil.which("curl"), "curl, the baseline's client, is missing: run `make debs`"
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "run.py"), "--workdir", str(tmp_path), "--out",
                           str(tmp_path / "out"), "--only", "axis", "--size", "2M", "--repeats", "2",
                           "--axis-recordings", "2"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert re.search(r"^axis +axis/curl +[0-9.]+ x .*target >= 0.8: (ok|MISSED)$", done.stdout, re.M), done.stdout
    assert len(re.findall(r"axis: box \d+ MB/s, curl \d+ MB/s; CPU-s/GiB: serve [0-9.]+", done.stderr)) == 2
    rows = {row["name"]: row for row in json.loads((tmp_path / "out" / "latest.json").read_text())["results"]}
    box, base = rows["axis-sim into kluis serve (2 x 2 MiB)"], rows["curl PUT in parallel (2 x 2 MiB)"]
    rounds = rows["axis/curl of each round"]["samples"]
    assert len(rounds) == 2 and all(r > 0 for r in rounds)
    # each round's ratio is its own pair of rates (the same bytes: rate ratio = time ratio)
    assert sorted(rounds) == pytest.approx(sorted(b / c for b, c in zip(box["samples"], base["samples"])))
    assert rows["axis/curl"]["value"] == pytest.approx(box["value"] / base["value"])
    for what in ("kluis serve", "axis-sim", "trivial aiohttp server", "curl (all)"):
        assert all(s > 0 for s in rows[f"CPU of {what} per GiB"]["samples"]), what
    assert 20 < rows["peak RSS kluis serve (2 x 2 MiB)"]["value"] < 1000
    assert list(tmp_path.glob("kluis-bench-*")) == []
