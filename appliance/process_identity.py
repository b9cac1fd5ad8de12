"""Is a process still running, and is it still the same one (not a reused pid)? For what a process leaves
behind on disk while it runs (space reservations, a job's row, the demo's temporary directory) and a later
process must tell from a leftover of one that died (kill -9, a power cut)."""

from __future__ import annotations

import os
from pathlib import Path


def started(pid: int) -> str | None:
    """A process's start time (clock ticks since boot, field 22 of /proc/PID/stat): with the pid, names a
    process that is not a reused pid. None when it is gone; "?" where /proc cannot tell (then only the
    pid is checked)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    except OSError:
        return "?" if alive(pid) else None
    return stat.rsplit(")", 1)[1].split()[19]  # the name before ")" may hold spaces


def alive(pid: int, start: str | None = None) -> bool:
    """The process `pid` runs (and, given `start` from started(), is the one that started then)."""
    if start is not None:
        now = started(pid)
        return now is not None and (now == start or "?" in (now, start))
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it runs
        return True
    return True
