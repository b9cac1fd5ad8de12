"""Where a recording was made, when its camera says so, and the search of an access request by place.

An Axis system sends a recording's trigger locations and, where its cameras have GNSS, a track
(appliance/axis); other cameras send no location. The points are kept per recording in
`recording_places` and go with the recording (a trigger in the schema). A requester who can point at
the place on a map narrows the search: a recording whose points all lie farther than the radius from
that place was not made there. A recording without any point cannot be excluded by place: it stays in
the search, and the register says so.

A place is typed as "52.0907, 5.1214", as a geo: URI, or pasted as a map link (OpenStreetMap's
`#map=zoom/lat/lon` or `mlat=..&mlon=..`, or a link with `@lat,lon`).
"""

from __future__ import annotations

import math
import re
from typing import Iterable

from .errors import KluisError

EARTH_RADIUS_M = 6_371_008.8
SOURCES = ("trigger_on", "trigger_off", "track")
_NUMBER = r"([+-]?\d{1,3}(?:\.\d+)?)"
_PATTERNS = (
    re.compile(rf"^\s*{_NUMBER}\s*[,; ]\s*{_NUMBER}\s*$"),                     # 52.0907, 5.1214
    re.compile(rf"^\s*geo:{_NUMBER},{_NUMBER}", re.I),                          # geo:52.0907,5.1214
    re.compile(rf"[#&]map=\d+(?:\.\d+)?/{_NUMBER}/{_NUMBER}"),                 # openstreetmap.org/#map=17/52.09/5.12
    re.compile(rf"[?&]mlat={_NUMBER}&mlon={_NUMBER}"),                         # openstreetmap.org/?mlat=..&mlon=..
    re.compile(rf"@{_NUMBER},{_NUMBER}"),                                      # a map link with @lat,lon
)


def parse_place(text: str | None) -> tuple[float, float] | None:
    """(lat, lon) from what a person types or pastes; None for nothing; KluisError for what is not a place."""
    if text is None or not text.strip():
        return None
    for pattern in _PATTERNS:
        match = pattern.search(text.strip())
        if match:
            lat, lon = float(match.group(1)), float(match.group(2))
            if -90 <= lat <= 90 and -180 <= lon <= 180:
                return lat, lon
            break
    raise KluisError(f"not a place on the map: {text.strip()[:80]!r} (give latitude and longitude, "
                     "e.g. 52.0907, 5.1214, or paste a map link)")


def distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance (haversine) between two (lat, lon) points, in metres."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def add(db, recording_id: str, points: Iterable[tuple[str, float, float, float | None]]) -> int:
    """Keep a recording's points: (source, lat, lon, seconds from its start or None). Returns how many.
    Call inside the transaction that catalogues the recording."""
    rows = [(recording_id, float(lat), float(lon), source, seconds) for source, lat, lon, seconds in points
            if source in SOURCES and -90 <= lat <= 90 and -180 <= lon <= 180]
    db.conn.executemany("INSERT INTO recording_places (recording_id, lat, lon, source, seconds) VALUES (?, ?, ?, ?, ?)",
                   rows)
    return len(rows)


def of(db, recording_id: str) -> list[dict]:
    """A recording's points, trigger locations first, then the track in time order."""
    return [dict(zip(("lat", "lon", "source", "seconds"), row)) for row in db.execute(
        "SELECT lat, lon, source, seconds FROM recording_places WHERE recording_id = ? "
        "ORDER BY source <> 'trigger_on', source <> 'trigger_off', seconds, rowid", [recording_id])]


def nearest(db, recording_ids: list[str], place: tuple[float, float]) -> dict[str, float]:
    """For each recording that carries points: the distance of its nearest point to `place`, in metres.
    Recordings without points are absent from the result."""
    found: dict[str, float] = {}
    for start in range(0, len(recording_ids), 500):
        chunk = recording_ids[start:start + 500]
        marks = ", ".join("?" * len(chunk))
        for recording_id, lat, lon in db.execute(
                f"SELECT recording_id, lat, lon FROM recording_places WHERE recording_id IN ({marks})", chunk):
            d = distance_m(place, (lat, lon))
            if d < found.get(recording_id, math.inf):
                found[recording_id] = d
    return found
