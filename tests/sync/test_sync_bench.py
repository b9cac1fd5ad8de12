"""bench/bench_sync.py runs end to end on a small recording (untimed: speed targets live in bench/)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(not shutil.which("curl"), reason="Debian package curl (make debs)")
def test_sync_benchmark_prints_ratio_and_archive_memory(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "run.py"), "--only", "sync", "--size", "4M",
                           "--repeats", "1", "--workdir", str(tmp_path), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    rows = {row["name"]: row for row in json.loads((tmp_path / "out" / "latest.json").read_text())["results"]}
    ours, curl = rows["kluis sync run (4 MiB)"], rows["curl --upload-file (4 MiB)"]
    assert ours["value"] > 0 and curl["value"] > 0
    assert rows["sync/curl"]["value"] == pytest.approx(ours["value"] / curl["value"])
    assert rows["sync/curl"]["target"] == ">= 0.8"
    assert 10 < rows["peak RSS archive (4 MiB, 1 rounds)"]["value"] < 1000
    assert list(tmp_path.glob("kluis-bench-*")) == []
