"""Overzicht: deletions due within 7 days, holds due for review, a camera that stopped docking, storage."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from appliance import retention
from appliance.clock import to_iso


async def test_overview_shows_what_needs_attention(web, rec_ids):
    box = web.box
    now = datetime(2026, 12, 13, 9, 0, tzinfo=timezone.utc)  # the test clips end 20 and 21 Nov: due 18-19 Dec
    box.clock = lambda: now
    retention.add_hold(box, rec_ids["noord"], "complaint", "KL-5", "tl", review_at=now + timedelta(days=2))
    box.catalog.db["devices"].insert({"serial": "CAM-OLD", "paired": 1, "online": 0, "mode": "personal",
                                      "last_seen": to_iso(now - timedelta(days=5))})
    box.catalog.db["devices"].insert({"serial": "CAM-NEW", "paired": 1, "online": 1, "mode": "personal",
                                      "last_seen": to_iso(now - timedelta(hours=1))})
    await web.as_role("team_leader")
    page = await (await web.client.get("/")).text()
    assert "Te verwijderen in de komende 7 dagen: 2" in page  # three recordings, one held
    assert "Bewaringen die herzien moeten worden" in page and "KL-5" in page
    assert "3 dagen of langer niet in het dock zijn geweest: CAM-OLD." in page
    assert 'data-serial="CAM-NEW"' in page and "<progress" in page
    assert "GiB gebruikt" in page and "De afgelopen week is niets opgeslagen." in page  # ingested in November
    events = await web.client.get("/overzicht/voortgang?once=1")
    assert events.headers["Content-Type"].startswith("text/event-stream")
    assert (await events.text()).startswith("data: {}")  # no `kluis serve` here: no offload running
