"""bench/bench_backup.py runs end to end on a little footage (untimed: the speed target lives in bench/)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_backup_benchmark_reports_both_rates_their_ratio_and_cleans_up(tmp_path):
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--workdir", str(tmp_path), "--out", str(tmp_path / "out"),
         "--only", "backup", "--backup-size", "4M", "--backup-recording-size", "1M", "--repeats", "1"],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    rows = {row["name"].split(" (")[0]: row for row in json.loads((tmp_path / "out" / "latest.json").read_text())["results"]}
    ours, cp = rows["kluis backup, all new"], rows["cp -r + sync"]
    assert ours["value"] > 0 and cp["value"] > 0
    assert rows["backup/cp"]["value"] == ours["value"] / cp["value"] and rows["backup/cp"]["target"] == ">= 0.8"
    assert rows["kluis backup, nothing new"]["value"] > 0
    assert list(tmp_path.glob("kluis-bench-*")) == []  # footage and targets removed
