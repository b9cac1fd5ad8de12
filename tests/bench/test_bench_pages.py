"""The page-load benchmark runs end to end at a small size (untimed: the 300 ms target lives in bench/):
a built catalog whose audit chain still verifies, `kluis serve` with offloading camera simulators, the
pages loaded over HTTPS and in Chromium, the rows printed and saved."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path


from tests.browser_helpers import needs_chromium

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))


def test_built_audit_log_keeps_its_hash_chain(tmp_path):
    import bench_pages

    from appliance import audit
    from appliance.box import Box

    data = tmp_path / "data"
    detail = bench_pages.build(data, 300, 5000)
    with Box(data) as box:
        count, _head = audit.head(box.catalog)
        audit.checkpoint(box.catalog, box.signing_key(), force=True)  # as `kluis serve` signs the head
        report = audit.verify(box.catalog, box.signing_key().verify_key)
        assert report.ok and report.count == count > 5000 and report.anchored == count, report.problems
        assert box.catalog.get_recording(detail)["id"] == detail
        assert audit.entries(box.catalog, recording_id=detail)  # the measured page has a trail to show
    assert "default_days = 3650" in (data / "kluis.toml").read_text()  # the sweep deletes nothing meanwhile


@needs_chromium
def test_pages_benchmark_prints_p95_per_page_and_json(tmp_path):
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--workdir", str(tmp_path), "--out", str(tmp_path / "out"),
         "--only", "pages", "--repeats", "1", "--pages-recordings", "500", "--pages-audit", "3000",
         "--pages-samples", "2", "--pages-cameras", "2", "--pages-offload-size", "2M"],
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    for page in ("/opnames", "/opnames/{id}", "/logboek"):
        for client in ("server", "Chromium load"):
            assert re.search(rf"^pages +{re.escape(page)} {client} p95 +[0-9.]+ ms .*target < 300: (ok|MISSED)$",
                             done.stdout, re.M), done.stdout
    record = json.loads((tmp_path / "out" / "latest.json").read_text())
    rows = {row["name"]: row for row in record["results"]}
    assert record["benchmarks"] == ["pages"]
    assert rows["/logboek server p95"]["value"] > 0 and len(rows["/logboek server p95"]["samples"]) == 1
    offload = next(row for name, row in rows.items() if name.startswith("offload meanwhile"))
    assert "offloaded in all" in offload["note"]
    assert list(tmp_path.glob("kluis-bench-*")) == []
