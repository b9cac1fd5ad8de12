"""The sync loop `kluis serve` starts (sync.client.start_sync), the window and the backoff."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from appliance import retention
from appliance.box import Box
from appliance.errors import KluisError
from sync import client
from sync_helpers import import_random


async def test_service_loop_sends_held_footage_and_stops_cleanly(enrolled, tmp_path):
    data, archive = enrolled
    with Box(data) as box:
        box.settings.sync.interval_s = 0.2
        task = client.start_sync(box)
        try:
            await asyncio.sleep(0.5)  # a pass with nothing to send
            rid, _ = import_random(box, tmp_path, 200_000)
            retention.add_hold(box, rid, "complaint", "K-1", actor="admin")
            for _ in range(100):
                await asyncio.sleep(0.1)
                if client.receipt_for(box, rid):
                    break
            receipt = client.receipt_for(box, rid)
        finally:
            await task.stop()
        assert task.task.done()
        assert receipt and receipt["receipt"]["recording_id"] == rid
        assert client.status(box)["counts"]["sent"] == 1


async def test_outside_the_window_nothing_is_sent(enrolled, tmp_path):
    data, archive = enrolled
    hour = datetime.now(ZoneInfo("Europe/Amsterdam")).hour  # the archive checks request times: real clock
    with Box(data) as box:
        box.settings.sync.window = f"{(hour + 2) % 24:02d}:00-{(hour + 3) % 24:02d}:00"
        rid, _ = import_random(box, tmp_path, 100_000)
        retention.add_hold(box, rid, "complaint", "K-1", actor="admin")
        result = await client.Syncer(box).run()
        assert result.skipped and "window" in result.skipped and not result.ok
        assert client.receipt_for(box, rid) is None
        box.settings.sync.window = f"{(hour - 1) % 24:02d}:00-{(hour + 2) % 24:02d}:00"
        result = await client.Syncer(box).run()
    assert result.sent == [rid]


def test_window_and_backoff():
    tz = "Europe/Amsterdam"
    at = lambda h, m=0: datetime(2026, 11, 20, h, m, tzinfo=timezone.utc)  # noqa: E731 (UTC+1 in November)
    assert client.in_window("", at(12), tz)
    assert client.in_window("22:00-06:00", at(21, 30), tz) and client.in_window("22:00-06:00", at(4), tz)
    assert not client.in_window("22:00-06:00", at(5), tz) and not client.in_window("22:00-06:00", at(20, 59), tz)
    assert client.in_window("09:00-17:00", at(8), tz) and not client.in_window("09:00-17:00", at(16), tz)
    with pytest.raises(KluisError, match="HH:MM"):
        client.in_window("nights", at(1), tz)
    waits = [client.backoff(n, 1.0, 60.0) for n in range(12) for _ in range(50)]
    assert all(0 <= w <= 60 for w in waits)
    assert len({round(w, 6) for w in waits}) > 500  # jitter: no two boxes retry in step
    assert max(client.backoff(2, 1.0, 60.0) for _ in range(200)) <= 4.0
