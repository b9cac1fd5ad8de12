"""What a `kluis demo` started ends with it, however it ends.

The demo's camera simulators run in their own session (Ctrl-C in the terminal goes to the demo only, which
stops them in order), so a closed terminal's SIGHUP does not reach them and a SIGKILL of the demo cannot
stop them: each simulator asks the kernel to send it SIGTERM when the demo dies (PR_SET_PDEATHSIG, Linux),
or elsewhere watches the demo's pid. The demo's temporary directory names its owner (pid and the kernel's
start time of that pid, so that a reused pid is not taken for it); a demo starting later removes the
directory of any demo that is no longer running.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import logging
import os
import shutil
import signal
import tempfile
import threading
import time
from pathlib import Path

from appliance.process_identity import alive, started

log = logging.getLogger("kluis.demo")

PREFIX = "kluis-demo-"
OWNER = "owner.json"
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent(parent: int) -> None:
    """SIGTERM this process when `parent` ends (the simulator's own handler then stops it cleanly)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        armed = libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) == 0
    except (OSError, AttributeError):
        armed = False
    if os.getppid() != parent:  # the parent died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)
    if not armed:
        threading.Thread(target=_watch, args=(parent,), name="parent-watch", daemon=True).start()


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1.0)
    os.kill(os.getpid(), signal.SIGTERM)


def make_workdir() -> Path:
    """A new temporary directory for this demo, naming this process as its owner."""
    workdir = Path(tempfile.mkdtemp(prefix=PREFIX))
    (workdir / OWNER).write_text(json.dumps({"pid": os.getpid(), "started": started(os.getpid())}))
    return workdir


def remove_abandoned(root: Path | None = None) -> list[Path]:
    """Remove the temporary directories of demos that are no longer running (ended by SIGKILL or a
    power cut); a running demo's, and a directory without an owner, are left alone. Returns those removed."""
    removed = []
    for workdir in Path(root or tempfile.gettempdir()).glob(PREFIX + "*"):
        try:
            owner = json.loads((workdir / OWNER).read_text())
            pid, start = int(owner["pid"]), owner.get("started")
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if pid != os.getpid() and not alive(pid, start):
            shutil.rmtree(workdir, ignore_errors=True)
            removed.append(workdir)
            log.info("removed %s, left by a demo that is no longer running", workdir)
    return removed
