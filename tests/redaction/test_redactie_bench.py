"""The redaction benchmark runs end to end at a tiny size (untimed: the numbers live in bench/)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(not shutil.which("ffmpeg"), reason="Debian package ffmpeg (the baseline)")
def test_redact_benchmark_prints_fps_peak_memory_and_the_ratio(tmp_path):
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--only", "redact", "--redact-seconds", "1",
         "--redact-size", "192x144", "--workdir", str(tmp_path), "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for name in ("kluis redact", "kluis redact --no-faces", "ffmpeg decode+encode"):
        match = re.search(rf"^redact +{re.escape(name)} \(1 s 192x144\) +([0-9.]+) frames/s", out, re.M)
        assert match and float(match.group(1)) > 0, out
        peak = re.search(rf"^redact +peak RSS {re.escape(name)} \(1 s 192x144\) +([0-9.]+) MB", out, re.M)
        assert peak and 1 < float(peak.group(1)) < 2000, out
    assert re.search(r"^redact +redact/ffmpeg +[0-9.]+ x", out, re.M), out
    rows = {row["name"]: row for row in json.loads((tmp_path / "out" / "latest.json").read_text())["results"]}
    assert "25 frames" in rows["kluis redact (1 s 192x144)"]["note"]
