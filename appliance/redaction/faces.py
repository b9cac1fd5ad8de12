"""Between the searches: a face's box from one sighting to the next, and the operator's boxes between
keyframes (the detectors themselves are in detectors.py)."""

from __future__ import annotations

from typing import Any

from .plan import Keyframe, Rect

TRACK_WIDTH = 640         # the operator boxes' tracker follows them on frames scaled down to this width
DETECT_INTERVAL = 0.12    # seconds between frames searched for faces (every frame at <= 8 fps); between
                          # two searched frames a face's box moves linearly from one to the other
                          # (measured: no face left uncovered at walking and running speeds, docs/redaction.md)
MARGIN = 0.25             # a face box grows by this fraction of its size on every side (hair, ears, chin)


def pair_faces(a: list[Rect], b: list[Rect]) -> tuple[list[tuple[Rect, Rect]], list[Rect], list[Rect]]:
    """Match the faces of two searched frames (nearest centre, similar size): (pairs, only in a, only in b)."""
    pairs, left, right = [], list(a), list(b)
    candidates = []
    for i, r in enumerate(left):
        for j, o in enumerate(right):
            (ax, ay), (bx, by) = r.centre(), o.centre()
            distance = ((ax - bx) ** 2 + (ay - by) ** 2) ** 0.5 / max(r.w, r.h, 1)
            ratio = max(r.w, o.w) / max(1, min(r.w, o.w))
            if distance < 1.5 and ratio < 2.0:
                candidates.append((distance, i, j))
    used_a, used_b = set(), set()
    for _, i, j in sorted(candidates):
        if i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
            pairs.append((left[i], right[j]))
    return (pairs, [r for i, r in enumerate(left) if i not in used_a],
            [r for j, r in enumerate(right) if j not in used_b])


def lerp(a: Rect, b: Rect, f: float) -> Rect:
    return Rect(round(a.x + (b.x - a.x) * f), round(a.y + (b.y - a.y) * f),
                round(a.w + (b.w - a.w) * f), round(a.h + (b.h - a.h) * f))


# Operator boxes: interpolation between keyframes, a tracker after the last ------------------------------

class Track:
    def __init__(self, keyframes: list[Keyframe], cv2, scale: float):
        self.keyframes = sorted(keyframes, key=lambda k: k.t)
        self.cv2, self.scale = cv2, scale
        self.tracker: Any = None  # OpenCV's TrackerMIL, from the last keyframe with a box
        self.tracking_from: float | None = None  # time of the keyframe the tracker started at
        self.last: Rect | None = None

    def rect_at(self, t: float, luma_small) -> Rect | None:
        keys = self.keyframes
        if t < keys[0].t - 1e-6:
            return None
        i = max(n for n, k in enumerate(keys) if k.t <= t + 1e-6)
        here = keys[i]
        if here.rect is None:
            self.tracker = None
            return None
        nxt = keys[i + 1] if i + 1 < len(keys) else None
        if nxt is not None and nxt.rect is not None:
            f = (t - here.t) / (nxt.t - here.t) if nxt.t > here.t else 0.0
            self.tracker = None
            return lerp(here.rect, nxt.rect, f)
        # After the track's last box (or before an end marker): follow the content.
        return self._tracked(here, luma_small)

    def _tracked(self, start: Keyframe, luma_small) -> Rect:
        cv2, s = self.cv2, self.scale
        image = cv2.cvtColor(luma_small, cv2.COLOR_GRAY2BGR)
        if start.rect is None:
            raise ValueError("a tracker starts from a keyframe with a box")
        if self.tracker is None or self.tracking_from != start.t:
            r = start.rect
            self.tracker = cv2.TrackerMIL_create()
            box = (int(r.x * s), int(r.y * s), max(2, int(r.w * s)), max(2, int(r.h * s)))
            self.tracker.init(image, box)
            self.tracking_from, self.last = start.t, start.rect
            return start.rect
        ok, (x, y, w, h) = self.tracker.update(image)
        assert self.last is not None  # set with the tracker
        if ok:
            self.last = Rect(round(x / s), round(y / s), self.last.w, self.last.h)
        return self.last  # lost: stay where it was last seen (blurring too much beats too little)
