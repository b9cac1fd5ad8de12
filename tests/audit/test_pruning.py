"""The audit log's own term ([audit] term_days): entries past it are pruned under a signed pruning
checkpoint, and the real `kluis audit verify` still holds the rest, catches a one-byte change in what
remains and an altered pruning checkpoint; entries about a recording still stored stay, with every entry
after them; the deletion report is the same before and after."""

from __future__ import annotations

import json
import re
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from appliance import audit, audit_prunes, audit_term, config, log_collector, recordings, retention, signing, sweep
from appliance.box import Box
from tests.moving_clock import Clock

ROOT = Path(__file__).resolve().parents[2]


def store(box: Box, tmp_path: Path, name: str) -> str:
    path = tmp_path / f"{name}.bin"
    path.write_bytes(name.encode() * 500)
    end = box.clock()
    return recordings.import_file(box, path, camera="CAM001", officer="J. Jansen", start=end - timedelta(seconds=60),
                                  end=end, actor="admin").recording_id


def set_term(data: Path, days: int) -> None:
    path = data / "kluis.toml"
    text = path.read_text()
    if "[audit]" in text:
        text = re.sub(r"(?m)^term_days = .*\n", "", text).replace("[audit]", f"[audit]\nterm_days = {days}", 1)
    else:
        text += f"\n[audit]\nterm_days = {days}\n"
    path.write_text(text)


@pytest.fixture
def aged(box_dir, auditor, tmp_path):
    """A box whose log spans more than two years: a recording deleted after its term (gone), one still held
    (kept), logins and views in between, then 800 days later a few entries more. Yields (data, box, ids)."""
    data = box_dir[0]
    clock = Clock(datetime.now(timezone.utc).replace(microsecond=0) + timedelta(minutes=1))
    with Box(data, clock=clock) as box:
        gone = store(box, tmp_path, "gone")
        for i in range(5):
            audit.record(box.catalog, actor="tl", action="view", recording_id=gone, purpose="complaint",
                         case_ref=f"K-{i}", client="10.0.0.7")
            audit.record(box.catalog, actor="tl", action="login", client="10.0.0.7")
        clock.advance(days=1)
        kept = store(box, tmp_path, "kept")
        retention.add_hold(box, kept, "police_report", "PV-2026-1", actor="fg")
        audit.checkpoint(box.catalog, box.signing_key(), clock=clock)
        clock.advance(days=40)
        assert sweep.sweep(box).deleted == [gone]
        clock.advance(days=800)
        audit.record(box.catalog, actor="fg", action="login", client="10.0.0.8")
        yield data, box, {"gone": gone, "kept": kept}


def verify(kluis, data: Path, *extra) -> tuple[int, str]:
    result = kluis("audit", "verify", "--data", data, "--user", "au", "--password-file", data.parent / "password.txt",
                   *extra, check=False)
    return result.returncode, result.stdout.decode() + result.stderr.decode()


def sql(data: Path, *statements: str) -> None:
    conn = sqlite3.connect(data / "catalog.db")
    for trigger in ("audit_log_no_update", "audit_log_no_delete", "audit_prunes_no_update"):
        conn.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    for statement in statements:
        conn.execute(statement)
    conn.commit()
    conn.close()


def first_seq(box: Box, **where) -> int:
    return audit.entries(box.catalog, limit=1, **where)[0]["seq"]


def test_pruning_keeps_verify_clean_and_the_held_recordings_trail(aged, kluis):
    data, box, ids = aged
    before = [dict(r) for r in retention.deletion_report(box.catalog)]
    report_before = kluis("retention", "report", "--data", data, "--user", "au", "--password-file",
                          data.parent / "password.txt").stdout
    kept_from = first_seq(box, recording_id=ids["kept"])
    head_before = audit.head(box.catalog)
    views = len(audit.entries(box.catalog, action="view", recording_id=ids["gone"]))

    result = audit_term.prune(box, box.signing_key())

    assert result.refused is None and result.pruned == kept_from - 1
    assert result.plan.kept_by == {"recording_still_stored": kept_from}
    remaining = audit.entries(box.catalog)
    assert remaining[0]["seq"] == kept_from  # the held recording's whole trail, and everything after it, stays
    assert [e["action"] for e in audit.entries(box.catalog, recording_id=ids["kept"])][:2] == ["ingest", "hold_add"]
    assert not audit.entries(box.catalog, recording_id=ids["gone"], action="view")
    assert audit.head(box.catalog)[0] == head_before[0] + 1  # numbering goes on; the prune itself is on record
    on_record = audit.entries(box.catalog, action="audit_prune")[0]["details"]
    assert on_record["first"] == 1 and on_record["last"] == kept_from - 1
    cp = audit_prunes.stored(box.catalog)[0]
    assert cp["actions"]["view"] == views and cp["count"] == kept_from - 1
    assert cp["last_hash"] == remaining[0]["prev_hash"]

    code, out = verify(kluis, data)
    assert code == 0, out
    assert f"pruned: entries 1..{kept_from - 1}" in out and f"view {views}" in out

    # The deletion report reads its own records, not the log: the same rows and counts after pruning.
    assert [dict(r) for r in retention.deletion_report(box.catalog)] == before and len(before) == 1
    assert kluis("retention", "report", "--data", data, "--user", "au", "--password-file",
                 data.parent / "password.txt").stdout == report_before

    # A one-byte change in what remains is still caught, and named.
    changed = first_seq(box, action="hold_add")
    sql(data, f"UPDATE audit_log SET actor = 'fh' WHERE seq = {changed}")  # 'fg' -> 'fh'
    assert audit.entries(box.catalog, after_seq=changed - 1, limit=1)[0]["actor"] == "fh"
    code, out = verify(kluis, data)
    assert code == 1 and f"first bad entry: {changed}" in out, out


@pytest.mark.parametrize("alteration", ["count", "last_hash", "range"])
def test_an_altered_pruning_checkpoint_is_caught(aged, kluis, alteration):
    data, box, _ids = aged
    result = audit_term.prune(box, box.signing_key())
    last = result.checkpoint["last"]
    if alteration == "count":  # fewer views said to have been pruned than were
        views = result.checkpoint["actions"]["view"]
        sql(data, f"""UPDATE audit_prunes SET body = replace(body, '"view":{views}', '"view":{views - 1}')""")
    elif alteration == "last_hash":
        sql(data, f"UPDATE audit_prunes SET body = replace(body, '{result.checkpoint['last_hash']}', '{'0' * 64}')")
    else:  # claim fewer entries pruned: the signed body no longer matches the stored range
        sql(data, f"UPDATE audit_prunes SET last = {last - 1}")
    code, out = verify(kluis, data)
    assert code == 1 and "pruning checkpoint of entries 1.." in out, out
    assert "signature does not match" in out or "stored range" in out


def test_nothing_goes_within_the_term_or_while_the_log_does_not_verify(aged, kluis):
    data, box, _ids = aged
    set_term(data, 3650)
    assert audit_term.prune(box, box.signing_key()).pruned == 0
    set_term(data, 730)
    sql(data, "UPDATE audit_log SET client = '10.0.0.9' WHERE seq = 3")
    result = audit_term.prune(box, box.signing_key())
    assert result.pruned == 0 and "does not verify" in result.refused
    assert audit.entries(box.catalog, limit=1)[0]["seq"] == 1  # the evidence of the change stays


def test_the_catalog_refuses_to_delete_entries_no_pruning_checkpoint_covers(aged):
    data, box, _ids = aged
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        box.catalog.db.execute("DELETE FROM audit_log WHERE seq = 1")
    audit_term.prune(box, box.signing_key())
    remaining = audit.entries(box.catalog, limit=1)[0]["seq"]
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        box.catalog.db.execute("DELETE FROM audit_log WHERE seq = ?", [remaining])
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        box.catalog.db.execute("DELETE FROM audit_prunes")


def test_every_old_entry_goes_when_no_recording_holds_it_and_exported_checkpoints_still_verify(aged, kluis, tmp_path):
    data, box, ids = aged
    exported = tmp_path / "checkpoints.jsonl"
    kluis("audit", "checkpoint", "--data", data, "--export", exported, "--all")
    boundary = audit.head(box.catalog)[0]
    retention.release_hold(box, ids["kept"], "case closed", actor="fg")
    box.clock.advance(days=8)
    sweep.sweep(box)
    audit.checkpoint(box.catalog, box.signing_key(), clock=box.clock, force=True)
    box.clock.advance(days=731)
    plan = audit_term.plan(box)
    assert "recording_still_stored" not in plan.kept_by and plan.last == audit.head(box.catalog)[0] > boundary
    result = audit_term.prune(box, box.signing_key())
    assert result.pruned == plan.last
    code, out = verify(kluis, data, "--checkpoint", exported)
    assert code == 0, out
    # the command line says what went and what would go
    dry = json.loads(kluis("audit", "prune", "--data", data, "--dry-run", "--json").stdout)
    assert dry["count"] == 0 and dry["pruned"] == 0


def test_the_pruning_checkpoint_test_vector_in_the_format_doc():
    """docs/format.md gives a pruning checkpoint signed with a fixed seed: the code makes the same bytes."""
    text = (ROOT / "docs" / "format.md").read_text()
    section = text[text.index("### Test vector: a pruning checkpoint"):]
    seed = re.search(r"seed \(hex\): `([0-9a-f]{64})`", section).group(1)
    body = json.loads(re.search(r"```json\n(.*?)\n```", section, re.S).group(1))
    signature = re.search(r"signature \(hex\): `([0-9a-f]{128})`", section).group(1)
    key = SigningKey(bytes.fromhex(seed))
    assert body["signer"] == bytes(key.verify_key).hex()
    assert audit_prunes.sign(key, body)["signature"] == signature
    assert audit_prunes.check({**body, "signature": signature}, key.verify_key) is None
    assert signing.AUDIT_PRUNE.label == "kluis/v1/audit-prune"


def test_entries_the_log_collector_has_not_confirmed_stay(aged):
    data, box, ids = aged
    config.change(data, {"syslog": {"server": "logs.gemeente.test:6514"}})
    assert audit_term.plan(box).last == 0 and audit_term.plan(box).kept_by == {"log_collector": 1}
    box.catalog.set_meta(log_collector.CURSOR_AUDIT, "5")  # what forward() notes once the collector confirmed 1..5
    result = audit_term.prune(box, box.signing_key())
    assert result.pruned == 5 and result.plan.kept_by == {"log_collector": 6}
    assert audit.verify(box.catalog, box.signing_key().verify_key).ok


def test_a_backup_of_a_pruned_log_restores_and_verifies(aged, kluis, tmp_path):
    data, box, ids = aged
    pruned = audit_term.prune(box, box.signing_key()).pruned
    usb, new = tmp_path / "usb", tmp_path / "restored"
    kluis("backup", "--data", data, "--to", usb)
    # restore itself refuses a log that does not verify (appliance/restore.py)
    kluis("restore", "--data", new, "--from", usb, "--password-file", data.parent / "password.txt")
    code, out = verify(kluis, new)
    assert code == 0, out
    assert f"pruned: entries 1..{pruned}" in out
    with Box(new) as restored:
        assert audit_prunes.stored(restored.catalog) == audit_prunes.stored(box.catalog)
        assert audit.entries(restored.catalog, recording_id=ids["kept"])[0]["action"] == "ingest"
