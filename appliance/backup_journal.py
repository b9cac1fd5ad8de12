"""The deletion journal on a backup target (docs/backup.md, "Deletion journal"): one signed, hash-chained
entry per `kluis backup` (or `kluis backup journal`) with every deletion record of the box not yet in it,
so that a restore from an older backup deletes again what the box deleted since. No personal data: the
columns of the verwijderverslag only."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from . import keys, signing
from .box import Box
from .canonical import canonical
from .durable import fsync_dir
from .errors import KluisError

JOURNAL_TYPE = "kluis-backup-journal"
JOURNAL = "kluis-journal.jsonl"
GENESIS = "0" * 64
DELETION_FIELDS = ("recording_id", "sha256", "start_time", "end_time", "ingested_at", "size", "category",
                   "term_days", "policy", "reason", "deleted_at")
NOT_IN_BACKUP = "past its term when the backup was made (not restored)"
# The same record as a Kluis that backed up held recordings only wrote it: never a deletion of the box's own.
NOT_IN_BACKUP_BEFORE = "not under hold when the backup was made (not restored)"
NOT_RESTORED = (NOT_IN_BACKUP, NOT_IN_BACKUP_BEFORE)


def entry_hash(entry: dict) -> str:
    return hashlib.sha256(b"kluis-backup-journal-v1\n" + canonical(entry)).hexdigest()


@dataclass
class Journal:
    entries: list[dict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def head(self) -> tuple[int, str]:
        return (self.entries[-1]["seq"], entry_hash(self.entries[-1])) if self.entries else (0, GENESIS)

    @property
    def signer(self) -> str | None:
        return self.entries[0]["signer"] if self.entries else None

    def recorded_ids(self) -> set[str]:
        return {d["recording_id"] for e in self.entries for d in e["deletions"]}


def deleted_since(manifest: dict, journal: Journal | None) -> set[str]:
    """The recordings of a backup that the journal's later entries say the box deleted since it was made."""
    if journal is None:
        return set()
    start = (manifest.get("journal") or {}).get("seq", 0)
    return {d["recording_id"] for e in journal.entries[start:] for d in e["deletions"]}


def read_journal(target: Path, signer: str | None = None) -> Journal:
    """Read and check the journal: every entry signed by one key, numbered 1, 2, ... and chained."""
    journal = Journal()
    path = Path(target) / JOURNAL
    if not path.exists():
        return journal
    prev, expected = GENESIS, 1
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            journal.problems.append(f"{JOURNAL} line {number}: not JSON")
            break
        if not isinstance(entry, dict) or entry.get("type") != JOURNAL_TYPE:
            journal.problems.append(f"{JOURNAL} line {number}: not a journal entry")
            break
        wrong = signing.check_signed(entry, signing.BACKUP_JOURNAL, signer or journal.signer)
        if wrong:
            journal.problems.append(f"{JOURNAL} entry {entry.get('seq')}: {wrong}")
            break
        if entry.get("seq") != expected or entry.get("prev") != prev:
            journal.problems.append(f"{JOURNAL} entry {entry.get('seq')}: does not follow entry {expected - 1} "
                                    "(entries removed, inserted or reordered)")
            break
        journal.entries.append(entry)
        prev, expected = entry_hash(entry), expected + 1
    return journal


def append_journal(box: Box, target: Path, backup_name: str | None = None) -> dict:
    """Append one signed entry with every deletion record of the box not yet in the journal."""
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    key = box.signing_key()
    signer = bytes(key.verify_key).hex()
    journal = read_journal(target)
    if journal.signer is not None and journal.signer != signer:
        other = keys.fingerprint(bytes.fromhex(journal.signer))
        raise KluisError(f"{target} holds the backups of another box (signer {other}); "
                         "use another directory")
    if not journal.ok:
        raise KluisError(f"the deletion journal on {target} is damaged: {journal.problems[0]}")
    known = journal.recorded_ids()
    rows = box.catalog.db.execute(
        f"SELECT {', '.join(DELETION_FIELDS)} FROM deletions WHERE reason NOT IN (?, ?) ORDER BY deleted_at, "
        "recording_id", list(NOT_RESTORED)).fetchall()
    deletions = [dict(zip(DELETION_FIELDS, row)) for row in rows if row[0] not in known]
    seq, prev = journal.head
    entry = signing.signed({"type": JOURNAL_TYPE, "v": 1, "seq": seq + 1, "prev": prev, "signer": signer,
                   "time": box.now_iso(), "backup": backup_name, "deletions": deletions},
                           key, signing.BACKUP_JOURNAL)
    path = target / JOURNAL
    with open(path, "a", encoding="utf-8") as f:
        f.write(canonical(entry).decode("utf-8") + "\n")
        f.flush()
        os.fsync(f.fileno())
    fsync_dir(target)
    return entry
