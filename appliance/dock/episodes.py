"""Alert once per episode: a rogue device that keeps advertising, or a camera that keeps failing the same
way, is one alert (one log line, one device_alerts row, one audit entry), not one per advert or probe.

An episode is keyed by what it is about (e.g. serial, kind, address and port). It starts when its key is
first seen and lasts while the key keeps being seen; it ends when the key has not been seen for `gap_s`
(the device left), or when `end` is called (the thing got better: a paired camera proved itself there).
A device that flaps (goodbye, advert, goodbye, ...) stays in one episode: the gap is measured from the
last sighting, not from the goodbye. Held in memory: a restart of the service starts new episodes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Hashable

EPISODE_GAP_S = 600.0  # quiet this long, and the next sighting is a new episode (a new alert)


@dataclass
class Episode:
    since: float  # monotonic
    last: float  # monotonic, last sighting
    sightings: int = 1


class Episodes:
    def __init__(self, gap_s: float = EPISODE_GAP_S, clock: Callable[[], float] = time.monotonic):
        self.gap_s = gap_s
        self.clock = clock
        self._open: dict[Hashable, Episode] = {}

    def seen(self, key: Hashable) -> bool:
        """Record a sighting of `key`; True when it starts a new episode (then alert), else False."""
        now = self.clock()
        episode = self._open.get(key)
        if episode is not None and now - episode.last <= self.gap_s:
            episode.last = now
            episode.sightings += 1
            return False
        self._open[key] = Episode(now, now)
        self._expire(now)
        return True

    def end(self, key: Hashable) -> bool:
        """The episode of `key` is over (True if there was one)."""
        return self._open.pop(key, None) is not None

    def active(self, match: Callable[[Hashable], bool] = lambda key: True) -> dict[Hashable, Episode]:
        now = self.clock()
        return {k: e for k, e in self._open.items() if now - e.last <= self.gap_s and match(k)}

    def _expire(self, now: float) -> None:
        for key in [k for k, e in self._open.items() if now - e.last > self.gap_s]:
            del self._open[key]
