"""Is the system clock synchronised? Evidence timestamps come from this clock, so the box says when it
cannot vouch for them: in the web UI, in `kluis status`, and on every recording ingested meanwhile.

Sources, in order (the first that answers wins):
  1. KLUIS_TIMESYNC (environment), when set: a fixed answer or a chosen source, for tests and odd hosts:
       "yes" / "no"           a fixed answer
       "file:PATH"            the first word of a file ("yes"/"no"), read at every ask
       "command:CMD ARGS"     the first word a command prints ("yes"/"no")
       "timedatectl" | "chrony" | "adjtimex"   only that source
  2. `timedatectl show -p NTPSynchronized --value` (systemd-timedated; on the appliance, chrony is the
     NTP client behind it)
  3. `chronyc -n tracking`: "Leap status : Not synchronised" or not
  4. adjtimex(2) read-only (modes 0) through ctypes: the kernel's STA_UNSYNC flag, which chrony and
     systemd-timesyncd clear once they discipline the clock. Works in any container, no privilege.
"""

from __future__ import annotations

import ctypes
import os
import shlex
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ENV = "KLUIS_TIMESYNC"
CACHE_S = 5.0  # an ingest burst asks once per recording; the automatic sources are asked at most this often
TIMEOUT_S = 3.0

YES = {"yes", "true", "1", "synchronized", "synchronised", "synced"}
NO = {"no", "false", "0", "unsynchronized", "unsynchronised", "unsynced"}


@dataclass(frozen=True)
class ClockSync:
    synchronized: bool | None  # None: no source could tell (treated as not synchronised for evidence)
    source: str                # "timedatectl", "chrony", "adjtimex", "env", "file", "command", "none"
    detail: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def _word(text: str) -> bool | None:
    first = text.strip().split()[0].lower() if text.strip() else ""
    return True if first in YES else False if first in NO else None


def _run(args: list[str]) -> subprocess.CompletedProcess | None:
    if shutil.which(args[0]) is None:
        return None
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired):
        return None


def from_timedatectl() -> ClockSync | None:
    result = _run(["timedatectl", "show", "-p", "NTPSynchronized", "--value"])
    if result is None or result.returncode != 0:
        return None  # no systemd as PID 1 (a container), or no D-Bus
    answer = _word(result.stdout)
    return None if answer is None else ClockSync(answer, "timedatectl", f"NTPSynchronized={result.stdout.strip()}")


def from_chrony() -> ClockSync | None:
    result = _run(["chronyc", "-n", "tracking"])
    if result is None or result.returncode != 0:
        return None
    for line in result.stdout.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() == "leap status":
            value = value.strip()
            return ClockSync(value.lower() != "not synchronised", "chrony", f"leap status {value}")
    return None


STA_UNSYNC = 0x0040
TIME_ERROR = 5


class _Timex(ctypes.Structure):
    # struct timex (linux/timex.h); the tail is padding the kernel may write into.
    _fields_ = [("modes", ctypes.c_uint), ("offset", ctypes.c_long), ("freq", ctypes.c_long),
                ("maxerror", ctypes.c_long), ("esterror", ctypes.c_long), ("status", ctypes.c_int),
                ("constant", ctypes.c_long), ("precision", ctypes.c_long), ("tolerance", ctypes.c_long),
                ("time_sec", ctypes.c_long), ("time_usec", ctypes.c_long), ("tick", ctypes.c_long),
                ("ppsfreq", ctypes.c_long), ("jitter", ctypes.c_long), ("shift", ctypes.c_int),
                ("stabil", ctypes.c_long), ("jitcnt", ctypes.c_long), ("calcnt", ctypes.c_long),
                ("errcnt", ctypes.c_long), ("stbcnt", ctypes.c_long), ("tai", ctypes.c_int),
                ("_reserved", ctypes.c_byte * 96)]


def from_adjtimex() -> ClockSync | None:
    try:
        # The C library the interpreter is linked against (ctypes.util.find_library would run ldconfig).
        libc = ctypes.CDLL(None, use_errno=True)
        timex = _Timex()  # modes 0: read only, needs no capability
        state = libc.adjtimex(ctypes.byref(timex))
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None  # refused (a system-call filter returning EPERM)
    unsync = bool(timex.status & STA_UNSYNC) or state == TIME_ERROR
    return ClockSync(not unsync, "adjtimex",
                     f"status 0x{timex.status:04x}, state {state}, max error {timex.maxerror} us")


SOURCES = {"timedatectl": from_timedatectl, "chrony": from_chrony, "adjtimex": from_adjtimex}


def _injected(spec: str) -> ClockSync:
    kind, _, arg = spec.partition(":")
    kind = kind.strip().lower()
    if kind == "file" and arg:
        try:
            text = Path(arg).read_text()
        except OSError as exc:
            return ClockSync(None, "file", f"{arg}: {exc.strerror or exc}")
        return ClockSync(_word(text), "file", f"{arg}: {text.strip()[:40]}")
    if kind == "command" and arg:
        try:
            result = subprocess.run(shlex.split(arg), capture_output=True, text=True, timeout=TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return ClockSync(None, "command", f"{arg}: {exc}")
        return ClockSync(_word(result.stdout) if result.returncode == 0 else None, "command",
                         f"{arg}: {result.stdout.strip()[:40]}")
    if kind in SOURCES:
        return SOURCES[kind]() or ClockSync(None, kind, "the source did not answer")
    answer = _word(spec)
    return ClockSync(answer, "env", f"{ENV}={spec}" if answer is not None else f"{ENV}={spec}: not understood")


_cache: tuple[float, ClockSync] | None = None


def status(source: str | None = None) -> ClockSync:
    """Whether the clock is synchronised now. `source`: as KLUIS_TIMESYNC (default: that variable)."""
    global _cache
    spec = (os.environ.get(ENV, "") if source is None else source).strip()
    if spec:
        return _injected(spec)  # not cached: tests flip it between two ingests
    if _cache and time.monotonic() - _cache[0] < CACHE_S:
        return _cache[1]
    result = None
    for probe in SOURCES.values():
        result = probe()
        if result is not None:
            break
    result = result or ClockSync(None, "none", "no source could tell (no timedatectl, chronyc or adjtimex)")
    _cache = (time.monotonic(), result)
    return result


def ingest_flag() -> int:
    """The catalog's recordings.clock_synced for a recording catalogued now: 1 only when a source says the
    clock is synchronised; 0 when it is not, or nobody can tell (its timestamps are then not vouched for)."""
    return 1 if status().synchronized else 0
