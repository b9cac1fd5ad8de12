"""Alert once per episode: a rogue device that keeps advertising, or a camera that keeps failing the same
way, is one alert (one log line, one device_alerts row, one audit entry), not one per advert or probe.

An episode is keyed by what it is about (e.g. serial, kind, address and port). It starts when its key is
first seen and lasts while the key keeps being seen; it ends when the key has not been seen for `gap_s`
(the device left), or when `end` is called (the thing got better: a paired camera proved itself there).
A device that flaps (goodbye, advert, goodbye, ...) stays in one episode: the gap is measured from the
last sighting, not from the goodbye.

Kept in memory, and, with a `store` (the service's own episodes), in the catalog too (device_episodes):
an episode that was alerted before a restart of `kluis serve` goes on after it, without a new alert,
when its key is seen again within `gap_s` of its last sighting; after a longer quiet, or once ended, the
next sighting is a new episode, as without a restart. A sighting is written at most every
PERSIST_EVERY_S (a device that advertises every second must not write every second), so after a restart
the gap is measured from a last sighting up to that much older: the gap can only get shorter by it.
Writing needs the catalog: on a full disk (or a busy catalog) the episode is kept in memory only, and a
restart inside it may alert once more (a log line says so).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from dataclasses import dataclass
from typing import Callable, Hashable

log = logging.getLogger("kluis.dock")

EPISODE_GAP_S = 600.0  # quiet this long, and the next sighting is a new episode (a new alert)
PERSIST_EVERY_S = 60.0  # a lasting episode's last sighting is written this often at most


@dataclass
class Episode:
    since: float  # monotonic
    last: float  # monotonic, last sighting
    sightings: int = 1
    stored_last: float | None = None  # wall time of the last sighting written to the store


class EpisodeStore:
    """One scope's episodes in the catalog (table device_episodes)."""

    def __init__(self, catalog, scope: str, wall: Callable[[], float] = time.time):
        self.catalog, self.scope, self.wall = catalog, scope, wall
        self._failed = False

    @staticmethod
    def _key(key: Hashable) -> str:
        return json.dumps(list(key) if isinstance(key, tuple) else key, separators=(",", ":"))

    def last_seen(self, key: Hashable) -> tuple[float, float] | None:
        """(since, last sighting) of the stored episode of `key`, as Unix times; None if none."""
        try:
            row = self.catalog.db.execute("SELECT since, last_seen FROM device_episodes WHERE scope = ? AND key = ?",
                                          [self.scope, self._key(key)]).fetchone()
        except sqlite3.Error as exc:
            self._fault(exc)
            return None
        return (row[0], row[1]) if row else None

    def save(self, key: Hashable, since: float, last: float, before: float | None = None) -> bool:
        """Write the episode (and drop those whose last sighting is older than `before`); False if the
        catalog could not take it."""
        try:
            with self.catalog.transaction():
                self.catalog.db.execute(
                    "INSERT INTO device_episodes (scope, key, since, last_seen) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT(scope, key) DO UPDATE SET since = excluded.since, last_seen = excluded.last_seen",
                    [self.scope, self._key(key), since, last])
                if before is not None:
                    self.catalog.db.execute("DELETE FROM device_episodes WHERE scope = ? AND last_seen < ?",
                                            [self.scope, before])
        except sqlite3.Error as exc:
            self._fault(exc)
            return False
        self._failed = False
        return True

    def drop(self, key: Hashable) -> None:
        try:
            with self.catalog.transaction():
                self.catalog.db.execute("DELETE FROM device_episodes WHERE scope = ? AND key = ?",
                                        [self.scope, self._key(key)])
        except sqlite3.Error as exc:
            self._fault(exc)

    def _fault(self, exc: Exception) -> None:
        if not self._failed:  # one line while it lasts, not one per sighting
            log.warning("alert episodes (%s) kept in memory only, the catalog did not take them: %s; a restart "
                        "now may alert once more", self.scope, exc)
        self._failed = True


class Episodes:
    def __init__(self, gap_s: float = EPISODE_GAP_S, clock: Callable[[], float] = time.monotonic,
                 store: EpisodeStore | None = None):
        self.gap_s = gap_s
        self.clock = clock
        self.store = store
        self._open: dict[Hashable, Episode] = {}

    def seen(self, key: Hashable) -> bool:
        """Record a sighting of `key`; True when it starts a new episode (then alert), else False."""
        now = self.clock()
        episode = self._open.get(key)
        if episode is not None and now - episode.last <= self.gap_s:
            episode.last = now
            episode.sightings += 1
            self._persist(key, episode, now)
            return False
        if episode is None and (adopted := self._from_store(key, now)) is not None:
            self._open[key] = adopted
            log.info("%s %s: the episode alerted before the service restarted goes on (no new alert)",
                     self.store.scope if self.store else "", key)
            return False
        self._open[key] = Episode(now, now)
        self._expire(now)
        self._persist(key, self._open[key], now, new=True)
        return True

    def end(self, key: Hashable) -> bool:
        """The episode of `key` is over (True if there was one)."""
        # Called after every good session too: written only where there is something to drop (a read is cheap)
        if self.store is not None and (key in self._open or self.store.last_seen(key) is not None):
            self.store.drop(key)
        return self._open.pop(key, None) is not None

    def active(self, match: Callable[[Hashable], bool] = lambda key: True) -> dict[Hashable, Episode]:
        now = self.clock()
        return {k: e for k, e in self._open.items() if now - e.last <= self.gap_s and match(k)}

    def _expire(self, now: float) -> None:
        for key in [k for k, e in self._open.items() if now - e.last > self.gap_s]:
            del self._open[key]

    def _from_store(self, key: Hashable, now: float) -> Episode | None:
        """The episode of `key` a previous run stored, if its last sighting is within the gap."""
        if self.store is None:
            return None
        found = self.store.last_seen(key)
        if found is None:
            return None
        wall = self.store.wall()
        since, last = found
        if wall - last > self.gap_s or last > wall + self.gap_s:  # ended by quiet (or a clock set back far)
            return None
        return Episode(now - max(0.0, wall - since), now, stored_last=last)

    def _persist(self, key: Hashable, episode: Episode, now: float, new: bool = False) -> None:
        if self.store is None:
            return
        wall = self.store.wall()
        if not new and episode.stored_last is not None and wall - episode.stored_last < PERSIST_EVERY_S:
            return
        since = wall - (now - episode.since)
        if self.store.save(key, since, wall, before=wall - self.gap_s if new else None):
            episode.stored_last = wall
