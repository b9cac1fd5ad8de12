"""The operator's instructions for a redaction: keep regions, boxes at keyframe times, muted ranges.

Written as text in the web form's lines and the CLI's options alike ('100,40,80,80', '12-15.5:100,40,80,80',
'face1:1:02,5:100,40,80,80'); times as appliance.time_offsets reads them (a decimal comma too).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Sequence

from ..errors import KluisError
from ..time_offsets import NUMBER, parse_seconds


class PlanError(KluisError):
    """A line of the plan that is not understood. The message is English (the CLI); `code` says which
    mistake it is and `text` the line, so that the web UI can say it in the user's language."""

    def __init__(self, code: str, text: str, message: str):
        super().__init__(message)
        self.code, self.text = code, text


@dataclass(frozen=True)
class Rect:
    x: int
    y: int
    w: int
    h: int

    def centre(self) -> tuple[float, float]:
        return self.x + self.w / 2, self.y + self.h / 2

    def contains(self, px: float, py: float) -> bool:
        return self.x <= px < self.x + self.w and self.y <= py < self.y + self.h

    def grown(self, fraction: float) -> Rect:
        dx, dy = round(self.w * fraction), round(self.h * fraction)
        return Rect(self.x - dx, self.y - dy, self.w + 2 * dx, self.h + 2 * dy)


@dataclass(frozen=True)
class Keep:
    rect: Rect
    start: float | None = None  # seconds into the recording; None: from the start
    end: float | None = None    # None: to the end

    def active(self, t: float) -> bool:
        return (self.start is None or t >= self.start) and (self.end is None or t < self.end)


@dataclass(frozen=True)
class Keyframe:
    track: str
    t: float
    rect: Rect | None  # None: the track ends here


@dataclass
class Plan:
    keep: list[Keep] = field(default_factory=list)
    boxes: list[Keyframe] = field(default_factory=list)
    mute: list[tuple[float, float]] = field(default_factory=list)
    detect_faces: bool = True

    def as_log(self) -> dict:
        """The plan as the redaction log records it."""
        return {
            "keep": [{"rect": [k.rect.x, k.rect.y, k.rect.w, k.rect.h], "from": k.start, "to": k.end} for k in self.keep],
            "boxes": [{"track": b.track, "t": b.t, "rect": [b.rect.x, b.rect.y, b.rect.w, b.rect.h] if b.rect else None}
                      for b in self.boxes],
            "mute": [[a, b] for a, b in self.mute],
            "detect_faces": self.detect_faces,
        }

    @classmethod
    def from_log(cls, log: dict) -> Plan:
        return cls(
            keep=[Keep(Rect(*k["rect"]), k.get("from"), k.get("to")) for k in log.get("keep", [])],
            boxes=[Keyframe(b["track"], float(b["t"]), Rect(*b["rect"]) if b.get("rect") else None)
                   for b in log.get("boxes", [])],
            mute=[(float(a), float(b)) for a, b in log.get("mute", [])],
            detect_faces=bool(log.get("detect_faces", True)),
        )


def parse_rect(text: str) -> Rect:
    """'X,Y,W,H' in pixels of the video frame."""
    match = re.fullmatch(r"\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*", text or "")
    if not match:
        raise PlanError("region", text, f"not a region {text!r}: give X,Y,W,H in pixels, e.g. 100,40,80,80")
    return Rect(*(int(g) for g in match.groups()))


def parse_range(text: str) -> tuple[float, float]:
    """'START-END' in seconds (or m:ss) into the recording."""
    match = re.fullmatch(r"\s*([0-9:.,]+)\s*-\s*([0-9:.,]+)\s*", text or "")
    if not match:
        raise PlanError("range", text, f"not a time range {text!r}: give START-END in seconds, e.g. 12-15.5")
    start, end = parse_seconds(match.group(1)), parse_seconds(match.group(2))
    if end <= start:
        raise PlanError("backwards", text, f"the range {text!r} ends before it starts")
    return start, end


def parse_keep(text: str) -> Keep:
    """'X,Y,W,H' (the whole recording) or 'START-END:X,Y,W,H'."""
    if ":" in text and "-" in text.split(":", 1)[0] or text.count(":") > 1:
        when, _, rect = text.rpartition(":")
        start, end = parse_range(when)
        return Keep(parse_rect(rect), start, end)
    return Keep(parse_rect(text))


def parse_box(text: str, default_track: str) -> Keyframe:
    """'T:X,Y,W,H' (a track of its own) or 'LABEL:T:X,Y,W,H' (keyframes with one label form one track).
    A box of width or height 0 ends its track at T."""
    parts = (text or "").split(":")
    if len(parts) < 2:
        raise PlanError("box", text, f"not a box {text!r}: give T:X,Y,W,H or LABEL:T:X,Y,W,H")
    rect = parse_rect(parts[-1])
    head = parts[:-1]
    if len(head) >= 2 and not re.fullmatch(NUMBER, head[0]):
        track, t = head[0].strip(), parse_seconds(":".join(head[1:]))
    else:
        track, t = default_track, parse_seconds(":".join(head))
    if not track or len(track) > 40:
        raise PlanError("label", text, f"a box label is 1 to 40 characters: {text!r}")
    return Keyframe(track, t, rect if rect.w > 0 and rect.h > 0 else None)


def make_plan(keep: Sequence[str] = (), boxes: Sequence[str] = (), mute: Sequence[str] = (),
              detect_faces: bool = True) -> Plan:
    """A plan from the operator's texts (the CLI's options, the web form's lines)."""
    return Plan(
        keep=[parse_keep(k) for k in keep if k.strip()],
        boxes=[parse_box(b, f"box{i + 1}") for i, b in enumerate(b for b in boxes if b.strip())],
        mute=[parse_range(m) for m in mute if m.strip()],
        detect_faces=detect_faces,
    )


__all__ = ["Keep", "Keyframe", "Plan", "Rect", "make_plan", "parse_box", "parse_keep", "parse_range", "parse_rect",
           "parse_seconds"]
