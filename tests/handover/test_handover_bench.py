"""bench/bench_handover.py runs end to end on a small recording (untimed: speed targets live in bench/)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

RUN = Path(__file__).resolve().parents[2] / "bench" / "run.py"


@pytest.mark.skipif(shutil.which("age") is None or shutil.which("age-keygen") is None, reason="Debian package age")
def test_handover_benchmark_prints_results_and_json(tmp_path):
    done = subprocess.run([sys.executable, str(RUN), "--workdir", str(tmp_path), "--out", str(tmp_path / "out"),
                           "--only", "handover", "--size", "2M", "--repeats", "1"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    for name in ("approve, age key", "approve, passphrase", "age -r + sync", "verify, age key", "age -d"):
        assert re.search(rf"^handover +{re.escape(name)} \(2 MiB\) +[0-9.]+ MB/s", done.stdout, re.M), done.stdout
    assert re.search(r"^handover +approve/age +[0-9.]+ x .*target >= 0.1: (ok|MISSED)$", done.stdout, re.M)
    rows = json.loads((tmp_path / "out" / "latest.json").read_text())
    rows = rows["results"] if isinstance(rows, dict) else rows
    peaks = [r for r in rows if r["name"].startswith("approve peak RSS")]
    assert len(peaks) == 2 and all(r["value"] > 0 for r in peaks)
