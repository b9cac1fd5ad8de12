"""Each kind of tampering with the audit log is detected by the real `kluis audit verify`, which names
the first bad entry; a clean log passes."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from appliance import audit
from appliance.box import Box

ENTRIES = 10


@pytest.fixture
def logged(box_dir, kluis, tmp_path, auditor) -> tuple[Path, Path]:
    """A box with ENTRIES audit entries, a signed checkpoint over them, and that checkpoint exported.
    The first entry enrols the auditor who runs `kluis audit verify` (each run checks the log as found,
    then appends the auditor's 'login' entry)."""
    data = box_dir[0]
    with Box(data) as box:
        for i in range(1, ENTRIES):
            audit.record(box.catalog, actor=f"user{i % 3}", action="view", recording_id=f"r{i}",
                         purpose="complaint", case_ref=f"K-{i}", client="10.0.0.7", details={"i": i})
    exported = tmp_path / "checkpoints.jsonl"
    kluis("audit", "checkpoint", "--data", data, "--export", exported)
    return data, exported


def sql(data: Path, *statements: str, params=()) -> None:
    conn = sqlite3.connect(data / "catalog.db")
    conn.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
    conn.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
    for statement in statements:
        conn.execute(statement, params) if params else conn.execute(statement)
    conn.commit()
    conn.close()


def verify(kluis, data: Path, *extra) -> tuple[int, str]:
    """`kluis audit verify` as the auditor (the shared password_file fixture sits next to the data dir)."""
    result = kluis("audit", "verify", "--data", data, "--user", "au", "--password-file", data.parent / "password.txt",
                   *extra, check=False)
    return result.returncode, result.stdout.decode() + result.stderr.decode()


def test_clean_log_verifies(logged, kluis):
    data, exported = logged
    code, out = verify(kluis, data, "--checkpoint", exported)
    assert code == 0, out
    assert f"ok: {ENTRIES} entries" in out and "2 signed checkpoint" not in out


def test_edited_field(logged, kluis):
    data, _ = logged
    sql(data, "UPDATE audit_log SET actor = 'someone_else' WHERE seq = 4")
    code, out = verify(kluis, data)
    assert code == 1 and "first bad entry: 4" in out and "entry 4: contents changed" in out


def test_deleted_row(logged, kluis):
    data, _ = logged
    sql(data, "DELETE FROM audit_log WHERE seq = 6")
    code, out = verify(kluis, data)
    assert code == 1 and "first bad entry: 6" in out and "entry 6: missing" in out


def test_swapped_rows(logged, kluis):
    data, _ = logged
    # Exchange the contents of entries 3 and 7 (each keeps its own hash, as a careless forger would).
    cols = "time, actor, action, recording_id, purpose, case_ref, client, details, prev_hash, hash"
    sql(data, f"CREATE TABLE t AS SELECT seq, {cols} FROM audit_log WHERE seq IN (3, 7)",
        "DELETE FROM audit_log WHERE seq IN (3, 7)",
        f"INSERT INTO audit_log (seq, {cols}) SELECT CASE seq WHEN 3 THEN 7 ELSE 3 END, {cols} FROM t")
    code, out = verify(kluis, data)
    assert code == 1 and "first bad entry: 3" in out


def test_truncated_tail(logged, kluis):
    data, _ = logged
    sql(data, f"DELETE FROM audit_log WHERE seq > {ENTRIES - 3}")
    code, out = verify(kluis, data)
    assert code == 1 and f"first bad entry: {ENTRIES - 2}" in out and "missing" in out


def rehash_forgery(data: Path, drop: bool = False, strip: bool = False) -> None:
    """Rewrite the log (user1's views become user0's, or with `drop` vanish) and recompute the whole
    chain: no key is needed for that. The entries' own signatures stay as they were (no key, no new ones);
    with `strip` they are removed, as in a log from before entries were signed."""
    conn = sqlite3.connect(data / "catalog.db")
    conn.row_factory = sqlite3.Row
    rows = [dict(r) for r in conn.execute(f"SELECT {', '.join(audit.STORED)} FROM audit_log ORDER BY seq")]
    conn.close()
    forged, prev = [], audit.GENESIS
    for row in rows:
        if row["actor"] == "user1":
            if drop:
                continue
            row["actor"] = "user0"
        row.update(seq=len(forged) + 1, prev_hash=prev, signature=None if strip else row["signature"])
        row["hash"] = prev = audit.entry_hash(row)
        forged.append(row)
    placeholders = ", ".join("?" * len(audit.STORED))
    conn = sqlite3.connect(data / "catalog.db")
    conn.execute("DROP TRIGGER audit_log_no_delete")
    conn.execute("DELETE FROM audit_log")
    conn.executemany(f"INSERT INTO audit_log VALUES ({placeholders})",
                     [[r[c] for c in audit.STORED] for r in forged])
    conn.commit()
    conn.close()


def test_rehashed_forgery_against_stored_checkpoint(logged, kluis):
    data, _ = logged
    rehash_forgery(data)
    code, out = verify(kluis, data)
    # Entry 2 is user1's first view: its own signature no longer matches its new hash, entry 1's still does.
    assert code == 1 and "first bad entry: 2\n" in out and "entry 2 changed: its signature does not match" in out


def test_rehashed_forgery_without_entry_signatures_names_the_range(logged, kluis):
    """A log whose entries carry no signature of their own (from before they were signed, or stripped)."""
    data, _ = logged
    rehash_forgery(data, strip=True)
    code, out = verify(kluis, data)
    # Re-hashed from the first changed entry on, the log is consistent in itself: only the checkpoint over
    # all ENTRIES tells, so the change lies somewhere in 1..ENTRIES (not "entry 1", which is unchanged).
    assert code == 1 and f"one of entries 1..{ENTRIES}" in out and "rewritten" in out
    assert "first bad entry: 1\n" not in out


def test_rehashed_shorter_forgery(logged, kluis):
    data, _ = logged
    rehash_forgery(data, drop=True)
    code, out = verify(kluis, data)
    assert code == 1 and "missing" in out


def test_rehashed_forgery_with_checkpoints_removed_or_resigned(logged, kluis):
    data, exported = logged
    rehash_forgery(data)
    # The forger also drops the stored checkpoints and signs a new one with a key of their own,
    # putting that key in the catalog's meta table.
    fake = SigningKey.generate()
    with Box(data) as box:
        count, head = audit.head(box.catalog)
    body = {"type": audit.CHECKPOINT_TYPE, "v": 1, "signer": bytes(fake.verify_key).hex(), "count": count,
            "head": head, "time": "2026-01-01T00:00:00.000Z"}
    signature = fake.sign(audit.canonical(body)).signature.hex()
    sql(data, "DELETE FROM audit_checkpoints",
        f"INSERT INTO audit_checkpoints (count, head, time, signer, signature) VALUES "
        f"({count}, '{head}', '{body['time']}', '{body['signer']}', '{signature}')",
        f"UPDATE meta SET value = '{body['signer']}' WHERE key = 'signing_public_key'")
    code, out = verify(kluis, data)
    assert code == 1 and "signed by another key" in out
    # Even with no checkpoint left on the box, the exported one (held outside) exposes the forgery.
    sql(data, "DELETE FROM audit_checkpoints")
    code, out = verify(kluis, data, "--checkpoint", exported)
    assert code == 1 and "first bad entry: 2\n" in out


def test_exported_checkpoint_detects_truncation_after_checkpoint_rows_dropped(logged, kluis):
    data, exported = logged
    sql(data, "DELETE FROM audit_checkpoints", f"DELETE FROM audit_log WHERE seq > {ENTRIES - 1}")
    # (The run with the outside checkpoint goes first: each run appends the auditor's login after its check.)
    code, out = verify(kluis, data, "--checkpoint", exported)
    assert code == 1 and f"first bad entry: {ENTRIES}" in out  # the checkpoint kept outside exposes it...
    code, out = verify(kluis, data)
    assert code == 0  # ...while with nothing to compare the tail against, the chain alone looks fine


def test_checkpoint_file_format(logged):
    _, exported = logged
    [cp] = [json.loads(line) for line in exported.read_text().splitlines()]
    assert cp["type"] == "kluis-audit-checkpoint" and cp["count"] == ENTRIES and len(cp["signature"]) == 128


# The first changed entry, named as precisely as the evidence allows (issue 19, defect 5) -------------------

def grow_and_checkpoint(kluis, data: Path, until: int) -> None:
    """Append view entries up to `until` entries in all, then sign a checkpoint over them."""
    with Box(data) as box:
        while audit.head(box.catalog)[0] < until:
            audit.record(box.catalog, actor="user2", action="view", recording_id="r-late", purpose="complaint")
    kluis("audit", "checkpoint", "--data", data)


def rewrite_from(data: Path, first: int, relink: bool = True, strip: bool = False) -> None:
    """Change entry `first` and re-hash it; with `relink`, re-hash every later entry too (a careful forger,
    who cannot sign them again without the key); with `strip`, no entry keeps its own signature (as in a log
    from before entries were signed)."""
    conn = sqlite3.connect(data / "catalog.db")
    conn.row_factory = sqlite3.Row
    rows = [dict(r) for r in conn.execute(f"SELECT {', '.join(audit.STORED)} FROM audit_log ORDER BY seq")]
    conn.close()
    prev = audit.GENESIS
    for row in rows:
        if row["seq"] == first:
            row["actor"] = "nobody"
        if row["seq"] == first or (relink and row["seq"] > first):
            row["prev_hash"] = prev
            row["hash"] = audit.entry_hash(row)
        prev = row["hash"]
        if strip:
            row["signature"] = None
    placeholders = ", ".join("?" * len(audit.STORED))
    conn = sqlite3.connect(data / "catalog.db")
    conn.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
    conn.execute("DELETE FROM audit_log")
    conn.executemany(f"INSERT INTO audit_log VALUES ({placeholders})", [[r[c] for c in audit.STORED] for r in rows])
    conn.commit()
    conn.close()


def test_rewrite_after_checkpoint_names_first_changed_entry(logged, kluis):
    """Checkpoints over 10 and 20 entries; entry 11 changed and everything after re-hashed: the log still
    matches the checkpoint over 10, so the rewrite began at 11 (not "after entry 0")."""
    data, _ = logged
    grow_and_checkpoint(kluis, data, 20)
    rewrite_from(data, 11, strip=True)
    code, out = verify(kluis, data)
    assert code == 1 and "one of entries 11..20" in out, out
    assert "entry 0" not in out and "entries 1.." not in out


def test_rewrite_resigned_with_the_box_key_names_first_changed_entry(logged, kluis):
    """The forger re-hashed from entry 11 and signed a checkpoint with the box's own key (it is on the disk):
    the two checkpoints over 20 entries disagree, the one over 10 still holds, so the change is in 11..20,
    not at entry 1 as before."""
    data, _ = logged
    grow_and_checkpoint(kluis, data, 20)
    rewrite_from(data, 11)
    kluis("audit", "checkpoint", "--data", data)  # needs no login, only the key on the disk
    code, out = verify(kluis, data)
    assert code == 1 and "disagree" in out and "first bad entry: 11\n" in out, out
    assert "first bad entry: 1\n" not in out


def test_single_rehashed_entry_names_it_not_the_next(logged, kluis):
    """Entry 5 changed and its own hash recomputed, the chain not relinked: entry 6 no longer follows it,
    which blames 5 or 6, never 6 alone (before: "first bad entry: 6")."""
    data, _ = logged
    rewrite_from(data, 5, relink=False)  # a signed log: entry 5's own signature names it
    code, out = verify(kluis, data)
    assert code == 1 and "first bad entry: 5\n" in out, out
    rewrite_from(data, 5, relink=False, strip=True)  # without signatures: the link names both
    code, out = verify(kluis, data)
    assert code == 1 and "one of entries 5..6" in out, out



# Each entry's own signature names the first changed one exactly (issue 19, defect 5) ------------------------

def test_rewrite_between_checkpoints_names_the_exact_entry(logged, kluis):
    """30 entries and a checkpoint over them; entry 11 changed and 11..30 re-hashed without the key: the
    chain and the checkpoint only say "one of entries 1..30", entry 11's own signature says which."""
    data, _ = logged
    sql(data, "DELETE FROM audit_checkpoints")  # only the checkpoint over 30 vouches for the log
    grow_and_checkpoint(kluis, data, 30)
    rewrite_from(data, 11)
    code, out = verify(kluis, data)
    assert code == 1 and "first bad entry: 11\n" in out, out
    assert "entry 11 changed: its signature does not match" in out and "one of entries" not in out.splitlines()[-1]


def test_tail_rewritten_after_the_last_checkpoint_is_caught(logged, kluis):
    """Entries after the newest checkpoint have no signed head to answer to: their own signatures do."""
    data, _ = logged
    grow_and_checkpoint(kluis, data, 20)
    with Box(data) as box:
        for _ in range(10):
            audit.record(box.catalog, actor="user2", action="view", recording_id="r-tail", purpose="complaint")
    code, out = verify(kluis, data)
    assert code == 0 and "the last 10 entries are not yet under a checkpoint (10 checked by their own" in out, out
    rewrite_from(data, 25)
    code, out = verify(kluis, data)
    assert code == 1 and "first bad entry: 25\n" in out and "after the last checkpoint" in out, out


def test_log_from_before_entry_signatures(logged, kluis):
    """A log whose entries carry no signature of their own verifies clean, and a rewrite of it is named
    by the range the checkpoints allow, as before."""
    data, _ = logged
    grow_and_checkpoint(kluis, data, 20)
    sql(data, "DROP TRIGGER IF EXISTS audit_log_sign_once", "UPDATE audit_log SET signature = NULL")
    code, out = verify(kluis, data)
    assert code == 0 and "ok: 20 entries" in out, out
    rewrite_from(data, 11, strip=True)
    code, out = verify(kluis, data)
    assert code == 1 and "one of entries 11..20" in out and "carry no signature" in out, out


def test_a_process_without_the_key_leaves_entries_for_the_checkpoint_to_sign(logged, kluis):
    data, _ = logged
    with Box(data) as box:
        box.catalog.audit_key = None  # as a process that cannot read the key file
        seq = audit.record(box.catalog, actor="system", action="view", recording_id="r1", purpose="complaint")
        assert box.catalog.db.execute("SELECT signature FROM audit_log WHERE seq = ?", [seq]).fetchone()[0] is None
    code, out = verify(kluis, data)  # not an error, but said
    assert code == 0 and "1 of them not yet signed on its own" in out, out
    kluis("audit", "checkpoint", "--data", data)
    with Box(data) as box:
        [signature, hash_] = box.catalog.db.execute("SELECT signature, hash FROM audit_log WHERE seq = ?",
                                                    [seq]).fetchone()
        assert audit.entry_signature_valid(box.signing_key().verify_key, hash_, signature)
        with pytest.raises(sqlite3.IntegrityError):  # signed once: the signature is as append-only as the rest
            box.catalog.db.execute("UPDATE audit_log SET signature = 'ab' WHERE seq = ?", [seq])
