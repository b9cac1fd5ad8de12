"""The offload benchmark runs end to end on small recordings (untimed: speed targets live in bench/)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

RUN = Path(__file__).resolve().parents[2] / "bench" / "run.py"


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl (Debian package curl, make debs)")
def test_offload_benchmark_prints_rates_ratio_and_memory(tmp_path):
    done = subprocess.run(
        [sys.executable, str(RUN), "--only", "offload", "--size", "2M", "--repeats", "1", "--offload-cameras", "2",
         "--workdir", str(tmp_path), "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for name in ("kluis serve offload", "curl in parallel"):
        assert re.search(rf"^offload +{name} \(2 x 2 MiB\) +[0-9.]+ MB/s", out, re.M), out
    assert re.search(r"^offload +offload/curl +[0-9.]+ x .*target >= 0.8: (ok|MISSED)$", out, re.M), out
    peak = re.search(r"^offload +peak RSS kluis serve \(2 x 2 MiB\) +([0-9.]+) MB", out, re.M)
    assert peak and 10 < float(peak.group(1)) < 1000, out
