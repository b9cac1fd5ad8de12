"""Backups: an encrypted, signed, verifiable copy of a box on a target directory (the KLUIS-BACKUP disk, a
network share mounted over SFTP: appliance/backup_sftp.py, whose run_to backs up to either), with every recording within its term, rotated
so that no backup keeps a recording's key past its retention, and restored onto a fresh box with the
deletions made since replayed and the term applied again (appliance/restore.py). The format is on one
page: docs/backup.md.

A backup is made while nobody is logged in, so it uses public keys only: its payloads are Kluis containers
(appliance/container.py) sealed to the box's X25519 key, and its manifest is signed with the box's Ed25519
signing key. Anyone can check a backup (hashes and signature); only a keeper's password or the recovery
key (their key slots travel in the backup) opens it.

What is in it: a consistent snapshot of the catalog (SQLite backup API, never a copy of a live WAL file)
with every recording past its term removed with its wrapped file keys, so that a backup never extends a
recording's life; the files of the data directory (configuration, signing key, TLS key); and, in the
target's footage store shared by its backups (appliance/backup_store.py), every recording it lists, still
encrypted, copied once and verified on the target.

Rotation, exactly (`prune`): a backup records `expires_at`, the earliest moment any recording in it could
lawfully be deleted on the box: for one not held the moment the sweep deletes it; for a held one max(end
+ term, keep_until, backup time + grace_days), since a hold can be released at any moment and the
recording then lives at least grace_days more. Every `kluis backup` run, after the new backup is written
and verified, deletes each older backup on the target that (a) is past its expires_at, or (b) holds a
recording the box has deleted since, or (c) is not among the newest `keep`; then the stored footage no
remaining backup lists. Deleting overwrites the parts that hold keys (catalog, key slots, a stored
recording's header) before unlinking.

Deletion journal (appliance/backup_journal.py): each run first appends to `kluis-journal.jsonl` on the
target one signed, hash-chained entry with every deletion record of the box not yet in the journal (no
personal data: the verwijderverslag columns). After each sweep, the configured targets get one without a
backup, and the stored copies of what was deleted go (appliance/backup_targets.py). A restore from a backup replays the deletions of every later entry, so a
recording deleted after the backup stays deleted.
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
import fcntl
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from . import audit, keys, retention, signing
from .backup_journal import NOT_IN_BACKUP, Journal, append_journal, deleted_since, entry_hash, read_journal
from .backup_status import LastBackup, footage_days, last_backup  # noqa: F401  (backup.last_backup: the alerts' question)
from .backup_store import STORE, Store
from .backup_store import rel as store_rel
from .box import CATALOG, Box
from .box import SIGNING_KEY as SIGNING_KEY_FILE
from .canonical import canonical
from .clock import from_iso, to_iso
from .container import Encryptor
from .durable import fsync_dir, fsync_path
from .errors import KluisError
from .vault import READ_BLOCK

log = logging.getLogger(__name__)

BACKUP_TYPE = "kluis-backup"
MANIFEST = "manifest.json"
CATALOG_FILE = "catalog.kluis"
FILES_FILE = "files.kluis"
SLOTS_FILE = "keyslots.json"
PREFIX = "kluis-"
DEFAULT_KEEP = 7
# The "files" payload: the data directory's top-level files but the catalog (snapshotted apart), and the
# key and certificate directories. Other directories are work in progress (tmp/, the updater's, staged
# set-ups, handover downloads waiting to be fetched) or blobs (the held ones are copied apart).
EXCLUDED_TOP = {CATALOG, CATALOG + "-wal", CATALOG + "-shm"}
INCLUDED_DIRS = {"keys", "tls"}


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
    """Recordings under an active hold at `now`."""
    return [r[0] for r in db.execute(
        "SELECT id FROM recordings WHERE state = 'stored' AND id IN (SELECT recording_id FROM holds "
        "WHERE released_at IS NULL AND (until IS NULL OR until > ?)) ORDER BY id", [now])]


def in_term_ids(db, policy: retention.Policy, now: datetime) -> list[str]:
    """Recordings a backup carries: every stored one the sweep would not delete at `now` (within its term,
    held, or kept by keep_until). One past its term that the sweep has not reached yet stays out."""
    where, params = retention.eligible_sql(policy, now)
    return [r[0] for r in db.execute(
        f"SELECT r.id FROM recordings r WHERE r.state = 'stored' AND NOT ({where}) ORDER BY r.id", params)]


def snapshot_catalog(box: Box, now: datetime) -> tuple[bytes, list[dict], str | None, tuple[int, str]]:
    """A consistent copy of the catalog in memory, stripped of every recording past its term and of its
    wrapped file keys. Returns (SQLite file bytes, the recordings carried, expires_at, the audit log's head
    in it). In memory, not a temp file: an unlinked temp file would leave the stripped keys in free disk
    blocks."""
    mem = sqlite3.connect(":memory:", isolation_level=None)
    try:
        box.catalog.db.conn.backup(mem)  # the SQLite backup API: one consistent read of the live catalog
        mem.execute("PRAGMA secure_delete=ON")
        now_iso = to_iso(now)
        policy = retention.current_policy(box)
        keep = in_term_ids(mem, policy, now)
        held = set(held_ids(mem, now_iso))
        policy_text = json.dumps(policy.as_dict(), sort_keys=True)
        mem.execute("BEGIN")
        mem.execute("CREATE TEMP TABLE keep (id TEXT PRIMARY KEY)")
        mem.executemany("INSERT INTO keep VALUES (?)", [(i,) for i in keep])
        dropped = mem.execute(
            "SELECT id, sha256, start_time, end_time, ingested_at, size, (SELECT group_concat(c.category, ',') "
            "FROM recording_categories c WHERE c.recording_id = r.id) FROM recordings r "
            "WHERE id NOT IN (SELECT id FROM keep)").fetchall()
        dropped = [(*row[:6], _joined(row[6])) for row in dropped]
        # The restored box's deletion report says what it lost; the journal may replace these with the
        # original box's own deletion records.
        mem.executemany(
            "INSERT OR IGNORE INTO deletions (recording_id, sha256, start_time, end_time, ingested_at, size, "
            "category, term_days, policy, reason, deleted_at, blob_removed_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            [(*row, policy.term_days(row[6].split(",") if row[6] else []), policy_text, NOT_IN_BACKUP, now_iso,
              now_iso) for row in dropped])
        for table in ("file_keys", "sync_outbox", "recording_categories"):
            mem.execute(f"DELETE FROM {table} WHERE recording_id NOT IN (SELECT id FROM keep)")
        mem.execute("DELETE FROM recordings WHERE id NOT IN (SELECT id FROM keep)")
        mem.execute("DROP TABLE temp.keep")
        mem.execute("COMMIT")
        mem.execute("VACUUM")
        carried = [dict(zip(("id", "sha256", "stored_path", "end_time", "categories", "keep_until", "blob_size"), r))
                   for r in mem.execute("SELECT id, sha256, stored_path, end_time, (SELECT group_concat(c.category, "
                                        "',') FROM recording_categories c WHERE c.recording_id = r.id), keep_until, "
                                        "blob_size FROM recordings r ORDER BY id")]
        head = mem.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
        data = mem.serialize()
    finally:
        mem.close()
    for rec in carried:
        rec["categories"] = rec["categories"].split(",") if rec["categories"] else []
        rec["held"] = rec["id"] in held
        until = None if rec["held"] else retention.delete_after(box, rec, policy)
        rec["until"] = to_iso(until) if until else None
    return data, carried, expires_at(carried, policy, now), head or (0, audit.GENESIS)


def _joined(categories: str | None) -> str | None:
    """group_concat's categories sorted, as the deletion record's one column holds them."""
    return ",".join(sorted(categories.split(","))) if categories else None


def expires_at(carried: list[dict], policy: retention.Policy, now: datetime) -> str | None:
    """The earliest moment any recording in a backup could lawfully be gone: for one not held, the moment
    the sweep deletes it; a hold may be released at any moment, after which the recording lives at least
    grace_days, and never less than its term."""
    moments = []
    for rec in carried:
        if rec.get("until"):
            moments.append(from_iso(rec["until"]))
            continue
        moment = max(from_iso(rec["end_time"]) + timedelta(days=policy.term_days(rec["categories"])),
                     now + timedelta(days=policy.grace_days))
        if rec.get("keep_until"):
            moment = max(moment, from_iso(rec["keep_until"]))
        moments.append(moment)
    return to_iso(min(moments)) if moments else None


def in_files(rel: Path) -> bool:
    if len(rel.parts) == 1:
        return rel.parts[0] not in EXCLUDED_TOP
    return rel.parts[0] in INCLUDED_DIRS


def _files_tar(data_dir: Path, signing_seed: bytes) -> bytes:
    """The data directory's own files (configuration, keys, certificate), as an uncompressed tar.
    The signing key goes in as its seed (`signing_seed`), also when the box holds it sealed to its TPM2
    (keys/signing.tpm2, which opens on this machine only and is left out): a box restored elsewhere
    needs the key itself, and the tar is sealed to the box's key like the catalog."""
    buf = io.BytesIO()
    sealed = keys.sealed_paths(Path(SIGNING_KEY_FILE))
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        if not (data_dir / SIGNING_KEY_FILE).exists():
            info = tarfile.TarInfo(SIGNING_KEY_FILE)
            info.size, info.mode = len(signing_seed), 0o600
            tar.addfile(info, io.BytesIO(signing_seed))
        for path in sorted(data_dir.rglob("*")):
            rel = path.relative_to(data_dir)
            if not in_files(rel) or not path.is_file() or path.is_symlink() or rel in sealed:
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
    return _write_hashed(encryptor.stream(io.BytesIO(data)), out)


def _write_hashed(blocks: Iterable[bytes | memoryview], out: Path) -> dict:
    """Write blocks to out, synced to disk; its manifest entry."""
    digest = hashlib.sha256()
    size = 0
    with open(out, "wb") as f:
        for block in blocks:
            f.write(block)
            digest.update(block)
            size += len(block)
        f.flush()
        os.fsync(f.fileno())
    return {"sha256": digest.hexdigest(), "size": size}


def copy_file(src: Path, dst: Path) -> dict:
    with open(src, "rb") as fin:
        return _write_hashed(iter(lambda: fin.read(READ_BLOCK), b""), dst)


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
            "recovery_slot": json.loads(box.catalog.required_meta("recovery_slot")),
            "keepers": {name: slot for name, slot in keepers.items() if slot.get("sealed")}}


def make_backup(box: Box, target: Path, journal_entry: dict | None = None,
                progress: Callable[[dict], None] | None = None, drop_cache: bool = False) -> tuple[str, dict]:
    """Write one backup into `target`; returns (name, manifest). The footage goes into the target's shared
    store first (appliance/backup_store.py: each recording once, verified); the backup itself is written
    under a temporary name and renamed when complete, so it is there whole or not at all. `progress` is
    called with each recording once its copy is verified in the store."""
    target = Path(target)
    now = box.clock()
    catalog_bytes, carried, expires, (count, head_hash) = snapshot_catalog(box, now)
    store = Store(target, drop_cache=drop_cache)
    copied = store.copy_in(box, carried, progress)
    name = _new_name(target, now)
    work = target / f".{name}.tmp"
    work.mkdir(parents=True, mode=0o700)  # key slots inside: not for other users of a shared disk
    try:
        files: dict[str, dict] = {}
        files[CATALOG_FILE] = _write_sealed(box, catalog_bytes, work / CATALOG_FILE, "catalog")
        del catalog_bytes
        files[FILES_FILE] = _write_sealed(box, _files_tar(box.data_dir, bytes(box.signing_key())), work / FILES_FILE,
                                           "files")
        slots = canonical(key_slots(box))
        (work / SLOTS_FILE).write_bytes(slots)
        fsync_path(work / SLOTS_FILE)
        files[SLOTS_FILE] = {"sha256": hashlib.sha256(slots).hexdigest(), "size": len(slots)}
        key = box.signing_key()
        body = {
            "type": BACKUP_TYPE, "v": 2, "name": name, "created_at": to_iso(now),
            "box_name": box.settings.box.name,
            "box_public_key": bytes(box.public_key).hex(),
            "signer": bytes(key.verify_key).hex(),
            "schema_version": box.catalog.version,
            "kluis_version": _version(),
            "expires_at": expires,
            "recordings": [{"id": r["id"], "sha256": r["sha256"], "blob": store_rel(r["sha256"]),
                            "size": r["blob_size"],
                            "end": r["end_time"], "until": r["until"], "held": r["held"]} for r in carried],
            "copied": {"recordings": copied.copied, "bytes": copied.copied_bytes},
            "audit": {"count": count, "head": head_hash},
            "journal": {"seq": journal_entry["seq"], "hash": entry_hash(journal_entry)} if journal_entry else None,
            "files": dict(sorted(files.items())),
        }
        manifest = signing.signed(body, key, signing.BACKUP_MANIFEST)
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


LOCK = ".kluis-backup.lock"


@contextmanager
def locked(target: Path) -> Iterator[None]:
    """One run per target at a time (the nightly timer, a plugged-in disk and the web page's button)."""
    with open(target / LOCK, "a") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise KluisError(f"another backup to {target} is running; try again when it is done") from None
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _clear_leftovers(target: Path) -> int:
    """What an interrupted run left: its unfinished backup directory and unverified copies. The copies it
    finished and verified stay in the store: the run that follows does not copy them again."""
    removed = 0
    for path in target.glob(f".{PREFIX}*.tmp"):
        _remove_backup_dir(path)
        removed += 1
    return removed + Store(target).clear_parts()


def audit_failure(box: Box, actor: str, label: str, why: str) -> None:
    """A backup run that did not complete: one log line, one `backup_failed` audit entry."""
    log.warning("backup to %s failed: %s", label, why)
    with box.catalog.transaction():
        audit.record(box.catalog, actor=actor, action="backup_failed", clock=box.clock,
                     details={"target": label, "error": why})


def run(box: Box, target: Path, keep: int = DEFAULT_KEEP, actor: str = "system",
        progress: Callable[[dict], None] | None = None, drop_cache: bool = False, label: str | None = None
        ) -> RunResult:
    """One `kluis backup`: journal entry, the new footage into the store, the new backup, verify it, prune
    the older ones and the footage none of them lists, audit. A run that fails is audited too
    (`backup_failed`, with the reason) and leaves the store as far as it got, for the next run."""
    if keep < 1:
        raise KluisError("--keep must be at least 1")
    target = Path(target)
    label = label or str(target)
    try:
        target.mkdir(parents=True, exist_ok=True)
        with locked(target):
            _clear_leftovers(target)
            entry = append_journal(box, target)
            name, manifest = make_backup(box, target, entry, progress=progress, drop_cache=drop_cache)
            report = verify_backup(target / name, signer=manifest["signer"], deep=False)
            if not report.ok:
                raise KluisError(f"the new backup {name} does not verify: {report.problems[0]}")
            pruned = prune(box, target, keep=keep, protect=name)
            removed = Store(target).collect_garbage(referenced_footage(target))
    except (KluisError, OSError) as exc:
        why = str(exc) if isinstance(exc, KluisError) else f"{exc.strerror or exc} ({getattr(exc, 'filename', '')})"
        audit_failure(box, actor, label, why)
        raise KluisError(f"the backup to {label} failed: {why}") from None
    result = RunResult(name, target / name, manifest, entry["seq"], pruned)
    days = footage_days(manifest["recordings"], set(), box.now_iso())
    with box.catalog.transaction():
        audit.record(box.catalog, actor=actor, action="backup", clock=box.clock,
                     details={"target": label, "name": name, "recordings": len(manifest["recordings"]),
                              "held": sum(1 for r in manifest["recordings"] if r.get("held")),
                              "copied": manifest["copied"]["recordings"],
                              "copied_bytes": manifest["copied"]["bytes"], "footage_days": days["days"],
                              "footage_from": days["from"], "footage_to": days["to"],
                              "expires_at": manifest["expires_at"], "journal_seq": entry["seq"],
                              "journal_deletions": len(entry["deletions"]), "footage_removed": removed,
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
    def verified_manifest(self) -> dict:
        """The manifest of a backup that verified; KluisError for one that did not."""
        if self.problems or self.manifest is None:
            raise KluisError(f"backup {self.path.name} did not verify")
        return self.manifest

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


def verify_backup(path: Path, signer: str | None = None, journal: Journal | None = None, deep: bool = True) -> Check:
    """Check a backup without any secret: the manifest's signature (by `signer`, if given), then every
    file's size and SHA-256, every recording it lists in the target's footage store (`deep`: by hash; else
    by size: a run checks the copies it made as it makes them), and that the journal entry it names is
    the one on the target."""
    check = Check(Path(path))
    try:
        manifest = read_manifest(path)
    except KluisError as exc:
        check.problems.append(str(exc))
        return check
    check.manifest = manifest
    wrong = signing.check_signed(manifest, signing.BACKUP_MANIFEST, signer)
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
    store = Store(Path(path).parent)
    gone = deleted_since(manifest, journal)
    for rec in manifest.get("recordings", []):
        if not str(rec.get("blob", "")).startswith(STORE + "/"):
            continue  # a backup of an earlier Kluis: its blobs are among its files, checked above
        if rec["id"] in gone and not store.path(rec["sha256"]).exists():
            continue  # deleted on the box since, and its copy with it (appliance/backup_targets.py, push)
        if rec["blob"] != store_rel(rec["sha256"]):
            check.problems.append(f"{rec['blob']}: not where the store keeps recording {rec['sha256']}")
        elif deep:
            problem = store.verify(rec["sha256"], rec["size"])
            if problem:
                check.problems.append(problem)
        elif not store.has(rec["sha256"], rec["size"]):
            check.problems.append(f"{rec['blob']}: missing or damaged (size)")
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


def verify_target(target: Path, signer: str | None = None, deep: bool = True) -> tuple[Journal, list[Check]]:
    journal = read_journal(target, signer)
    signer = signer or journal.signer
    return journal, [verify_backup(p, signer, journal, deep=deep) for p in list_backups(target)]


def referenced_footage(target: Path) -> set[str]:
    """The stored recordings some backup on the target lists (by file name: the container's SHA-256). A
    backup whose manifest cannot be read keeps the whole store: nothing it may need is removed."""
    names: set[str] = set()
    for path in list_backups(target):
        try:
            manifest = read_manifest(path)
        except KluisError:
            return {p.name for p in Path(target, STORE).glob("??/*")}
        names |= {r["sha256"] for r in manifest.get("recordings", [])}
    return names


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


def status(target: Path, now: str, deep: bool = False) -> dict:
    """What `kluis backup list` and the maintenance page show about a target: its backups (newest first),
    the journal, and what a restore at `now` would bring back (from the newest backup that checks)."""
    journal, checks = verify_target(target, deep=deep)
    newest = next((c for c in reversed(checks) if c.ok), None)
    deleted = set()
    if newest is not None:
        start = (newest.verified_manifest.get("journal") or {}).get("seq", 0)
        deleted = {d["recording_id"] for e in journal.entries[start:] for d in e["deletions"]}
    return {
        "target": str(target),
        "journal": {"entries": len(journal.entries), "ok": journal.ok, "problems": journal.problems,
                    "signer": signer_fingerprint(journal.signer) if journal.signer else None},
        "restores": ({"backup": newest.name, **footage_days(newest.verified_manifest["recordings"], deleted, now)}
                     if newest is not None else None),
        "backups": [{"name": c.name, "ok": c.ok, "problems": c.problems,
                     "created_at": (c.manifest or {}).get("created_at"),
                     "expires_at": (c.manifest or {}).get("expires_at"),
                     "recordings": len((c.manifest or {}).get("recordings", [])),
                     "footage_days": footage_days((c.manifest or {}).get("recordings", []), set(), now)["days"],
                     "size": sum(f["size"] for f in (c.manifest or {}).get("files", {}).values())
                     + sum(r.get("size", 0) for r in (c.manifest or {}).get("recordings", [])
                           if str(r.get("blob", "")).startswith(STORE + "/"))}
                    for c in reversed(checks)],
    }
