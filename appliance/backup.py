"""Backups: an encrypted, signed, verifiable copy of a box on a target directory (a USB disk, a share),
rotated so that no backup keeps a recording's key past its retention, and restored onto a fresh box with
the deletions made since replayed. The format is on one page: docs/backup.md.

A backup is made while nobody is logged in, so it uses public keys only: its payloads are Kluis containers
(appliance/container.py) sealed to the box's X25519 key, and its manifest is signed with the box's Ed25519
signing key. Anyone can check a backup (hashes and signature); only a keeper's password or the recovery
key (their key slots travel in the backup) opens it.

What is in it: a consistent snapshot of the catalog (SQLite backup API, never a copy of a live WAL file)
with every recording that is not under hold removed, with its wrapped file keys, so that a backup never
extends a recording's life; the files of the data directory (configuration, signing key, TLS key); and
the payload blobs of the held recordings (ciphertext already).

Rotation, exactly (`prune`): a backup records `expires_at`, the earliest moment any recording in it could
lawfully be deleted on the box: for each held recording max(end + term, keep_until, backup time +
grace_days), since a hold can be released at any moment and the recording then lives at least grace_days
more. Every `kluis backup` run, after the new backup is written and verified, deletes each older backup
on the target that (a) is past its expires_at, or (b) holds a recording the box has deleted since (a
policy change can make that happen before expires_at), or (c) is not among the newest `keep`. Deleting
overwrites the parts that hold keys (catalog, key slots) before unlinking; the blobs are ciphertext whose
keys were only in those parts.

Deletion journal: each run first appends to `kluis-journal.jsonl` on the target one signed, hash-chained
entry with every deletion record of the box not yet in the journal (no personal data: the verwijderverslag
columns). `kluis backup journal` appends one without making a backup (cheap, e.g. after each sweep). A
restore from a backup replays the deletions of every later entry, so a recording deleted after the backup
stays deleted.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import shutil
import sqlite3
import tarfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import BinaryIO, Iterator

import nacl.exceptions
from nacl.public import PrivateKey
from nacl.signing import SigningKey, VerifyKey

from . import audit, keys, recordings, retention
from .box import CATALOG, SIGNING_KEY, Box
from .clock import from_iso, to_iso
from .container import Decryptor, Encryptor, read_header
from .errors import KluisError, WrongSecret
from .vault import READ_BLOCK, fsync_dir, fsync_path

log = logging.getLogger(__name__)

BACKUP_TYPE = "kluis-backup"
JOURNAL_TYPE = "kluis-backup-journal"
JOURNAL = "kluis-journal.jsonl"
MANIFEST = "manifest.json"
CATALOG_FILE = "catalog.kluis"
FILES_FILE = "files.kluis"
SLOTS_FILE = "keyslots.json"
PREFIX = "kluis-"
DEFAULT_KEEP = 7
GENESIS = "0" * 64
# The "files" payload: the data directory's top-level files but the catalog (snapshotted apart), and the
# key and certificate directories. Other directories are work in progress (tmp/, the updater's, staged
# set-ups, handover downloads waiting to be fetched) or blobs (the held ones are copied apart).
EXCLUDED_TOP = {CATALOG, CATALOG + "-wal", CATALOG + "-shm"}
INCLUDED_DIRS = {"keys", "tls"}
DELETION_FIELDS = ("recording_id", "sha256", "start_time", "end_time", "ingested_at", "size", "category",
                   "term_days", "policy", "reason", "deleted_at")
NOT_IN_BACKUP = "not under hold when the backup was made (not restored)"


def canonical(value) -> bytes:
    return audit.canonical(value)


def _sign(body: dict, key: SigningKey) -> dict:
    return {**body, "signature": key.sign(canonical(body)).signature.hex()}


def _check_signed(item: dict, signer: str | None = None) -> str | None:
    """None if `item` carries a good signature by its own `signer` (and that is `signer`, if given)."""
    try:
        body = {k: v for k, v in item.items() if k != "signature"}
        VerifyKey(bytes.fromhex(item["signer"])).verify(canonical(body), bytes.fromhex(item["signature"]))
    except (KeyError, TypeError, ValueError, nacl.exceptions.BadSignatureError):
        return "signature does not match"
    if signer is not None and item["signer"] != signer:
        return f"signed by {keys.fingerprint(bytes.fromhex(item['signer']))}, not by the expected box"
    return None


def signer_fingerprint(hex_key: str) -> str:
    return keys.fingerprint(bytes.fromhex(hex_key))


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(READ_BLOCK):
            digest.update(block)
    return digest.hexdigest()


# The catalog snapshot -----------------------------------------------------------------------------------

def held_ids(db, now: str) -> list[str]:
    """Recordings under an active hold at `now` (what a backup carries)."""
    return [r[0] for r in db.execute(
        "SELECT id FROM recordings WHERE state = 'stored' AND id IN (SELECT recording_id FROM holds "
        "WHERE released_at IS NULL AND (until IS NULL OR until > ?)) ORDER BY id", [now])]


def snapshot_catalog(box: Box, now: datetime) -> tuple[bytes, list[dict], str | None, tuple[int, str]]:
    """A consistent copy of the catalog in memory, stripped of every recording not under hold and of its
    wrapped file keys. Returns (SQLite file bytes, the held recordings, expires_at, the audit log's head in
    it). In memory, not a temp
    file: an unlinked temp file would leave the stripped keys in free disk blocks."""
    mem = sqlite3.connect(":memory:", isolation_level=None)
    try:
        box.catalog.db.conn.backup(mem)  # the SQLite backup API: one consistent read of the live catalog
        mem.execute("PRAGMA secure_delete=ON")
        now_iso = to_iso(now)
        keep = held_ids(mem, now_iso)
        policy = retention.current_policy(box)
        policy_text = json.dumps(policy.as_dict(), sort_keys=True)
        mem.execute("BEGIN")
        mem.execute("CREATE TEMP TABLE keep (id TEXT PRIMARY KEY)")
        mem.executemany("INSERT INTO keep VALUES (?)", [(i,) for i in keep])
        dropped = mem.execute(
            "SELECT id, sha256, start_time, end_time, ingested_at, size, category FROM recordings "
            "WHERE id NOT IN (SELECT id FROM keep)").fetchall()
        # The restored box's deletion report says what it lost; the journal may replace these with the
        # original box's own deletion records.
        mem.executemany(
            "INSERT OR IGNORE INTO deletions (recording_id, sha256, start_time, end_time, ingested_at, size, "
            "category, term_days, policy, reason, deleted_at, blob_removed_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            [(*row, policy.term_days(row[6]), policy_text, NOT_IN_BACKUP, now_iso, now_iso) for row in dropped])
        for table in ("file_keys", "sync_outbox"):
            mem.execute(f"DELETE FROM {table} WHERE recording_id NOT IN (SELECT id FROM keep)")
        mem.execute("DELETE FROM recordings WHERE id NOT IN (SELECT id FROM keep)")
        mem.execute("DROP TABLE temp.keep")
        mem.execute("COMMIT")
        mem.execute("VACUUM")
        held = [dict(zip(("id", "sha256", "stored_path", "end_time", "category", "keep_until", "blob_size"), r))
                for r in mem.execute("SELECT id, sha256, stored_path, end_time, category, keep_until, blob_size "
                                     "FROM recordings ORDER BY id")]
        head = mem.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
        data = mem.serialize()
    finally:
        mem.close()
    return data, held, expires_at(held, policy, now), head or (0, audit.GENESIS)


def expires_at(held: list[dict], policy: retention.Policy, now: datetime) -> str | None:
    """The earliest moment any of these held recordings could lawfully be gone: a hold may be released at
    any moment, after which the recording lives at least grace_days, and never less than its term."""
    moments = []
    for rec in held:
        moment = max(from_iso(rec["end_time"]) + timedelta(days=policy.term_days(rec["category"])),
                     now + timedelta(days=policy.grace_days))
        if rec.get("keep_until"):
            moment = max(moment, from_iso(rec["keep_until"]))
        moments.append(moment)
    return to_iso(min(moments)) if moments else None


def _in_files(rel: Path) -> bool:
    if len(rel.parts) == 1:
        return rel.parts[0] not in EXCLUDED_TOP
    return rel.parts[0] in INCLUDED_DIRS


def _files_tar(data_dir: Path) -> bytes:
    """The data directory's own files (configuration, keys, certificate), as an uncompressed tar."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(data_dir.rglob("*")):
            rel = path.relative_to(data_dir)
            if not _in_files(rel) or not path.is_file() or path.is_symlink():
                continue
            info = tar.gettarinfo(str(path), arcname=rel.as_posix())
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            with open(path, "rb") as f:
                tar.addfile(info, f)
    return buf.getvalue()


def _write_sealed(box: Box, data: bytes, out: Path, kind: str) -> dict:
    """`data` as a Kluis container sealed to the box's key; returns its manifest entry."""
    encryptor = Encryptor([box.public_key], metadata=canonical({"kluis-backup": kind}))
    digest = hashlib.sha256()
    size = 0
    with open(out, "wb") as f:
        for part in encryptor.stream(io.BytesIO(data)):
            f.write(part)
            digest.update(part)
            size += len(part)
        f.flush()
        os.fsync(f.fileno())
    return {"sha256": digest.hexdigest(), "size": size}


def _link_earlier(earlier: list[Path], rel: str, header: bytes, sha256: str, dst: Path) -> dict | None:
    """Hard-link a held recording's blob from an earlier backup on the target instead of copying it again
    (seven nightly backups of the same held footage take its space once), when that copy is intact: the
    recording's header and it hash to the recording's SHA-256. None where the file system has no hard links
    (FAT, exFAT) or no intact earlier copy exists."""
    for backup_dir in earlier:
        candidate = backup_dir / rel
        if not candidate.is_file():
            continue
        digest, content = hashlib.sha256(header), hashlib.sha256()
        size = 0
        with open(candidate, "rb") as f:
            while block := f.read(READ_BLOCK):
                digest.update(block)
                content.update(block)
                size += len(block)
        if digest.hexdigest() != sha256:
            continue
        try:
            os.link(candidate, dst)
        except OSError:
            return None
        return {"sha256": content.hexdigest(), "size": size}
    return None


def _copy(src: Path, dst: Path) -> dict:
    digest = hashlib.sha256()
    size = 0
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        while block := fin.read(READ_BLOCK):
            digest.update(block)
            fout.write(block)
            size += len(block)
        fout.flush()
        os.fsync(fout.fileno())
    return {"sha256": digest.hexdigest(), "size": size}


# The journal --------------------------------------------------------------------------------------------

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
        wrong = _check_signed(entry, signer or journal.signer)
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
        raise KluisError(f"{target} holds the backups of another box (signer {signer_fingerprint(journal.signer)}); "
                         "use another directory")
    if not journal.ok:
        raise KluisError(f"the deletion journal on {target} is damaged: {journal.problems[0]}")
    known = journal.recorded_ids()
    rows = box.catalog.db.execute(
        f"SELECT {', '.join(DELETION_FIELDS)} FROM deletions WHERE reason != ? ORDER BY deleted_at, recording_id",
        [NOT_IN_BACKUP]).fetchall()
    deletions = [dict(zip(DELETION_FIELDS, row)) for row in rows if row[0] not in known]
    seq, prev = journal.head
    entry = _sign({"type": JOURNAL_TYPE, "v": 1, "seq": seq + 1, "prev": prev, "signer": signer,
                   "time": box.now_iso(), "backup": backup_name, "deletions": deletions}, key)
    path = target / JOURNAL
    with open(path, "a", encoding="utf-8") as f:
        f.write(canonical(entry).decode("utf-8") + "\n")
        f.flush()
        os.fsync(f.fileno())
    fsync_dir(target)
    return entry


# Making a backup ----------------------------------------------------------------------------------------

@dataclass
class RunResult:
    name: str
    path: Path
    manifest: dict
    journal_seq: int
    pruned: list[tuple[str, str]] = field(default_factory=list)  # (name, why)


def _new_name(target: Path, now: datetime) -> str:
    base = PREFIX + now.strftime("%Y%m%dT%H%M%SZ")
    name, n = base, 1
    while (target / name).exists() or (target / f".{name}.tmp").exists():
        n += 1
        name = f"{base}-{n}"
    return name


def key_slots(box: Box) -> dict:
    """What unlocks a restore: the recovery slot and the keepers' slots (each already wrapped)."""
    keepers = {r["name"]: json.loads(r["slot"]) for r in box.catalog.db.query(
        "SELECT name, slot FROM users WHERE role = 'keeper' AND disabled = 0 ORDER BY name")}
    return {"box_public_key": bytes(box.public_key).hex(), "init_user": box.default_user,
            "recovery_slot": json.loads(box.catalog.get_meta("recovery_slot")),
            "keepers": {name: slot for name, slot in keepers.items() if slot.get("sealed")}}


def make_backup(box: Box, target: Path, journal_entry: dict | None = None, link: bool = False) -> tuple[str, dict]:
    """Write one backup into `target`; returns (name, manifest). Written under a temporary name and renamed
    when complete, so a backup is there whole or not at all. `link`: hard-link held blobs that an earlier
    backup on the target holds intact, instead of copying them (space, at the price of one copy less)."""
    target = Path(target)
    now = box.clock()
    name = _new_name(target, now)
    work = target / f".{name}.tmp"
    work.mkdir(parents=True, mode=0o700)  # key slots inside: not for other users of a shared disk
    try:
        files: dict[str, dict] = {}
        catalog_bytes, held, expires, (count, head_hash) = snapshot_catalog(box, now)
        files[CATALOG_FILE] = _write_sealed(box, catalog_bytes, work / CATALOG_FILE, "catalog")
        del catalog_bytes
        files[FILES_FILE] = _write_sealed(box, _files_tar(box.data_dir), work / FILES_FILE, "files")
        slots = canonical(key_slots(box))
        (work / SLOTS_FILE).write_bytes(slots)
        fsync_path(work / SLOTS_FILE)
        files[SLOTS_FILE] = {"sha256": hashlib.sha256(slots).hexdigest(), "size": len(slots)}
        (work / "blobs").mkdir(mode=0o700)
        carried = []
        earlier = list(reversed(list_backups(target))) if link else []
        for rec in held:
            header = box.catalog.header_of(rec["id"])
            rel = f"blobs/{rec['sha256']}"
            linked = _link_earlier(earlier, rel, header, rec["sha256"], work / rel)
            if linked is not None:
                files[rel] = linked
            else:
                # A damaged blob is not copied as if it were good: kluis verify names it.
                problem = box.vault.check(rec["stored_path"], header, rec["sha256"])
                if problem:
                    raise KluisError(f"recording {rec['id']}: {problem}; run kluis verify (no backup was made)")
                files[rel] = _copy(box.vault.root / rec["stored_path"], work / rel)
            carried.append({"id": rec["id"], "sha256": rec["sha256"], "blob": rel})
        fsync_dir(work / "blobs")
        key = box.signing_key()
        body = {
            "type": BACKUP_TYPE, "v": 1, "name": name, "created_at": to_iso(now),
            "box_name": box.settings.box.name,
            "box_public_key": bytes(box.public_key).hex(),
            "signer": bytes(key.verify_key).hex(),
            "schema_version": box.catalog.version,
            "kluis_version": _version(),
            "expires_at": expires,
            "recordings": carried,
            "audit": {"count": count, "head": head_hash},
            "journal": {"seq": journal_entry["seq"], "hash": entry_hash(journal_entry)} if journal_entry else None,
            "files": dict(sorted(files.items())),
        }
        manifest = _sign(body, key)
        (work / MANIFEST).write_bytes(canonical(manifest))
        fsync_path(work / MANIFEST)
        fsync_dir(work)
        os.rename(work, target / name)
        fsync_dir(target)
    except BaseException:
        _remove_backup_dir(work)
        raise
    return name, manifest


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("kluis")
    except Exception:  # a source tree without installed metadata
        return "unknown"


def run(box: Box, target: Path, keep: int = DEFAULT_KEEP, actor: str = "system", link: bool = False) -> RunResult:
    """One `kluis backup`: journal entry, new backup, verify it, prune the older ones, audit."""
    if keep < 1:
        raise KluisError("--keep must be at least 1")
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    entry = append_journal(box, target)
    name, manifest = make_backup(box, target, entry, link=link)
    report = verify_backup(target / name, signer=manifest["signer"])
    if not report.ok:
        raise KluisError(f"the new backup {name} does not verify: {report.problems[0]}")
    pruned = prune(box, target, keep=keep, protect=name)
    result = RunResult(name, target / name, manifest, entry["seq"], pruned)
    with box.catalog.transaction():
        audit.record(box.catalog, actor=actor, action="backup", clock=box.clock,
                     details={"target": str(target), "name": name, "recordings": len(manifest["recordings"]),
                              "expires_at": manifest["expires_at"], "journal_seq": entry["seq"],
                              "journal_deletions": len(entry["deletions"]),
                              "pruned": [{"name": n, "why": why} for n, why in pruned]})
    return result


# Listing, checking, pruning -----------------------------------------------------------------------------

@dataclass
class Check:
    path: Path
    manifest: dict | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and self.manifest is not None

    @property
    def name(self) -> str:
        return self.path.name


def read_manifest(path: Path) -> dict:
    try:
        manifest = json.loads((Path(path) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise KluisError(f"{path}: no readable manifest ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("type") != BACKUP_TYPE:
        raise KluisError(f"{path}: not a Kluis backup")
    return manifest


def verify_backup(path: Path, signer: str | None = None, journal: Journal | None = None) -> Check:
    """Check a backup without any secret: the manifest's signature (by `signer`, if given), then every
    file's size and SHA-256, and that the journal entry it names is the one on the target."""
    check = Check(Path(path))
    try:
        manifest = read_manifest(path)
    except KluisError as exc:
        check.problems.append(str(exc))
        return check
    check.manifest = manifest
    wrong = _check_signed(manifest, signer)
    if wrong:
        check.problems.append(f"manifest: {wrong}")
        return check
    for rel, expect in manifest["files"].items():
        file = Path(path) / rel
        if ".." in Path(rel).parts or Path(rel).is_absolute():
            check.problems.append(f"{rel}: path outside the backup")
            continue
        try:
            size = file.stat().st_size
        except FileNotFoundError:
            check.problems.append(f"{rel}: missing")
            continue
        if size != expect["size"] or _sha256_file(file) != expect["sha256"]:
            check.problems.append(f"{rel}: damaged (hash mismatch)")
    if journal is not None and manifest.get("journal"):
        seq = manifest["journal"]["seq"]
        if seq > len(journal.entries) or entry_hash(journal.entries[seq - 1]) != manifest["journal"]["hash"]:
            check.problems.append(f"the deletion journal does not hold the entry {seq} this backup was made with "
                                  "(journal cut or replaced)")
    return check


def list_backups(target: Path) -> list[Path]:
    """Backup directories on a target, oldest first (by the time in their name)."""
    target = Path(target)
    if not target.is_dir():
        return []
    found = [p for p in target.iterdir() if p.is_dir() and p.name.startswith(PREFIX) and (p / MANIFEST).exists()]
    return sorted(found, key=lambda p: _created(p))


def _created(path: Path) -> tuple[str, str]:
    try:
        return (read_manifest(path).get("created_at") or "", path.name)
    except KluisError:
        return ("", path.name)


def verify_target(target: Path, signer: str | None = None) -> tuple[Journal, list[Check]]:
    journal = read_journal(target, signer)
    signer = signer or journal.signer
    return journal, [verify_backup(p, signer, journal) for p in list_backups(target)]


def prune(box: Box, target: Path, keep: int = DEFAULT_KEEP, protect: str | None = None) -> list[tuple[str, str]]:
    """Delete the backups the rotation rule says must go (module docstring); returns (name, why)."""
    now = box.now_iso()
    deleted_ids = {r[0] for r in box.catalog.db.execute("SELECT recording_id FROM deletions")}
    backups = list_backups(target)
    newest_first = list(reversed(backups))
    pruned = []
    for index, path in enumerate(newest_first):
        if path.name == protect:
            continue
        try:
            manifest = read_manifest(path)
        except KluisError:
            continue  # not ours to judge; kluis backup verify names it
        why = None
        gone = sorted(r["id"] for r in manifest.get("recordings", []) if r["id"] in deleted_ids)
        if manifest.get("expires_at") and manifest["expires_at"] <= now:
            why = f"expired {manifest['expires_at']} (a recording in it may be deleted from then on)"
        elif gone:
            why = f"holds {len(gone)} recording(s) deleted since"
        elif index >= keep:
            why = f"more than the newest {keep}"
        if why:
            shred_backup(path)
            pruned.append((path.name, why))
    return pruned


def _overwrite(path: Path) -> None:
    try:
        size = path.stat().st_size
        with open(path, "r+b") as f:
            zeros = bytes(min(size, READ_BLOCK))
            left = size
            while left > 0:
                n = min(left, len(zeros))
                f.write(zeros[:n])
                left -= n
            f.flush()
            os.fsync(f.fileno())
    except FileNotFoundError:
        pass
    except OSError as exc:  # the removal still follows; the keeper should know the overwrite did not happen
        log.warning("could not overwrite %s before removing it: %s", path, exc)


def shred_backup(path: Path) -> None:
    """Overwrite the parts that hold keys (catalog with the wrapped file keys, files with the signing key,
    key slots), then remove the whole backup. On flash media an overwrite is best effort; what makes the
    blobs unreadable is that their keys were only in those parts, sealed to the box's key."""
    for name in (CATALOG_FILE, FILES_FILE, SLOTS_FILE, MANIFEST):
        _overwrite(path / name)
    _remove_backup_dir(path)


def _remove_backup_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
    try:
        fsync_dir(path.parent)
    except OSError:
        pass


# Restoring ----------------------------------------------------------------------------------------------

@dataclass
class Restored:
    name: str
    data_dir: Path
    recordings: int
    replayed: int                  # recordings in the backup deleted since, removed again
    recorded: int                  # deletion records added from the journal
    skipped: list[tuple[str, str]] = field(default_factory=list)  # newer backups passed over, and why


def choose(target: Path, name: str | None = None, signer: str | None = None, include_expired: bool = False,
           now: str | None = None) -> tuple[Check, Journal, list[tuple[str, str]]]:
    """The backup to restore: `name`, or the newest one that verifies (and has not expired)."""
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
        expires = check.manifest.get("expires_at")
        if expires and now and expires <= now and not include_expired:
            skipped.append((path.name, f"expired {expires} (--include-expired to restore it anyway)"))
            continue
        return check, journal, skipped
    raise KluisError("no backup to restore: " + "; ".join(f"{n}: {why}" for n, why in skipped))


def _unlock(slots: dict, user: str | None, password: str | None, recovery_key: str | None) -> PrivateKey:
    if recovery_key is not None:
        secret = keys.open_recovery_slot(slots["recovery_slot"], recovery_key)
    else:
        user = user or slots.get("init_user")
        slot = slots.get("keepers", {}).get(user)
        if slot is None:
            raise KluisError(f"{user!r} is not a keeper in this backup (keepers: {', '.join(slots.get('keepers', {}))})")
        secret = keys.open_slot(slot, password or "")
    identity = PrivateKey(secret)
    if bytes(identity.public_key).hex() != slots["box_public_key"]:
        raise WrongSecret("the key slot holds another box's key")
    return identity


def _open_sealed(path: Path, identity: PrivateKey) -> Iterator[bytes]:
    with open(path, "rb") as f:
        header = read_header(f)
        decryptor = Decryptor(header, header.unwrap(identity))
        yield from decryptor.stream(f)


def _extract_files(data: BinaryIO, dest: Path) -> None:
    with tarfile.open(fileobj=data, mode="r:") as tar:
        for member in tar.getmembers():
            rel = Path(member.name)
            if not member.isfile() or rel.is_absolute() or ".." in rel.parts or not _in_files(rel):
                raise KluisError(f"the backup's files hold an unexpected entry {member.name!r}; nothing restored")
            out = dest / rel
            out.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, member.mode & 0o700 or 0o600)
            with os.fdopen(fd, "wb") as f:
                shutil.copyfileobj(tar.extractfile(member), f)
                f.flush()
                os.fsync(f.fileno())


def restore(target: Path, data_dir: Path, *, user: str | None = None, password: str | None = None,
            recovery_key: str | None = None, name: str | None = None, signer: str | None = None,
            include_expired: bool = False, clock=None) -> Restored:
    """Restore onto a fresh data directory: verify first, unlock with a keeper's password or the recovery
    key, write catalog, files and held blobs, replay the journal's later deletions, audit, verify."""
    from .clock import system_clock

    clock = clock or system_clock
    data_dir = Path(data_dir)
    if data_dir.exists() and any(data_dir.iterdir()):
        raise KluisError(f"{data_dir} exists and is not empty: restore onto a fresh directory")
    check, journal, skipped = choose(target, name, signer, include_expired, to_iso(clock()))
    manifest, source = check.manifest, check.path
    slots = json.loads((source / SLOTS_FILE).read_text(encoding="utf-8"))
    if slots.get("box_public_key") != manifest["box_public_key"]:
        raise KluisError("the key slots are not this backup's box's; nothing restored")
    identity = _unlock(slots, user, password, recovery_key)

    data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(data_dir, 0o700)
    try:
        files = io.BytesIO(b"".join(_open_sealed(source / FILES_FILE, identity)))
        _extract_files(files, data_dir)
        signing = keys.read_signing_key(data_dir / SIGNING_KEY)
        if bytes(signing.verify_key).hex() != manifest["signer"]:
            raise KluisError("the backup's signing key is not the one that signed it; nothing restored")
        fd = os.open(data_dir / CATALOG, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            for block in _open_sealed(source / CATALOG_FILE, identity):
                f.write(block)
            f.flush()
            os.fsync(f.fileno())
        for sub in ("blobs", "tmp"):
            (data_dir / sub).mkdir(exist_ok=True)
        for rec in manifest["recordings"]:
            dst = data_dir / "blobs" / rec["sha256"][:2] / rec["sha256"]
            dst.parent.mkdir(exist_ok=True)
            _copy(source / rec["blob"], dst)
            fsync_dir(dst.parent)
        fsync_dir(data_dir)
    except BaseException:
        shutil.rmtree(data_dir, ignore_errors=True)
        raise

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
        via = "recovery key" if recovery_key is not None else (user or slots.get("init_user"))
        with box.catalog.transaction():
            audit.record(box.catalog, actor=via if recovery_key is None else "recovery", action="restore",
                         client="cli", clock=box.clock,
                         details={"backup": manifest["name"], "created_at": manifest["created_at"],
                                  "expires_at": manifest["expires_at"], "recordings": count,
                                  "journal_entries_replayed": len(later), "recordings_deleted_again": replayed,
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
    return Restored(manifest["name"], data_dir, count - replayed, replayed, recorded, skipped)


def replay(box: Box, entries: list[dict]) -> tuple[int, int]:
    """Apply the journal's deletions to a restored box: a recording still here is crypto-shredded again
    (file keys, row, blob) with the original box's deletion record; for one that is not, its record is
    added, so the deletion report is complete. Returns (recordings shredded, records added)."""
    shredded = recorded = 0
    db = box.catalog.db
    blobs = []
    with box.catalog.transaction():
        for entry in entries:
            for d in entry["deletions"]:
                rid = d["recording_id"]
                row = db.execute("SELECT sha256, stored_path FROM recordings WHERE id = ?", [rid]).fetchone()
                if row is not None:
                    db.execute("DELETE FROM file_keys WHERE recording_id = ?", [rid])
                    db.execute("DELETE FROM sync_outbox WHERE recording_id = ?", [rid])
                    db.execute("DELETE FROM recordings WHERE id = ?", [rid])
                    blobs.append(row[1])
                    audit.record(box.catalog, actor="system", action="delete", recording_id=rid, clock=box.clock,
                                 details={"sha256": d["sha256"], "reason": d["reason"], "replayed": True,
                                          "journal_seq": entry["seq"], "deleted_at": d["deleted_at"]})
                    shredded += 1
                existing = db.execute("SELECT reason FROM deletions WHERE recording_id = ?", [rid]).fetchone()
                if existing is None or existing[0] == NOT_IN_BACKUP:
                    db.execute(
                        f"INSERT OR REPLACE INTO deletions ({', '.join(DELETION_FIELDS)}, blob_removed_at) "
                        f"VALUES ({', '.join('?' * (len(DELETION_FIELDS) + 1))})",
                        [d[k] for k in DELETION_FIELDS] + [box.now_iso()])
                    recorded += existing is None
    for rel in blobs:
        if not db.execute("SELECT 1 FROM recordings WHERE stored_path = ?", [rel]).fetchone():
            (box.vault.root / rel).unlink(missing_ok=True)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return shredded, recorded


def status(target: Path) -> dict:
    """What the maintenance page shows about a target: its backups (newest first) and the journal."""
    journal, checks = verify_target(target)
    return {
        "target": str(target),
        "journal": {"entries": len(journal.entries), "ok": journal.ok, "problems": journal.problems,
                    "signer": signer_fingerprint(journal.signer) if journal.signer else None},
        "backups": [{"name": c.name, "ok": c.ok, "problems": c.problems,
                     "created_at": (c.manifest or {}).get("created_at"),
                     "expires_at": (c.manifest or {}).get("expires_at"),
                     "recordings": len((c.manifest or {}).get("recordings", [])),
                     "size": sum(f["size"] for f in (c.manifest or {}).get("files", {}).values())}
                    for c in reversed(checks)],
    }
