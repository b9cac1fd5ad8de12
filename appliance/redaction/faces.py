"""Finding faces (OpenCV's Haar cascades) and following the operator's boxes between keyframes."""

from __future__ import annotations

from typing import Any

from ..errors import KluisError
from .plan import Keyframe, Rect

DETECTOR = "opencv-haar"  # the name written into the redaction log
DETECT_WIDTH = 640        # frames are scaled down to this width for detection (speed; faces stay >= 24 px)
DETECT_INTERVAL = 0.12    # seconds between frames searched for faces (every frame at <= 8 fps); between
                          # two searched frames a face's box moves linearly from one to the other
SCALE_FACTOR = 1.15       # Haar pyramid step: 1.1 finds a few more faces at twice the cost (docs/redaction.md)
MARGIN = 0.25             # a face box grows by this fraction of its size on every side (hair, ears, chin)


class FaceDetector:
    """OpenCV's Haar cascades (bundled in the wheel's cv2/data): frontal faces and profiles facing either
    way. Works on the luma plane, scaled down to DETECT_WIDTH.

    frontalface_alt2 found the most faces with the fewest false positives on the test material, and
    frontalface_default added nothing to it at twice the cost (bench/redact_detectors.py, docs/redaction.md)."""

    CASCADES = ("haarcascade_frontalface_alt2.xml", "haarcascade_profileface.xml")

    def __init__(self, detect_width: int = DETECT_WIDTH):
        import cv2

        self.cv2 = cv2
        self.detect_width = detect_width
        self.cascades = []
        for name in self.CASCADES:
            # cv2's stubs lack cv2.data, which the wheels ship (the folder of the Haar cascades)
            cascade = cv2.CascadeClassifier(cv2.data.haarcascades + name)  # type: ignore[attr-defined]
            if cascade.empty():
                raise KluisError(f"OpenCV's face model {name} is missing from this installation")
            self.cascades.append((name, cascade))
        self.name = DETECTOR + ":" + "+".join(n.removeprefix("haarcascade_").removesuffix(".xml") for n, _ in self.cascades)

    def detect(self, luma) -> list[Rect]:
        """Faces in a luma plane (full size), in its pixels."""
        cv2 = self.cv2
        height, width = luma.shape[:2]
        scale = min(1.0, self.detect_width / width)
        small = luma if scale == 1.0 else cv2.resize(luma, (round(width * scale), round(height * scale)),
                                                     interpolation=cv2.INTER_AREA)
        return self.detect_small(small, scale)

    def detect_small(self, small, scale: float) -> list[Rect]:
        """Faces in a luma plane already scaled by `scale`, in the full frame's pixels."""
        cv2 = self.cv2
        small = cv2.equalizeHist(small)
        min_side = 20
        found: list[Rect] = []
        for name, cascade in self.cascades:
            views = [(small, False)]
            if "profile" in name:  # the cascade knows one side: look at the mirror image for the other
                views.append((cv2.flip(small, 1), True))
            for image, mirrored in views:
                hits = cascade.detectMultiScale(image, scaleFactor=SCALE_FACTOR, minNeighbors=4,
                                                minSize=(min_side, min_side))
                for x, y, w, h in (hits if len(hits) else []):
                    if mirrored:
                        x = image.shape[1] - x - w
                    found.append(Rect(round(x / scale), round(y / scale), round(w / scale), round(h / scale)))
        return merge(found)


def merge(rects: list[Rect]) -> list[Rect]:
    """One box per face: boxes (from several cascades) whose centres lie in each other are joined."""
    out: list[Rect] = []
    for r in sorted(rects, key=lambda r: -r.w * r.h):
        for i, o in enumerate(out):
            if o.contains(*r.centre()) or r.contains(*o.centre()):
                x0, y0 = min(o.x, r.x), min(o.y, r.y)
                x1, y1 = max(o.x + o.w, r.x + r.w), max(o.y + o.h, r.y + r.h)
                out[i] = Rect(x0, y0, x1 - x0, y1 - y0)
                break
        else:
            out.append(r)
    return out


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
