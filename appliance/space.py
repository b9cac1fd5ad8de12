"""The one account of the data disk's free space: every ingest (a dock download, an Axis clip, a USB file,
an import, a redacted copy) reserves the bytes it declares before it writes a byte, and gives them back
when it has committed or given up. A new ingest is refused when

    free - outstanding in flight - incoming < [storage] reserve_mb

so that two ingests that each fit alone but not together never both start, and the reserve is left for
the catalog, the audit log and the system. "Outstanding" is what a reservation has not yet put on the
disk: a writer that reports its progress (`Reservation.wrote`) is not counted twice (once in the bytes
it wrote, which `free` already lacks, once in its reservation); one that does not is counted in full,
which errs on the safe side.

The account is per data directory and seen by every process on it (`kluis serve`, `kluis import`, a
restore): a reservation is an empty file in `reservations/` whose name holds its process (pid, the
process's start time and the boot) and its outstanding bytes, and the check and the booking are one step
under an flock on `reservations/lock` (and a thread lock: the USB ingest and the push sealer reserve from
worker threads). Empty files: booking needs an inode, never a data block of a disk that may be full.
Entries of processes that are gone (killed, or from before a reboot) are not counted and are removed.
A reservation is a context manager; it is also given back when it is garbage collected, so that an
ingest that fails on a path its author did not foresee cannot hold room forever.

A full disk is an *episode* (per data directory, in this process), not an event per retry: `full()`
starts one (and gives the caller the text of its one alert and log line), later failures only widen
what it waits for. While it lasts every reservation is refused, and it ends, with one log line, only
when the reserve is free plus a margin for the largest ingest that failed plus some slack (hysteresis:
a write that fails, frees its part file and would pass the plain check again does not end it). An
episode that starts again soon after the last one ended (something else keeps filling the disk, or the
disk runs out of inodes) lasts at least a backoff that doubles each time, so retries thin out.

An episode outlives the process (a restart of `kluis serve`, a power cut) and is shared by every process on
the data directory: it is marked by an empty file in `reservations/` whose name holds its start, its
margin and its backoff (`episode.<since>.<margin>.<backoff>`), made when it starts and renamed to
`ended.<at>.<backoff>` when it ends. A process that meets the mark (at its first use of the account, or
when its own ingest fails) takes the episode over without a new alert; the end is still noticed by the
free space, once. Like a reservation, the mark is a name only: it needs an inode, never a data block, and
nothing else is written to a full disk for it. Where not even an inode is left, the episode lives in
memory only (one log line says so) and a restart inside it alerts once more.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import threading
import time
import uuid
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import StorageFull
from . import process_identity

log = logging.getLogger("kluis.space")

MiB = 1 << 20
UPDATE_EVERY = 4 * MiB  # a reservation's entry is renamed after this much progress (lagging is safe)
MIN_INODES = 64  # fewer free inodes than this is a full disk too: no file can be made
RELAPSE_S = 600.0  # an episode that starts this soon after the last one ended is a relapse: back off
FIRST_BACKOFF_S, MAX_BACKOFF_S = 5.0, 300.0


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip().replace("-", "")[:12]
    except OSError:
        return "noboot"




BOOT = _boot_id()


class _Entry:
    """The name of one reservation's file: <boot>.<pid>.<start>.<token>.<outstanding bytes>."""

    def __init__(self, outstanding: int):
        self.stem = f"{BOOT}.{os.getpid()}.{process_identity.started(os.getpid()) or '?'}.{uuid.uuid4().hex[:12]}"
        self.outstanding = outstanding

    @property
    def name(self) -> str:
        return f"{self.stem}.{self.outstanding}"


class _Episode:
    def __init__(self, margin: int, why: str, backoff_s: float, since_wall: float | None = None):
        now_wall = time.time()
        self.since_wall = now_wall if since_wall is None else since_wall
        self.since = time.monotonic() - max(0.0, now_wall - self.since_wall)
        self.margin = margin  # bytes the failed ingest needed; with the reserve and hysteresis() free, it ends
        self.why = why
        self.backoff_s = backoff_s

    @property
    def mark(self) -> str:
        return f"{EPISODE_MARK}.{int(self.since_wall)}.{self.margin}.{int(self.backoff_s)}"


EPISODE_MARK, ENDED_MARK = "episode", "ended"  # reservations/episode.<since>.<margin>.<backoff>, ended.<at>.<backoff>


def _read_marks(directory: Path) -> tuple[_Episode | None, float | None, float]:
    """The lasting episode another run marked, when the last one ended (Unix time), and its backoff."""
    episode, ended, backoff = None, None, 0.0
    try:
        names = os.listdir(directory)
    except OSError:
        return None, None, 0.0
    for name in names:
        parts = name.split(".")
        if parts[0] == EPISODE_MARK and len(parts) == 4 and all(p.isdigit() for p in parts[1:]):
            since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(int(parts[1])))
            episode = _Episode(int(parts[2]), f"the disk has been full since {since}", float(parts[3]),
                               since_wall=float(parts[1]))
        elif parts[0] == ENDED_MARK and len(parts) == 3 and all(p.isdigit() for p in parts[1:]):
            ended, backoff = float(parts[1]), float(parts[2])
    return episode, ended, backoff


class _Ledger:
    """The account of one data directory, as this process sees it."""

    def __init__(self, data_dir: Path):
        self.data_dir = data_dir
        self.dir = data_dir / "reservations"  # not in tmp/: that holds only what a writer left over
        self.lock = threading.RLock()  # re-entered by a finalizer that runs while the lock is held
        self._depth = 0
        self._fd: int | None = None
        self.episode: _Episode | None = None
        self.last_end = float("-inf")
        self.backoff_s = 0.0

    def adopt(self) -> bool:
        """Take over the episode another run (or process) marked, if one lasts; True if it did now."""
        episode, ended, backoff = _read_marks(self.dir)
        if ended is not None and self.episode is None:
            self.last_end = time.monotonic() - max(0.0, time.time() - ended)
            self.backoff_s = max(self.backoff_s, backoff)
        if episode is None or self.episode is not None:
            return False
        self.episode = episode
        log.info("the disk has been full since an earlier run (%s): ingest waits until %s MiB beyond the reserve "
                 "are free (no new alert)", time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(episode.since_wall)),
                 _mib(episode.margin))
        return True

    def mark(self, episode: _Episode | None, ended: _Episode | None = None) -> None:
        """The marks on the disk: `episode` lasts (its mark made), or `ended` has ended now (an ended mark
        for the relapse backoff of the next run); the older marks go."""
        try:
            self.dir.mkdir(mode=0o700, exist_ok=True)
            for name in os.listdir(self.dir):
                if name.startswith((EPISODE_MARK + ".", ENDED_MARK + ".")) and (episode is None or name != episode.mark):
                    os.unlink(self.dir / name)
            made = episode.mark if episode else f"{ENDED_MARK}.{int(time.time())}.{int(ended.backoff_s)}" if ended else None
            if made:
                os.close(os.open(self.dir / made, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))
        except OSError as exc:  # not even an inode: the episode lives in this process only
            log.warning("the full-disk episode could not be marked on the disk (%s): a restart now alerts once more",
                        exc)

    @contextmanager
    def locked(self, create: bool = True) -> Iterator[bool]:
        """Hold the account (threads and processes); yields False when it does not exist and create is False."""
        with self.lock:
            if self._depth == 0:
                if self._fd is None:
                    if not create and not self.dir.exists():
                        yield False
                        return
                    try:
                        self.dir.mkdir(mode=0o700, exist_ok=True)
                        self._fd = os.open(self.dir / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
                        _owned_like_data(self.data_dir, self.dir, self.dir / "lock")
                    except OSError as exc:
                        raise _full_or(exc) from None
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            self._depth += 1
            try:
                yield True
            finally:
                self._depth -= 1
                if self._depth == 0 and self._fd is not None:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)

    def outstanding(self) -> int:
        """Bytes still to come of every live reservation (held lock); removes entries of dead processes."""
        total, alive = 0, {}
        for name in os.listdir(self.dir):
            parts = name.split(".")
            if len(parts) != 5 or not parts[4].isdigit():
                continue
            boot, pid, start = parts[0], parts[1], parts[2]
            if (boot, pid, start) not in alive:
                alive[boot, pid, start] = boot == BOOT and pid.isdigit() and process_identity.alive(int(pid), start)
            if alive[boot, pid, start]:
                total += int(parts[4])
            else:  # a process that died holding room (kill -9, a power cut): its room is free again
                try:
                    os.unlink(self.dir / name)
                except FileNotFoundError:
                    pass
        return total

    def book(self, entry: _Entry) -> None:
        try:
            os.close(os.open(self.dir / entry.name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
        except OSError as exc:
            raise _full_or(exc) from None

    def update(self, entry: _Entry, outstanding: int) -> None:
        with self.locked():
            old = entry.name
            entry.outstanding = outstanding
            try:
                os.rename(self.dir / old, self.dir / entry.name)
            except FileNotFoundError:  # given back meanwhile (or removed by hand): nothing to count
                pass

    def give_back(self, entry: _Entry) -> None:
        try:
            with self.locked():
                try:
                    os.unlink(self.dir / entry.name)
                except FileNotFoundError:
                    pass
        except (OSError, StorageFull) as exc:  # never raise from a finalizer; a stale entry dies with us
            log.warning("a reservation of %d bytes could not be given back: %s", entry.outstanding, exc)


def _owned_like_data(data_dir: Path, *paths: Path) -> None:
    """A command run as root (an update, a restore) must not leave the service user an account it cannot book in."""
    if os.geteuid() != 0:
        return
    owner = data_dir.stat()
    for path in paths:
        if path.stat().st_uid != owner.st_uid:
            os.chown(path, owner.st_uid, owner.st_gid)


def _full_or(exc: OSError) -> Exception:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageFull(f"the data disk is full: {exc.strerror}")
    return exc


_ledgers: dict[str, _Ledger] = {}
_ledgers_lock = threading.Lock()


def _ledger(data_dir: Path) -> _Ledger:
    key = os.path.realpath(data_dir)
    with _ledgers_lock:
        if key not in _ledgers:
            _ledgers[key] = _Ledger(Path(key))
            _ledgers[key].adopt()  # a full disk an earlier run met goes on
        return _ledgers[key]


def reserve_bytes(box) -> int:
    """`[storage] reserve_mb` in bytes: what no ingest may eat into."""
    return box.settings.storage.reserve_mb * MiB


def same_disk(box, path: Path) -> bool:
    """Whether `path` (an existing folder) is on the data directory's file system: then what is written
    there counts against its reserve."""
    try:
        return os.stat(path).st_dev == os.stat(box.data_dir).st_dev
    except OSError:
        return False


def _free(data_dir: Path) -> int:
    st = os.statvfs(data_dir)
    if st.f_files and st.f_favail < MIN_INODES:  # bytes left but no inodes: nothing can be made
        return 0
    return st.f_bavail * st.f_frsize


def in_flight(box) -> int:
    """Bytes reserved by ingests (of any process on this data directory) that have not yet written them."""
    ledger = _ledger(box.data_dir)
    with ledger.locked(create=False) as exists:
        return ledger.outstanding() if exists else 0


class Reservation:
    """Room held for one ingest; release() (or leaving the `with`) gives it back, once."""

    def __init__(self, ledger: _Ledger, entry: _Entry, what: str):
        self.size, self.what = entry.outstanding, what
        self._ledger, self._entry = ledger, entry
        self._give_back = weakref.finalize(self, ledger.give_back, entry)

    def wrote(self, done: int) -> None:
        """The ingest has put `done` bytes of it on the disk (in total): they are in `free` now, and no
        longer counted in flight. Updated in steps; until then they count twice, which is safe."""
        outstanding = max(0, self.size - max(0, int(done)))
        if self.held and (self._entry.outstanding - outstanding >= UPDATE_EVERY
                          or (outstanding == 0 < self._entry.outstanding)):
            self._ledger.update(self._entry, outstanding)

    def release(self) -> None:
        self._give_back()  # a finalizer runs at most once: a second release is a no-op

    @property
    def held(self) -> bool:
        return self._give_back.alive

    def __enter__(self) -> Reservation:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _mib(n: int) -> str:
    return f"{n / MiB:.1f}"


def _admit(box, incoming: int, what: str, reserve: int | None, book: bool) -> Reservation | None:
    reserve = reserve_bytes(box) if reserve is None else reserve
    incoming = max(0, int(incoming))
    ledger = _ledger(box.data_dir)
    with ledger.locked():  # the check and the booking are one step: two ingests never both take the last room
        episode = ledger.episode
        if episode is not None and not _ends(box, ledger):
            free, flight = _free(box.data_dir), ledger.outstanding()
            raise StorageFull(f"not enough room for {what}: the disk is full ({episode.why}); ingest waits "
                              f"until {_mib(episode.margin + hysteresis(box) + reserve_bytes(box))} MiB are free, {_mib(free)} "
                              f"MiB free, {_mib(flight)} MiB in flight")
        free, flight = _free(box.data_dir), ledger.outstanding()
        if free - flight - incoming < reserve:
            raise StorageFull(f"not enough room for {what}: {_mib(free)} MiB free, {_mib(flight)} MiB in flight, "
                              f"{_mib(incoming)} MiB needed plus a reserve of {_mib(reserve)} MiB")
        if not book:
            return None
        entry = _Entry(incoming)
        ledger.book(entry)
        return Reservation(ledger, entry, what)


def check(box, incoming: int, what: str = "it", reserve: int | None = None) -> None:
    """StorageFull unless `incoming` more bytes, besides those in flight, leave the reserve free (and no
    full-disk episode holds ingest back). Nothing is reserved and nothing is written."""
    _admit(box, incoming, what, reserve, book=False)


def reserve(box, incoming: int, what: str = "it", reserve: int | None = None) -> Reservation:
    """Hold `incoming` bytes for one ingest, or StorageFull when they do not fit (see the module).
    `reserve` overrides `[storage] reserve_mb` (bytes)."""
    room = _admit(box, incoming, what, reserve, book=True)
    assert room is not None
    return room


# --- full-disk episodes -------------------------------------------------------------------------------
def hysteresis(box) -> int:
    """Slack beyond the failed ingest's size before an episode ends: the disk must be clearly back."""
    return max(MiB, reserve_bytes(box) // 4)


def full(box, needed: int, why: str) -> str | None:
    """An ingest failed for lack of space (refused, or ENOSPC while writing) and needs `needed` bytes
    to go on. When this starts a full-disk episode: the text of its one alert, which the caller records
    (its log line is the episode's one line; the reserve has room for the rest). None while one lasts:
    nothing more is to be written, logged or alerted."""
    ledger = _ledger(box.data_dir)
    with ledger.lock:
        margin = max(0, int(needed))
        if ledger.episode is None:
            ledger.adopt()  # another process's episode (the offload's, an Axis upload's): the same one
        if ledger.episode is not None:
            ledger.episode.margin = max(ledger.episode.margin, margin)
            return None
        relapse = time.monotonic() - ledger.last_end < RELAPSE_S
        ledger.backoff_s = min(MAX_BACKOFF_S, max(FIRST_BACKOFF_S, 2 * ledger.backoff_s)) if relapse else 0.0
        ledger.episode = _Episode(margin, why, ledger.backoff_s)
        ledger.mark(ledger.episode)
    try:
        free = _mib(_free(box.data_dir))
    except OSError:
        free = "?"
    return (f"{why}; ingest paused until {_mib(margin + hysteresis(box) + reserve_bytes(box))} MiB are free (reserve "
            f"{_mib(reserve_bytes(box))} MiB, {_mib(margin)} MiB for what failed, {_mib(hysteresis(box))} MiB slack)"
            + (f", not before {ledger.backoff_s:.0f} s (it ran full again soon)" if relapse else "")
            + f"; {free} MiB free now")


def _ends(box, ledger: _Ledger) -> bool:
    """Under the ledger's lock: whether the episode is over (then it is ended, with its one log line)."""
    episode = ledger.episode
    if episode is None:
        return True
    if time.monotonic() - episode.since < episode.backoff_s:
        return False
    reserve = reserve_bytes(box)
    free, flight = _free(box.data_dir), ledger.outstanding()
    # The reserve and its slack as they are now: a keeper who lowers the reserve ends the episode sooner.
    if free - flight - episode.margin - hysteresis(box) < reserve:
        return False
    ledger.episode, ledger.last_end = None, time.monotonic()
    ledger.mark(None, ended=episode)
    log.info("disk space is back: offload resumes, ingests are taken again (%s MiB free, %s MiB in flight, "
             "full for %.0f s)", _mib(free), _mib(flight), ledger.last_end - episode.since)
    return True


def room_back(box) -> bool:
    """True when no full-disk episode holds ingest back: none lasts, or the one that lasted ends now
    (free space above the reserve plus its margin). Only reads the disk."""
    ledger = _ledger(box.data_dir)
    if ledger.episode is None:
        return True
    try:
        with ledger.locked():
            return _ends(box, ledger)
    except StorageFull:  # the account's folder cannot even be made: the disk is still full
        return False


def in_episode(box) -> bool:
    """Whether a full-disk episode lasts (nothing is checked: see room_back)."""
    return _ledger(box.data_dir).episode is not None
