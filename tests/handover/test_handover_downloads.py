"""Approved packages wait for their download in a Downloads object (one per web UI), for the approving
user only, and not past their hour; an encrypted one is offered again by a restarted server."""

from __future__ import annotations

import pytest

from appliance.errors import NotFound
from datetime import datetime, timezone

from appliance.handover_downloads import Download, Downloads


def test_a_package_is_for_its_approver_and_its_hour_only(tmp_path):
    now = [1000.0]
    downloads = Downloads(tmp_path, ttl_s=60, now=lambda: now[0])
    downloads.folder.mkdir()
    path = downloads.folder / "t.age"
    path.write_bytes(b"age")
    downloads._waiting["t"] = Download("fg2", "OV-1", "OV-1.zip.age", path, None, now[0])
    downloads._waiting["m"] = Download("fg2", "OV-2", "OV-2.zip", None, b"zip", now[0])
    assert downloads.get("t", "fg2", "OV-1").path == path
    assert downloads.get("m", "fg2", "OV-2").data == b"zip"
    for token, owner, handover_id in [("t", "fg", "OV-1"), ("t", "fg2", "OV-2"), ("x", "fg2", "OV-1")]:
        with pytest.raises(NotFound):
            downloads.get(token, owner, handover_id)
    # The handover's page asks which package waits for whom.
    assert downloads.offered("OV-1", "fg2").path == path
    assert downloads.offered("OV-1", "fg") is None and downloads.offered("OV-3", "fg2") is None
    now[0] += 61
    with pytest.raises(NotFound):
        downloads.get("t", "fg2", "OV-1")
    assert not path.exists()
    assert downloads.offered("OV-1", "fg2") is None


def test_a_restarted_server_offers_an_encrypted_package_for_the_rest_of_its_hour(tmp_path):
    first = Downloads(tmp_path, ttl_s=3600)
    first.folder.mkdir()
    path = first.folder / "tok.age"
    path.write_bytes(b"age-encryption.org/v1\n...")
    item = Download("fg2", "OV-1", "OV-1.zip.age", path, None, 0.0, token="tok", package_sha256="ab" * 32,
                    package_size=26, expires_at=datetime(2026, 12, 7, 17, 0, tzinfo=timezone.utc))
    first._write_record(item)
    assert oct((first.folder / "tok.json").stat().st_mode & 0o777) == "0o600"

    restarted = Downloads(tmp_path, ttl_s=3600)
    offered = restarted.offered("OV-1", "fg2")
    assert offered is not None and offered.path == path and offered.package_sha256 == "ab" * 32
    assert offered.expires_at == item.expires_at
    assert restarted.get("tok", "fg2", "OV-1").path == path
    assert restarted.offered("OV-1", "fg") is None

    # Past the hour (as a later run sees it): package and record go.
    later = Downloads(tmp_path, ttl_s=0.0)
    assert later.offered("OV-1", "fg2") is None
    assert not path.exists() and not (first.folder / "tok.json").exists()
