"""bench/bench_retention.py runs end to end at a small size (untimed: the targets live in bench/)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

RUN = Path(__file__).resolve().parents[2] / "bench" / "run.py"


def test_retention_benchmark_runs(tmp_path):
    done = subprocess.run(
        [sys.executable, str(RUN), "--only", "retention", "--retention-recordings", "300", "--retention-expired",
         "100", "--repeats", "1", "--workdir", str(tmp_path), "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert re.search(r"^retention +kluis retention run \(100 of 300\) +[0-9.]+ s .*target < 10: (ok|MISSED)$",
                     done.stdout, re.M), done.stdout
    assert re.search(r"^retention +peak RSS kluis retention run .* MB .*target < 200", done.stdout, re.M)
    rows = {r["name"]: r for r in json.loads((tmp_path / "out" / "latest.json").read_text())["results"]}
    assert rows["bare delete (100 of 300)"]["value"] > 0
