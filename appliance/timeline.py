"""What the player's timeline shows of one recording: its clock (the corrected start), the camera's bookmarks,
and the moments people watched it, from the audit log.

Clock time: a recording's `start_time` is the camera's time corrected by the clock offset measured when it
was offloaded (`clock_offset_s`, box clock minus camera clock), so the timeline counts from there: second
12 of a recording that started at 14:32:00 is shown as 14:32:12, the time an access request names.

Bookmarks: the ones an Axis system sent with the recording (appliance/axis/), placed on this part's
timeline. The dock and USB cameras deliver no bookmarks; there is nothing else in the catalog to show.

Watched moments: a 'view' entry says who opened the recording, when and for what purpose, not where they
looked. The player reports the stretches it actually played under a view's grant ('view_played', after
the bytes: it reads nothing and gates nothing); those give a view its place on the timeline. A still for
redaction carries its moment ('still_at_s'). A view without either (the command line, an export, a
browser closed before it reported) is listed but not placed.

Who sees whose views: the audit log is read by the roles with audit.read. A privacy officer (audit.read,
every recording) sees everyone's views of the recordings in their scope; every other role that reaches the
player (a team leader, an officer) sees only their own earlier views, never who else watched.

The lookup is by recording: audit_log_recording (recording_id, seq) serves it at any log size, newest
first, without reading other recordings' entries (tests/webui/test_timeline.py checks the query plan).
"""

from __future__ import annotations

import json
import re
from datetime import timedelta

from . import audit, roles
from .axis import overview as axis_overview
from .axis.spec import parse_rfc3339
from .box import Box
from .clock import from_iso, to_iso

VIEW_ACTIONS = ("view", "range_read", "export")
PLAYED = "view_played"  # the stretches a view's player played, reported by the browser
MAX_ENTRIES = 2000      # newest view and played entries read per page: enough for years of normal use
MAX_RANGES = 50         # stretches in one report
MAX_REPORTS = 200       # reports kept per view: a player that keeps sending is not a way to fill the log
_RANGE = re.compile(r"(\d{1,6}(?:\.\d{1,3})?)-(\d{1,6}(?:\.\d{1,3})?)")


def duration_s(recording: dict) -> float:
    start = from_iso(recording["start_time"])
    end = from_iso(recording["end_time"]) if recording.get("end_time") else start
    return max((end - start).total_seconds(), 0.0)


def may_see_others(user: dict) -> bool:
    """Whether the user sees other people's views: only a role that reads the audit log."""
    return roles.allowed(user["role"], roles.AUDIT_READ)


def trail(box: Box, user: dict, recording_id: str, limit: int = 200) -> list[dict]:
    """The recording's audit trail as its page shows it, newest first: everyone's entries for a role that
    reads the audit log; for another role (a team leader, an officer) only the user's own, by the same rule
    as the view markers: who else opened a recording, and for what case, is the privacy officer's to see."""
    if may_see_others(user):
        return audit.entries(box.catalog, recording_id=recording_id, newest_first=True, limit=limit)
    return audit.entries(box.catalog, recording_id=recording_id, actor=user["name"], newest_first=True, limit=limit)


def bookmarks(box: Box, recording: dict) -> list[dict]:
    """The bookmarks that fall on this recording's timeline: offset (seconds from the start), time (ISO),
    category, text. An Axis bookmark in another part of the same recording is not on this part's timeline."""
    if recording.get("source") != "axis":
        return []
    details = axis_overview.recording_details(box, recording["id"])
    if details is None:
        return []
    start, length = from_iso(recording["start_time"]), duration_s(recording)
    found = []
    for bookmark in details["bookmarks"]:
        moment = parse_rfc3339(bookmark.get("start"))
        if moment is None:
            continue
        offset = (moment - start).total_seconds()
        if 0 <= offset <= length:
            found.append({"offset": round(offset, 3), "time": to_iso(moment), "category": bookmark.get("category"),
                          "text": bookmark.get("text") or ""})
    return sorted(found, key=lambda b: b["offset"])


def _merge(ranges: list[list[float]]) -> list[list[float]]:
    merged: list[list[float]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1] + 0.05:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return merged


def _viewing_entries(box: Box, recording_id: str, actor: str | None) -> list[dict]:
    """The newest view and played entries of one recording (of one actor), by the recording's index."""
    actions = (*VIEW_ACTIONS, PLAYED)
    sql = (f"SELECT seq, time, actor, action, purpose, case_ref, details FROM audit_log "
           f"WHERE recording_id = ? AND action IN ({', '.join('?' * len(actions))})")
    params: list[object] = [recording_id, *actions]
    if actor is not None:
        sql += " AND actor = ?"
        params.append(actor)
    sql += " ORDER BY seq DESC LIMIT ?"
    params.append(MAX_ENTRIES)
    return list(box.catalog.db.query(sql, params))


def views(box: Box, user: dict, recording: dict) -> list[dict]:
    """Who viewed this recording, newest first, as far as `user` may know (see the module's doc): seq, time,
    actor, action, purpose, case_ref, own, ranges (merged [start, end] seconds; [] when not known), at (time
    of the first played moment, ISO, or None)."""
    entries = _viewing_entries(box, recording["id"], None if may_see_others(user) else user["name"])
    played: dict[int, list[list[float]]] = {}
    found = []
    for entry in entries:
        details = json.loads(entry["details"]) if entry["details"] else {}
        if entry["action"] == PLAYED:
            if isinstance(details.get("view"), int):
                played.setdefault(details["view"], []).extend(
                    [float(a), float(b)] for a, b in details.get("ranges") or [])
            continue
        ranges = []
        if isinstance(details.get("still_at_s"), (int, float)):
            ranges = [[float(details["still_at_s"])] * 2]
        found.append({key: entry[key] for key in ("seq", "time", "actor", "action", "purpose", "case_ref")}
                     | {"own": entry["actor"] == user["name"], "ranges": ranges})
    start = from_iso(recording["start_time"])
    for view in found:
        view["ranges"] = _merge(view["ranges"] + played.get(view["seq"], []))
        view["at"] = to_iso(start + timedelta(seconds=view["ranges"][0][0])) if view["ranges"] else None
    return found


def parse_ranges(text: str, length: float) -> list[list[float]]:
    """What the player reports ('0-4.5;10.2-12'): stretches in seconds, clipped to the recording's
    length, merged; at most MAX_RANGES. Anything else in the text is ignored."""
    ranges = []
    for match in _RANGE.finditer((text or "")[:2000]):
        start, end = (min(max(float(v), 0.0), length) for v in match.groups())
        if end > start:
            ranges.append([round(start, 3), round(end, 3)])
    return _merge(ranges)[:MAX_RANGES]


def record_played(box: Box, actor: str, recording: dict, view_seq: int, purpose: str, case_ref: str | None,
                  text: str, client: str | None = None) -> int | None:
    """Put on record what the player of view `view_seq` (the grant's own 'view' entry) played; returns the
    new entry's seq, or None when it adds nothing (no stretch, or only stretches reported before)."""
    ranges = parse_ranges(text, duration_s(recording))
    if not ranges:
        return None
    earlier = [entry for entry in _viewing_entries(box, recording["id"], actor) if entry["action"] == PLAYED
               and json.loads(entry["details"] or "{}").get("view") == view_seq]
    if len(earlier) >= MAX_REPORTS:
        return None
    known = _merge([r for entry in earlier for r in json.loads(entry["details"])["ranges"]])
    if all(any(a <= start and end <= b for a, b in known) for start, end in ranges):
        return None
    with box.catalog.transaction():
        return audit.record(box.catalog, clock=box.clock, actor=actor, action=PLAYED, recording_id=recording["id"],
                            purpose=purpose, case_ref=case_ref, client=client,
                            details={"view": view_seq, "ranges": ranges})


def frame_rate(opened) -> float | None:
    """Frames per second of an opened recording (appliance.footage.Footage, after its audit entry), for the
    player's frame step; None when the file does not say."""
    import av

    try:
        with opened.open() as raw, av.open(raw) as media:
            if not media.streams.video:
                return None
            video = media.streams.video[0]
            rate = video.average_rate or video.guessed_rate
            return float(rate) if rate and 1 <= float(rate) <= 240 else None
    except (av.error.FFmpegError, OSError, ValueError):
        return None
