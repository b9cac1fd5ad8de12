"""Approved packages wait for their download in a Downloads object (one per web UI), for the approving
session only, and not past their hour."""

from __future__ import annotations

import pytest

from appliance.errors import NotFound
from appliance.handover_downloads import Download, Downloads


def test_a_package_is_for_its_session_and_its_hour_only(tmp_path):
    now = [1000.0]
    downloads = Downloads(tmp_path, ttl_s=60, now=lambda: now[0])
    downloads.folder.mkdir()
    path = downloads.folder / "t.age"
    path.write_bytes(b"age")
    downloads._waiting["t"] = Download("session-1", "OV-1", "OV-1.zip.age", path, None, now[0])
    downloads._waiting["m"] = Download("session-1", "OV-2", "OV-2.zip", None, b"zip", now[0])
    assert downloads.get("t", "session-1", "OV-1").path == path
    assert downloads.get("m", "session-1", "OV-2").data == b"zip"
    for token, owner, handover_id in [("t", "session-2", "OV-1"), ("t", "session-1", "OV-2"), ("x", "session-1", "OV-1")]:
        with pytest.raises(NotFound):
            downloads.get(token, owner, handover_id)
    now[0] += 61
    with pytest.raises(NotFound):
        downloads.get("t", "session-1", "OV-1")
    assert not path.exists()
