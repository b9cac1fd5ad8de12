"""The one account of the data disk's free space: every ingest (a dock download, an Axis clip, a USB file,
an import, a redacted copy) reserves the bytes it declares before it writes a byte, and gives them back
when it has committed or given up. A new ingest is refused when

    free - reserved in flight - incoming < [storage] reserve_mb

so that two ingests that each fit alone but not together never both start, and the reserve is left for
the catalog, the audit log and the system. The account is per data directory and per process, and
thread-safe: the USB ingest and the push sealer reserve from worker threads, the dock and Axis from the
event loop.

A reservation is a context manager; it is also given back when it is garbage collected, so that an
ingest that fails on a path its author did not foresee cannot hold room forever.
"""

from __future__ import annotations

import os
import shutil
import threading
import weakref
from pathlib import Path

from .errors import StorageFull

MiB = 1 << 20


class _Ledger:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.in_flight = 0

    def give_back(self, size: int) -> None:
        with self.lock:
            self.in_flight -= size


_ledgers: dict[str, _Ledger] = {}
_ledgers_lock = threading.Lock()


def _ledger(data_dir: Path) -> _Ledger:
    key = os.path.realpath(data_dir)
    with _ledgers_lock:
        return _ledgers.setdefault(key, _Ledger())


def reserve_bytes(box) -> int:
    """`[storage] reserve_mb` in bytes: what no ingest may eat into."""
    return box.settings.storage.reserve_mb * MiB


def in_flight(box) -> int:
    """Bytes reserved by ingests that have not finished."""
    return _ledger(box.data_dir).in_flight


class Reservation:
    """Room held for one ingest; release() (or leaving the `with`) gives it back, once."""

    def __init__(self, ledger: _Ledger, size: int, what: str):
        self.size, self.what = size, what
        self._give_back = weakref.finalize(self, ledger.give_back, size)

    def release(self) -> None:
        self._give_back()  # a finalizer runs at most once: a second release is a no-op

    @property
    def held(self) -> bool:
        return self._give_back.alive

    def __enter__(self) -> Reservation:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _admit(box, incoming: int, what: str, reserve: int | None, book: bool) -> tuple[_Ledger, int]:
    reserve = reserve_bytes(box) if reserve is None else reserve
    incoming = max(0, int(incoming))
    ledger = _ledger(box.data_dir)
    with ledger.lock:  # the check and the booking are one step: two ingests never both take the last room
        free = shutil.disk_usage(box.data_dir).free
        if free - ledger.in_flight - incoming < reserve:
            raise StorageFull(f"not enough room for {what}: {free // MiB} MiB free, {ledger.in_flight // MiB} MiB "
                              f"in flight, {incoming // MiB} MiB needed plus a reserve of {reserve // MiB} MiB")
        if book:
            ledger.in_flight += incoming
    return ledger, incoming


def check(box, incoming: int, what: str = "it", reserve: int | None = None) -> None:
    """StorageFull unless `incoming` more bytes, besides those in flight, leave the reserve free. Nothing
    is reserved: this is the probe for whether room has come back."""
    _admit(box, incoming, what, reserve, book=False)


def reserve(box, incoming: int, what: str = "it", reserve: int | None = None) -> Reservation:
    """Hold `incoming` bytes for one ingest, or StorageFull when they do not fit (see the module).
    `reserve` overrides `[storage] reserve_mb` (bytes)."""
    ledger, incoming = _admit(box, incoming, what, reserve, book=True)
    return Reservation(ledger, incoming, what)
