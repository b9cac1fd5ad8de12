"""The archive holds each box to its signed audit checkpoints: a log truncated and re-signed, or one that
went backwards, is flagged."""

from __future__ import annotations

import json

from appliance import audit
from appliance.box import Box
from sync.archive.store import Archive


def _truncate_and_resign(box: Box, keep: int, add: int) -> None:
    """What someone with the box's files would do to hide entries: cut the log's tail, drop the
    checkpoints, append fresh entries and sign a new checkpoint with the box's own key."""
    db = box.catalog.db
    db.execute("DROP TRIGGER audit_log_no_delete")
    db.execute("DELETE FROM audit_log WHERE seq > ?", [keep])
    db.execute("DELETE FROM audit_checkpoints")
    for n in range(add):
        audit.record(box.catalog, actor="admin", action="login", details={"n": n})
    audit.checkpoint(box.catalog, box.signing_key(), force=True)


def test_truncated_and_resigned_log_is_flagged(enrolled, kluis):
    data, archive = enrolled
    kluis("sync", "run", "--data", data)
    with Box(data) as box:
        for n in range(5):
            audit.record(box.catalog, actor="admin", action="view", details={"n": n})
    kluis("sync", "run", "--data", data)  # the archive now holds a checkpoint at the longer log
    with Archive(archive.data_dir) as arch:
        assert arch.alerts() == []
        box_id = arch.boxes()[0]["id"]
        seen = arch.last_checkpoint(box_id)["count"]
    with Box(data) as box:
        _truncate_and_resign(box, keep=seen - 4, add=10)  # longer than before, but rewritten
        assert audit.verify(box.catalog, box.signing_key().verify_key).ok  # the box alone cannot tell
    result = kluis("sync", "run", "--data", data, check=False)
    assert "audit_fork" in result.stderr.decode()
    with Archive(archive.data_dir) as arch:
        alerts = arch.alerts(box_id)
        assert [a["kind"] for a in alerts] == ["audit_fork"]
        assert f"entry {seen}" in alerts[0]["details"]["message"]
        assert "audit_fork" in [e["action"] for e in audit.entries(arch)]
    listed = kluis("archive", "alerts", "--data", archive.data_dir).stdout.decode()
    assert "audit_fork" in listed and box_id in listed


def test_log_gone_backwards_is_flagged(enrolled, kluis):
    data, archive = enrolled
    with Box(data) as box:
        for n in range(6):
            audit.record(box.catalog, actor="admin", action="view", details={"n": n})
    kluis("sync", "run", "--data", data)
    with Box(data) as box:
        _truncate_and_resign(box, keep=2, add=0)
    kluis("sync", "run", "--data", data, check=False)
    alerts = json.loads(kluis("archive", "alerts", "--data", archive.data_dir, "--json").stdout)
    assert [a["kind"] for a in alerts] == ["audit_backwards"]


def test_honest_log_raises_no_alert(enrolled, kluis):
    data, archive = enrolled
    for _ in range(3):
        with Box(data) as box:
            audit.record(box.catalog, actor="admin", action="view")
        kluis("sync", "run", "--data", data)
    with Archive(archive.data_dir) as arch:
        assert arch.alerts() == []
        assert arch.db.execute("SELECT COUNT(DISTINCT seq) FROM checkpoints").fetchone()[0] >= 3
