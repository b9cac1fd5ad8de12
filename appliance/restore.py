"""Restoring a backup (docs/backup.md) onto a fresh data directory: choose the newest backup that verifies,
unlock it with a keeper's password or the recovery key, write the catalog, the files and the recordings,
then replay the deletion journal's later deletions and apply the retention term again (the sweep), so that
what the box deleted after the backup stays deleted and nothing whose term has ended comes back. Deleting
goes the sweep's own way (appliance/sweep.py): keys and row in one transaction, then the blob, synced and
recorded. A restore that fails at any step leaves no directory behind."""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterator

from nacl.public import PrivateKey

from . import audit, keys, recordings, sweep
from .backup import CATALOG_FILE, FILES_FILE, SLOTS_FILE, Check, copy_file, in_files, list_backups, verify_backup
from .backup_store import STORE
from .backup_journal import DELETION_FIELDS, NOT_RESTORED, Journal, deleted_since, read_journal
from .box import CATALOG, SIGNING_KEY, Box
from .container import PREFIX, Decryptor, header_length, read_header
from .durable import fsync_dir
from .errors import KluisError, WrongSecret


@dataclass
class Restored:
    name: str
    data_dir: Path
    recordings: int
    replayed: int                  # recordings in the backup deleted since, removed again
    recorded: int                  # deletion records added from the journal
    expired: int = 0               # recordings in the backup whose term has ended since, deleted by the sweep
    skipped: list[tuple[str, str]] = field(default_factory=list)  # newer backups passed over, and why


def choose(target: Path, name: str | None = None, signer: str | None = None
           ) -> tuple[Check, Journal, list[tuple[str, str]]]:
    """The backup to restore: `name`, or the newest one that verifies. One past its expires_at is restored
    too: the sweep that ends every restore deletes what is past its term by then, and the journal what
    the box deleted."""
    journal = read_journal(target, signer)
    if not journal.ok:
        raise KluisError(f"the deletion journal on {target} is damaged: {journal.problems[0]}; nothing restored")
    signer = signer or journal.signer
    backups = list_backups(target)
    if name is not None:
        backups = [p for p in backups if p.name == name]
        if not backups:
            raise KluisError(f"no backup {name!r} in {target}")
    if not backups:
        raise KluisError(f"no Kluis backup in {target}")
    skipped = []
    for path in reversed(backups):
        check = verify_backup(path, signer, journal)
        if not check.ok:
            skipped.append((path.name, check.problems[0]))
            continue
        return check, journal, skipped
    raise KluisError("no backup to restore: " + "; ".join(f"{n}: {why}" for n, why in skipped))


def _unlock(slots: dict, user: str | None, password: str | None, recovery_key: str | None) -> PrivateKey:
    secret: bytes | None
    if recovery_key is not None:
        secret = keys.open_recovery_slot(slots["recovery_slot"], recovery_key)
    else:
        user = user or slots.get("init_user")
        slot = slots.get("keepers", {}).get(user)
        if slot is None:
            raise KluisError(f"{user!r} is not a keeper in this backup (keepers: {', '.join(slots.get('keepers', {}))})")
        secret = keys.open_slot(slot, password or "")
        if secret is None:
            raise KluisError(f"{user!r} holds no key slot in this backup")
    identity = PrivateKey(secret)
    if bytes(identity.public_key).hex() != slots["box_public_key"]:
        raise WrongSecret("the key slot holds another box's key")
    return identity


def open_sealed(path: Path, identity: PrivateKey) -> Iterator[bytes]:
    with open(path, "rb") as f:
        header = read_header(f)
        decryptor = Decryptor(header, header.unwrap(identity))
        yield from decryptor.stream(f)


def _extract_files(data: BinaryIO, dest: Path) -> None:
    with tarfile.open(fileobj=data, mode="r:") as tar:
        for member in tar.getmembers():
            rel = Path(member.name)
            if not member.isfile() or rel.is_absolute() or ".." in rel.parts or not in_files(rel):
                raise KluisError(f"the backup's files hold an unexpected entry {member.name!r}; nothing restored")
            src = tar.extractfile(member)
            assert src is not None  # a regular file, checked above
            out = dest / rel
            out.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, member.mode & 0o700 or 0o600)
            with os.fdopen(fd, "wb") as f:
                shutil.copyfileobj(src, f)
                f.flush()
                os.fsync(f.fileno())


def restore(target: Path, data_dir: Path, *, user: str | None = None, password: str | None = None,
            recovery_key: str | None = None, name: str | None = None, signer: str | None = None,
            clock=None) -> Restored:
    """Restore onto a fresh data directory: verify first, unlock with a keeper's password or the recovery
    key, write catalog, files and recordings, replay the journal's later deletions, apply the term (sweep),
    audit, verify. Any failure removes the new directory again."""
    from .clock import system_clock

    clock = clock or system_clock
    data_dir = Path(data_dir)
    if data_dir.exists() and any(data_dir.iterdir()):
        raise KluisError(f"{data_dir} exists and is not empty: restore onto a fresh directory")
    check, journal, skipped = choose(target, name, signer)
    manifest, source = check.verified_manifest, check.path
    slots = json.loads((source / SLOTS_FILE).read_text(encoding="utf-8"))
    if slots.get("box_public_key") != manifest["box_public_key"]:
        raise KluisError("the key slots are not this backup's box's; nothing restored")
    identity = _unlock(slots, user, password, recovery_key)

    data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(data_dir, 0o700)
    try:
        files = io.BytesIO(b"".join(open_sealed(source / FILES_FILE, identity)))
        _extract_files(files, data_dir)
        signing = keys.read_signing_key(data_dir / SIGNING_KEY)
        if bytes(signing.verify_key).hex() != manifest["signer"]:
            raise KluisError("the backup's signing key is not the one that signed it; nothing restored")
        fd = os.open(data_dir / CATALOG, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            for block in open_sealed(source / CATALOG_FILE, identity):
                f.write(block)
            f.flush()
            os.fsync(f.fileno())
        for sub in ("blobs", "tmp"):
            (data_dir / sub).mkdir(exist_ok=True)
        dirs = set()
        gone = deleted_since(manifest, journal)
        for rec in manifest["recordings"]:
            dst = data_dir / "blobs" / rec["sha256"][:2] / rec["sha256"]
            stored = Path(target) / rec["blob"]
            if rec["id"] in gone and rec["blob"].startswith(STORE + "/") and not stored.exists():
                continue  # deleted since, its copy with it: the journal's replay below deletes its row too
            dst.parent.mkdir(exist_ok=True)
            if rec["blob"].startswith(STORE + "/"):
                _payload_of(stored, dst)
            else:  # a backup of a Kluis that carried held recordings only: the payload is the file
                copy_file(source / rec["blob"], dst)
            dirs.add(dst.parent)
        for directory in dirs:
            fsync_dir(directory)
        fsync_dir(data_dir / "blobs")  # the shard directories made above are entries in blobs/
        fsync_dir(data_dir)
        return _finish(data_dir, clock, manifest, journal, skipped, slots, user, recovery_key)
    except BaseException:
        shutil.rmtree(data_dir, ignore_errors=True)
        raise


def _payload_of(stored: Path, dst: Path) -> None:
    """A stored recording (header, payload) into the vault's form: the payload alone (the header is in
    the catalog; the recordings' check after the restore holds the two together to the recording's hash)."""
    with open(stored, "rb") as fin:
        fin.seek(header_length(fin.read(PREFIX.size)))
        fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fout:
            shutil.copyfileobj(fin, fout, 8 * 1024 * 1024)
            fout.flush()
            os.fsync(fout.fileno())


def _finish(data_dir: Path, clock, manifest: dict, journal: Journal, skipped: list[tuple[str, str]], slots: dict,
            user: str | None, recovery_key: str | None) -> Restored:
    """The restored box opened: bound to the manifest, deletions replayed, term applied, audited, checked."""
    with Box(data_dir, clock) as box:
        for meta, want in (("box_public_key", manifest["box_public_key"]), ("signing_public_key", manifest["signer"])):
            if box.catalog.get_meta(meta) != want:
                raise KluisError(f"the restored catalog's {meta} is not the backup's")
        want = manifest["audit"]
        row = box.catalog.db.execute("SELECT hash FROM audit_log WHERE seq = ?", [want["count"]]).fetchone()
        if (row[0] if row else audit.GENESIS) != want["head"] or audit.head(box.catalog)[0] != want["count"]:
            raise KluisError("the restored audit log is not the one the manifest names")
        count = len(box.catalog.list_recordings())
        start = manifest["journal"]["seq"] if manifest.get("journal") else 0
        later = journal.entries[start:]
        replayed, recorded = replay(box, later)
        expired = len(sweep.sweep(box).deleted)
        via = "recovery key" if recovery_key is not None else str(user or slots.get("init_user") or "keeper")
        with box.catalog.transaction():
            audit.record(box.catalog, actor=via if recovery_key is None else "recovery", action="restore",
                         client="cli", clock=box.clock,
                         details={"backup": manifest["name"], "created_at": manifest["created_at"],
                                  "expires_at": manifest["expires_at"], "recordings": count,
                                  "journal_entries_replayed": len(later), "recordings_deleted_again": replayed,
                                  "recordings_past_term": expired,
                                  "deletion_records_added": recorded, "unlocked_with": via,
                                  "skipped": [{"name": n, "why": w} for n, w in skipped]})
        audit.checkpoint(box.catalog, box.signing_key(), clock=box.clock)
        problems = recordings.verify(box)
        if problems:
            raise KluisError(f"restored, but {len(problems)} recording(s) do not verify: "
                             f"{problems[0].recording_id}: {problems[0].what}")
        report = audit.verify(box.catalog, box.signing_key().verify_key)
        if not report.ok:
            raise KluisError(f"restored, but the audit log does not verify: {report.problems[0]}")
    return Restored(manifest["name"], data_dir, count - replayed - expired, replayed, recorded, expired, skipped)


def replay(box: Box, entries: list[dict]) -> tuple[int, int]:
    """Apply the journal's deletions to a restored box: a recording still here is crypto-shredded again
    with the original box's deletion record, the sweep's way (file keys, row, record and audit entry in one
    transaction; then the blob, synced, its removal recorded: sweep.finish_pending); for one that is not,
    its record is added, so the deletion report is complete. Returns (recordings shredded, records added)."""
    shredded = recorded = 0
    db = box.catalog.db
    with box.catalog.transaction():
        for entry in entries:
            for d in entry["deletions"]:
                rid = d["recording_id"]
                present = db.execute("SELECT 1 FROM recordings WHERE id = ?", [rid]).fetchone() is not None
                if present:
                    db.execute("DELETE FROM file_keys WHERE recording_id = ?", [rid])
                    db.execute("DELETE FROM sync_outbox WHERE recording_id = ?", [rid])
                    db.execute("DELETE FROM recordings WHERE id = ?", [rid])
                    audit.record(box.catalog, actor="system", action="delete", recording_id=rid, clock=box.clock,
                                 details={"sha256": d["sha256"], "reason": d["reason"], "replayed": True,
                                          "journal_seq": entry["seq"], "deleted_at": d["deleted_at"]})
                    shredded += 1
                existing = db.execute("SELECT reason FROM deletions WHERE recording_id = ?", [rid]).fetchone()
                if existing is None or existing[0] in NOT_RESTORED:
                    # blob_removed_at stays empty where a blob is still to go: finish_pending removes it
                    db.execute(
                        f"INSERT OR REPLACE INTO deletions ({', '.join(DELETION_FIELDS)}, blob_removed_at) "
                        f"VALUES ({', '.join('?' * (len(DELETION_FIELDS) + 1))})",
                        [d[k] for k in DELETION_FIELDS] + [None if present else box.now_iso()])
                    recorded += existing is None
    sweep.finish_pending(box)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return shredded, recorded
