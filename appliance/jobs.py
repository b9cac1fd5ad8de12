"""Background jobs: long work (a redaction) that runs beside ingest and the web UI, never in their way.

A job is a row in the catalog's `jobs` table (state queued -> running -> done | failed, progress as units
done of a total, its result or error) and a function that a worker thread runs. The row is what the web
UI and `kluis redact` poll; the function gets a `Progress` to report to and its own Box (its own SQLite
connection: a connection is not shared between threads). Heavy work in a job (PyAV, x264, OpenCV)
releases the GIL, so ingest and the event loop keep running on the other core.

Secrets (the unlocked box key a redaction needs) are handed to the function in memory, never stored in
the row. A job whose process ended while it ran (a crash, a restart) is marked failed at the next start.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
import time
import atexit
import queue
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Callable

from .box import Box
from .database import Where
from .errors import KluisError, NotFound
from .process_identity import alive

log = logging.getLogger("kluis.jobs")

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
WORKERS = 1               # one heavy job at a time: the box has two cores, ingest and the web UI need one
PROGRESS_EVERY_S = 0.5    # progress is written to the catalog at most this often


class Progress:
    """What a job function reports to; writes to the job's row, throttled."""

    def __init__(self, box: Box, job_id: str):
        self.box, self.job_id = box, job_id
        self._last = 0.0
        self.cancel = threading.Event()

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self._last >= PROGRESS_EVERY_S or (total and done >= total):
            self._last = now
            self.box.catalog.db.execute("UPDATE jobs SET done = ?, total = ? WHERE id = ?",
                                        [int(done), int(total), self.job_id])

    def cancelled(self) -> bool:
        return self.cancel.is_set()


JobFunction = Callable[[Box, Progress], dict]


class Runner:
    """Worker threads for one data directory. They are daemon threads: stopping `kluis serve` does not
    wait an hour for a redaction; at exit running jobs are asked to stop (they fail as 'cancelled', the
    vault writer is aborted) and a job cut off anyway is failed at the next start (fail_orphans)."""

    def __init__(self, data_dir: Path, clock=None, workers: int = WORKERS):
        self.data_dir = Path(data_dir)
        self.clock = clock
        self.futures: dict[str, Future] = {}
        self.progress: dict[str, Progress] = {}
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._threads = [threading.Thread(target=self._worker, name=f"kluis-job-{i}", daemon=True)
                         for i in range(workers)]
        for thread in self._threads:
            thread.start()

    def _box(self) -> Box:
        return Box(self.data_dir, self.clock) if self.clock is not None else Box(self.data_dir)

    def submit(self, kind: str, func: JobFunction, *, actor: str, recording_id: str | None = None,
               params: dict | None = None) -> str:
        """Queue a job; returns its id at once. `func(box, progress)` returns the job's result (a dict)."""
        job_id = secrets.token_hex(8)
        with self._box() as box:
            box.catalog.db.execute(
                "INSERT INTO jobs (id, kind, state, created_by, created_at, recording_id, params, pid) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [job_id, kind, QUEUED, actor, box.now_iso(), recording_id, json.dumps(params or {}), os.getpid()])
        future: Future = Future()
        self.futures[job_id] = future
        self._queue.put((job_id, func, future))
        return job_id

    def _worker(self) -> None:
        while (item := self._queue.get()) is not None:
            job_id, func, future = item
            if not future.set_running_or_notify_cancel():  # cancelled while queued: the row says so
                with self._box() as box:
                    box.catalog.db.execute(
                        "UPDATE jobs SET state = ?, finished_at = ?, error = ? WHERE id = ? AND state = ?",
                        [FAILED, box.now_iso(), "cancelled before it started", job_id, QUEUED])
                continue
            try:
                future.set_result(self._run(job_id, func))
            except BaseException as exc:  # _run records failures itself; this is for the waiter
                future.set_exception(exc)

    def _run(self, job_id: str, func: JobFunction) -> dict | None:
        with self._box() as box:
            db = box.catalog.db
            db.execute("UPDATE jobs SET state = ?, started_at = ? WHERE id = ?", [RUNNING, box.now_iso(), job_id])
            progress = Progress(box, job_id)
            self.progress[job_id] = progress
            try:
                result = func(box, progress)
            except BaseException as exc:  # the row says what went wrong; the thread lives on
                if not isinstance(exc, KluisError):
                    log.exception("job %s failed", job_id)
                db.execute("UPDATE jobs SET state = ?, finished_at = ?, error = ? WHERE id = ?",
                           [FAILED, box.now_iso(), (str(exc) or type(exc).__name__)[:1000], job_id])
                return None
            finally:
                self.progress.pop(job_id, None)
            db.execute("UPDATE jobs SET state = ?, finished_at = ?, result = ?, done = MAX(done, total) WHERE id = ?",
                       [DONE, box.now_iso(), json.dumps(result or {}), job_id])
            return result

    def wait(self, job_id: str, timeout: float | None = None) -> None:
        future = self.futures.get(job_id)
        if future is not None:
            future.result(timeout)

    def cancel(self, job_id: str) -> bool:
        progress = self.progress.get(job_id)
        if progress is not None:
            progress.cancel.set()
            return True
        future = self.futures.get(job_id)
        return bool(future and future.cancel())

    def shutdown(self, timeout: float = 30) -> None:
        """Cancel what is queued, ask running jobs to stop, and wait a little for them."""
        for future in self.futures.values():
            future.cancel()
        for progress in list(self.progress.values()):
            progress.cancel.set()
        for _ in self._threads:
            self._queue.put(None)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))


_runners: dict[Path, Runner] = {}
_runners_lock = threading.Lock()


def runner_for(box: Box) -> Runner:
    """The process's runner for a box's data directory (the web UI and `kluis serve` share one)."""
    key = box.data_dir.resolve()
    with _runners_lock:
        if key not in _runners:
            fail_orphans(box)
            _runners[key] = Runner(box.data_dir, box.clock)
        return _runners[key]


@atexit.register
def _shutdown_all() -> None:
    for runner in list(_runners.values()):
        runner.shutdown()


def fail_orphans(box: Box) -> int:
    """Jobs left queued or running by a process that no longer exists: failed, with the reason."""
    rows = box.catalog.db.execute("SELECT id, pid FROM jobs WHERE state IN (?, ?)", [QUEUED, RUNNING]).fetchall()
    failed = 0
    for job_id, pid in rows:
        if pid == os.getpid() or (pid and alive(pid)):
            continue
        box.catalog.db.execute("UPDATE jobs SET state = ?, finished_at = ?, error = ? WHERE id = ? AND state IN (?, ?)",
                               [FAILED, box.now_iso(), "interrupted: the process running it ended", job_id,
                                QUEUED, RUNNING])
        failed += 1
    return failed


def get(catalog, job_id: str) -> dict:
    rows = list(catalog.db.query("SELECT * FROM jobs WHERE id = ?", [job_id]))
    if not rows:
        raise NotFound(f"no job {job_id!r}")
    row = rows[0]
    if row["state"] in (QUEUED, RUNNING) and row.get("pid") and row["pid"] != os.getpid() and not alive(row["pid"]):
        # its process ended (crash, restart): say so instead of showing it running for ever
        from .clock import system_clock, to_iso

        row.update(state=FAILED, error="interrupted: the process running it ended",
                   finished_at=to_iso((getattr(catalog, "clock", None) or system_clock)()))
        catalog.db.execute("UPDATE jobs SET state = ?, finished_at = ?, error = ? WHERE id = ? AND state IN (?, ?)",
                           [FAILED, row["finished_at"], row["error"], job_id, QUEUED, RUNNING])
    return decode(row)


def decode(row: dict) -> dict:
    row = dict(row)
    for key in ("params", "result"):
        row[key] = json.loads(row[key]) if row.get(key) else {}
    row["fraction"] = (row["done"] / row["total"]) if row.get("total") else (1.0 if row["state"] == DONE else 0.0)
    return row


def list_jobs(catalog, *, kind: str | None = None, recording_id: str | None = None, limit: int = 50) -> list[dict]:
    where = Where()
    where.when(kind, "kind = ?")
    where.when(recording_id, "recording_id = ?")
    sql = "SELECT * FROM jobs" + where.sql() + " ORDER BY created_at DESC, id LIMIT ?"
    return [decode(r) for r in catalog.db.query(sql, where.params + [limit])]


def as_public(job: dict) -> dict[str, Any]:
    """What a poller is told (the JSON of the progress page)."""
    return {k: job.get(k) for k in ("id", "kind", "state", "done", "total", "fraction", "created_by", "created_at",
                                    "started_at", "finished_at", "recording_id", "result", "error")}
