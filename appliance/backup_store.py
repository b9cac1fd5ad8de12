"""The footage store on a backup target (docs/backup.md, "The footage store"): every recording within its
term, once, as the Kluis container it is on the box (its header, then its payload, still encrypted), at
`footage/<aa>/<sha256>`. The file's SHA-256 is its name and the recording's hash, so anyone can check it
with `sha256sum` and without a secret.

Incremental and resumable: a copy is written under `footage/.part/`, synced, read back and hashed on the
target, and only then renamed into place; a file at its final name was verified when it got there, so the
next run (also one after an interruption) copies only what is not there yet. Copies go through the kernel
(sendfile) and the read-back hashing runs on a worker thread while the next copy is written: the backup of
a day's footage costs about what `cp` and `sync` cost (bench/bench_backup.py).

The store is shared by the backups on the target (their catalogs hold the keys); a file no remaining
backup lists is removed after rotation, its header (the wrapped file keys) overwritten first.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .box import Box
from .container import PREFIX, ContainerError, header_length
from .durable import fsync_dir
from .errors import KluisError

log = logging.getLogger(__name__)

STORE = "footage"
PART = ".part"
COPY_BLOCK = 8 * 1024 * 1024
HASH_BLOCK = 1024 * 1024


def rel(sha256: str) -> str:
    """A recording's place in the store, relative to the target."""
    return f"{STORE}/{sha256[:2]}/{sha256}"


@dataclass
class _Pending:
    """A copy written, its sync and its read-back hash under way."""
    rec: dict
    part: Path
    synced: Future
    hashed: Future


@dataclass
class Copied:
    """What one store pass did: recordings copied (with bytes) and found there already."""
    copied: int = 0
    copied_bytes: int = 0
    present: int = 0
    dirs: set[Path] = field(default_factory=set)


def _send(fin, fout, count: int) -> None:
    """Copy `count` bytes from fin's position to fout's, in the kernel where it can (copy_file_range, as
    cp does; sendfile across file systems that refuse it; read and write where neither works)."""
    for method in ("copy_file_range", "sendfile"):
        try:
            while count > 0:
                if method == "copy_file_range":
                    sent = os.copy_file_range(fin.fileno(), fout.fileno(), count)
                else:
                    sent = os.sendfile(fout.fileno(), fin.fileno(), None, min(count, COPY_BLOCK))
                if sent == 0:
                    raise KluisError("the recording's blob is shorter than its catalog row says")
                count -= sent
            return
        except OSError as exc:
            # EXDEV, EINVAL, ENOSYS, EOPNOTSUPP: not between these two files (refused at the first call)
            if exc.errno not in (errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
                raise
    while count > 0 and (block := fin.read(min(count, COPY_BLOCK))):
        fout.write(block)
        count -= len(block)
    if count:
        raise KluisError("the recording's blob is shorter than its catalog row says")


def _hash_file(path: Path, drop_cache: bool) -> str:
    """The file's SHA-256, read into one buffer (no allocation per block, a small resident set)."""
    digest = hashlib.sha256()
    buffer = bytearray(HASH_BLOCK)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as f:
        if drop_cache and hasattr(os, "posix_fadvise"):
            # Read what the disk holds, not the pages just written (best effort: a FUSE share may keep them).
            os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
        while n := f.readinto(buffer):
            digest.update(view[:n])
    return digest.hexdigest()


def _fsync(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


class Store:
    """The footage store of one target."""

    def __init__(self, target: Path, drop_cache: bool = False):
        self.target = Path(target)
        self.root = self.target / STORE
        self.part = self.root / PART
        self.drop_cache = drop_cache

    def path(self, sha256: str) -> Path:
        return self.target / rel(sha256)

    def has(self, sha256: str, size: int) -> bool:
        try:
            return self.path(sha256).stat().st_size == size
        except FileNotFoundError:
            return False

    def clear_parts(self) -> int:
        """Remove the unfinished copies an interrupted run left (they were never verified)."""
        if not self.part.is_dir():
            return 0
        removed = 0
        for path in self.part.iterdir():
            path.unlink(missing_ok=True)
            removed += 1
        return removed

    def copy_in(self, box: Box, recordings: Iterable[dict], progress: Callable[[dict], None] | None = None) -> Copied:
        """Put every recording (rows with id, sha256, stored_path, blob_size) that is not in the store yet
        into it, verified. Raises KluisError naming the first recording that could not be copied intact;
        what was finished before stays (the next run goes on from there)."""
        done = Copied()
        self.part.mkdir(parents=True, exist_ok=True, mode=0o700)
        pending: list[_Pending] = []
        # Two workers: a copy's fsync (the disk) and its read-back hash (a core) run at the same time, and
        # both while the next recording is being copied.
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="backup-verify") as pool:
            try:
                for rec in recordings:
                    header = box.catalog.header_of(rec["id"])
                    size = rec["blob_size"]  # the whole container: header and payload
                    if self.has(rec["sha256"], size):
                        done.present += 1
                        continue
                    part = self.part / rec["sha256"]
                    with open(box.vault.root / rec["stored_path"], "rb") as fin, open(part, "wb") as fout:
                        fout.write(header)
                        fout.flush()
                        _send(fin, fout, size - len(header))
                    pending.append(_Pending(rec, part, pool.submit(_fsync, part),
                                            pool.submit(_hash_file, part, self.drop_cache)))
                    done.copied += 1
                    done.copied_bytes += size
                    # One recording checked behind the copying at most: page cache and memory stay bounded.
                    while len(pending) > 1:
                        self._place(box, pending.pop(0), done, progress)
                while pending:
                    self._place(box, pending.pop(0), done, progress)
            finally:
                for item in pending:
                    item.synced.cancel()
                    item.hashed.cancel()
        for directory in done.dirs:
            fsync_dir(directory)
        if done.dirs:
            fsync_dir(self.root)
        return done

    def _place(self, box: Box, item: _Pending, done: Copied, progress: Callable[[dict], None] | None) -> None:
        """In place only when the copy is synced and reads back as the recording; else stop, saying why."""
        rec, part = item.rec, item.part
        item.synced.result()
        if item.hashed.result() != rec["sha256"]:
            part.unlink(missing_ok=True)
            problem = box.vault.check(rec["stored_path"], box.catalog.header_of(rec["id"]), rec["sha256"])
            if problem:
                raise KluisError(f"recording {rec['id']}: {problem}; run kluis verify (its backup was not made)")
            raise KluisError(f"recording {rec['id']}: the copy on the backup target reads back wrong "
                             "(a failing disk or share?)")
        dst = self.path(rec["sha256"])
        dst.parent.mkdir(exist_ok=True, mode=0o700)
        os.replace(part, dst)
        done.dirs.add(dst.parent)
        if progress is not None:
            progress(rec)

    def verify(self, sha256: str, size: int) -> str | None:
        """None if the store holds this recording intact; else what is wrong."""
        path = self.path(sha256)
        try:
            if path.stat().st_size != size:
                return f"{rel(sha256)}: damaged (size)"
        except FileNotFoundError:
            return f"{rel(sha256)}: missing"
        if _hash_file(path, False) != sha256:
            return f"{rel(sha256)}: damaged (hash mismatch)"
        return None

    def collect_garbage(self, referenced: set[str]) -> int:
        """Remove every stored recording no backup on the target lists (deleted on the box, or past its term
        in every backup left): the header with the wrapped file keys overwritten first, then the file."""
        if not self.root.is_dir():
            return 0
        return _shred([path for path in self.root.glob("??/*") if path.name not in referenced and path.is_file()])


    def remove(self, sha256s: set[str]) -> int:
        """Remove these recordings' copies where the store holds them (the box deleted them): the header
        with the wrapped file keys overwritten first, then the file. Returns how many were there."""
        return _shred([path for path in map(self.path, sorted(sha256s)) if path.is_file()])


def _shred(paths: list[Path]) -> int:
    """Remove stored copies: each one's header (the wrapped file keys) overwritten first, then the file, then
    one fsync per directory. Returns how many."""
    for path in paths:
        _overwrite_header(path)
        path.unlink(missing_ok=True)
    for directory in {path.parent for path in paths}:
        fsync_dir(directory)
    return len(paths)


def _overwrite_header(path: Path) -> None:
    try:
        with open(path, "r+b") as f:
            prefix = f.read(PREFIX.size)
            length = header_length(prefix) if len(prefix) == PREFIX.size else len(prefix)
            f.seek(0)
            f.write(bytes(length))
            f.flush()
            os.fsync(f.fileno())
    except (OSError, ContainerError) as exc:  # removal still follows; the overwrite is best effort
        log.warning("could not overwrite the header of %s before removing it: %s", path, exc)
