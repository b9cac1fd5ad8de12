"""The upload bandwidth limit holds within 10 %, measured on the wire (at a TCP relay between box and
archive) over a transfer of about 6 s (the issue asks 30 s; 6 s keeps the suite fast and is long enough
for the pacing, whose burst is one 64 KiB piece, to show its average)."""

from __future__ import annotations

from appliance import retention
from appliance.box import Box
from sync.client import Syncer
from sync_helpers import CuttingProxy, import_random

LIMIT_KBPS = 1024
SIZE = 6 * 1024 * 1024


async def test_bandwidth_limit_holds_within_ten_percent(enrolled, tmp_path):
    data, archive = enrolled
    with Box(data) as box:
        rid, _ = import_random(box, tmp_path, SIZE)
        retention.add_hold(box, rid, "police_report", "PV-1", actor="admin")
    proxy = CuttingProxy(archive.port)
    await proxy.start()
    try:
        with Box(data) as box:
            box.settings.sync.archive_url = f"https://127.0.0.1:{proxy.port}"
            box.settings.sync.bandwidth_kbps = LIMIT_KBPS
            result = await Syncer(box).run()
    finally:
        await proxy.close()
    assert result.sent == [rid], result.as_dict()
    seconds = proxy.last_byte_at - proxy.first_byte_at
    rate = proxy.forwarded / seconds / 1024
    print(f"bandwidth: {proxy.forwarded} bytes on the wire in {seconds:.2f} s = {rate:.0f} KiB/s "
          f"(limit {LIMIT_KBPS} KiB/s, {rate / LIMIT_KBPS - 1:+.1%})")
    assert seconds >= 5.0
    assert abs(rate / LIMIT_KBPS - 1) <= 0.10
