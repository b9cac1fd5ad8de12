"""Redaction: a copy of a recording in which bystanders cannot be recognised (issue 8).

    original (vault) -> DecryptedReader -> PyAV decode -> detect faces, follow operator boxes, blur
                     -> libx264 + AAC (muted ranges zeroed) -> fragmented MP4 -> pipe in memory
                     -> Encryptor -> vault writer  => a new recording, linked to its original

What is blurred in a frame:
- every face the detector finds (OpenCV's Haar cascades, which ship inside the opencv-python-headless
  wheel: nothing is downloaded at run time), unless its centre lies in a region the operator marks
  "keep" (the requester). Faces are searched every DETECT_INTERVAL seconds; between two searched frames
  a face's box moves linearly from one sighting to the next, and a face seen in only one of them stays
  blurred over the whole stretch (a miss in one search does not uncover it);
- every box the operator draws at a keyframe time. Boxes with the same label form one track: between two
  keyframes the box moves linearly; after a track's last keyframe an OpenCV tracker (MIL) follows it to
  the end of the recording (or to an end marker, a box of size 0). Operator boxes are blurred even inside
  a keep region: the operator drew them on purpose.
Audio in the muted ranges is set to zero; the rest of the audio is kept (re-encoded as AAC).

Plaintext never touches the disk: the original is read through `clip.DecryptedReader`, the derivative is
muxed as fragmented MP4 (no seeking back) into `Pipe`, a bounded buffer in memory that the container's
Encryptor reads from on another thread. Memory stays bounded whatever the length: frames are streamed,
only the frames between two searched frames are held for the look-ahead.

The caller (appliance.jobs) runs `redact` on a worker thread with its own Box (own SQLite connection).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from typing import Callable

from . import access_requests, audit, retention
from .box import Box
from .errors import KluisError, NotFound

DETECTOR = "opencv-haar"  # the name written into the redaction log
DETECT_WIDTH = 640        # frames are scaled down to this width for detection (speed; faces stay >= 24 px)
DETECT_INTERVAL = 0.12    # seconds between frames searched for faces (every frame at <= 8 fps); between
                          # two searched frames a face's box moves linearly from one to the other
SCALE_FACTOR = 1.15       # Haar pyramid step: 1.1 finds a few more faces at twice the cost (docs/redaction.md)
MARGIN = 0.25             # a face box grows by this fraction of its size on every side (hair, ears, chin)
MOSAIC = 8                # a blurred region is reduced to about this many blocks across, then smoothed
PIPE_BYTES = 8 * 1024 * 1024
# The purposes a redacted copy is made for: the requests of people who were filmed, and showing footage
# to others (police, prosecutor). Not training: that is the officer's own footage, unredacted.
PURPOSES = ("access_request", "objection", "complaint", "requisition", "police_report")
X264 = {"preset": "veryfast", "crf": "23"}


# The operator's instructions ---------------------------------------------------------------------------

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


_NUM = r"\d+(?:\.\d+)?"


def parse_rect(text: str) -> Rect:
    """'X,Y,W,H' in pixels of the video frame."""
    match = re.fullmatch(r"\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*", text or "")
    if not match:
        raise KluisError(f"not a region {text!r}: give X,Y,W,H in pixels, e.g. 100,40,80,80")
    return Rect(*(int(g) for g in match.groups()))


def parse_seconds(text: str) -> float:
    """'12.5', '1:02.5' (minutes:seconds) or '0:01:02' (hours:minutes:seconds)."""
    parts = (text or "").strip().split(":")
    if not 1 <= len(parts) <= 3 or not all(re.fullmatch(_NUM, p) for p in parts):
        raise KluisError(f"not a time {text!r}: give seconds (12.5) or minutes:seconds (1:02.5)")
    value = 0.0
    for part in parts:
        value = value * 60 + float(part)
    return value


def parse_range(text: str) -> tuple[float, float]:
    """'START-END' in seconds (or m:ss) into the recording."""
    match = re.fullmatch(r"\s*([0-9:.]+)\s*-\s*([0-9:.]+)\s*", text or "")
    if not match:
        raise KluisError(f"not a time range {text!r}: give START-END in seconds, e.g. 12-15.5")
    start, end = parse_seconds(match.group(1)), parse_seconds(match.group(2))
    if end <= start:
        raise KluisError(f"the range {text!r} ends before it starts")
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
        raise KluisError(f"not a box {text!r}: give T:X,Y,W,H or LABEL:T:X,Y,W,H")
    rect = parse_rect(parts[-1])
    head = parts[:-1]
    if len(head) >= 2 and not re.fullmatch(_NUM, head[0]):
        track, t = head[0].strip(), parse_seconds(":".join(head[1:]))
    else:
        track, t = default_track, parse_seconds(":".join(head))
    if not track or len(track) > 40:
        raise KluisError(f"a box label is 1 to 40 characters: {text!r}")
    return Keyframe(track, t, rect if rect.w > 0 and rect.h > 0 else None)


def make_plan(keep: list[str] = (), boxes: list[str] = (), mute: list[str] = (), detect_faces: bool = True) -> Plan:
    """A plan from the operator's texts (the CLI's options, the web form's lines)."""
    return Plan(
        keep=[parse_keep(k) for k in keep if k.strip()],
        boxes=[parse_box(b, f"box{i + 1}") for i, b in enumerate(b for b in boxes if b.strip())],
        mute=[parse_range(m) for m in mute if m.strip()],
        detect_faces=detect_faces,
    )


# Faces ----------------------------------------------------------------------------------------------

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
            cascade = cv2.CascadeClassifier(cv2.data.haarcascades + name)
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
        self.tracker = None
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
        if i + 1 < len(keys) and keys[i + 1].rect is not None:
            nxt = keys[i + 1]
            f = (t - here.t) / (nxt.t - here.t) if nxt.t > here.t else 0.0
            self.tracker = None
            return lerp(here.rect, nxt.rect, f)
        # After the track's last box (or before an end marker): follow the content.
        return self._tracked(here, luma_small)

    def _tracked(self, start: Keyframe, luma_small) -> Rect:
        cv2, s = self.cv2, self.scale
        image = cv2.cvtColor(luma_small, cv2.COLOR_GRAY2BGR)
        if self.tracker is None or self.tracking_from != start.t:
            r = start.rect
            self.tracker = cv2.TrackerMIL_create()
            box = (int(r.x * s), int(r.y * s), max(2, int(r.w * s)), max(2, int(r.h * s)))
            self.tracker.init(image, box)
            self.tracking_from, self.last = start.t, start.rect
            return start.rect
        ok, (x, y, w, h) = self.tracker.update(image)
        if ok:
            self.last = Rect(round(x / s), round(y / s), self.last.w, self.last.h)
        return self.last  # lost: stay where it was last seen (blurring too much beats too little)


# Pixels -----------------------------------------------------------------------------------------------

def clip_rect(r: Rect, width: int, height: int) -> tuple[int, int, int, int] | None:
    x0, y0 = max(0, r.x), max(0, r.y)
    x1, y1 = min(width, r.x + r.w), min(height, r.y + r.h)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    # even coordinates: the chroma planes are half size
    return x0 & ~1, y0 & ~1, (x1 + 1) & ~1 if x1 < width else x1, (y1 + 1) & ~1 if y1 < height else y1


def _obscure(plane, x0: int, y0: int, x1: int, y1: int, cv2) -> None:
    region = plane[y0:y1, x0:x1]
    h, w = region.shape
    if h < 2 or w < 2:
        return
    # A mosaic first (the detail is gone, not just softened, so no deconvolution brings it back), then a
    # blur so that the blocks do not draw attention.
    blocks = max(1, min(w, h) // max(2, min(w, h) // MOSAIC))
    small = cv2.resize(region, (max(1, w * blocks // max(w, h) or 1), max(1, h * blocks // max(w, h) or 1)),
                       interpolation=cv2.INTER_AREA)
    big = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    k = max(3, (min(w, h) // 4) | 1)
    region[:, :] = cv2.GaussianBlur(big, (k, k), 0)


def blur_yuv420(frame_array, width: int, height: int, rects: list[Rect], cv2) -> int:
    """Blur `rects` in a yuv420p frame as PyAV's to_ndarray gives it (Y rows, then U, then V); returns how
    many regions were blurred."""
    y_plane = frame_array[:height]
    chroma = frame_array[height:].reshape(2, height // 2, width // 2)
    done = 0
    for r in rects:
        box = clip_rect(r, width, height)
        if box is None:
            continue
        x0, y0, x1, y1 = box
        _obscure(y_plane, x0, y0, x1, y1, cv2)
        for plane in chroma:
            _obscure(plane, x0 // 2, y0 // 2, x1 // 2, y1 // 2, cv2)
        done += 1
    return done


def laplacian_variance(gray) -> float:
    """A sharpness figure (variance of the Laplacian): used by the tests and the bench to prove blur."""
    import cv2

    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


# A pipe in memory ----------------------------------------------------------------------------------------

class Pipe:
    """A bounded byte pipe between two threads, in memory: the muxer writes, the Encryptor reads.
    Writes block while PIPE_BYTES are waiting; either side can break it (the other then gets an error)."""

    def __init__(self, limit: int = PIPE_BYTES):
        self.limit = limit
        self._buf = bytearray()
        self._cond = threading.Condition()
        self._closed = False   # the writer is done
        self._broken = False   # the reader gave up
        self.written = 0

    # writer side (PyAV calls write; no seek/tell: the muxer knows the output is a stream)
    def write(self, data) -> int:
        data = bytes(data)
        with self._cond:
            while len(self._buf) >= self.limit and not self._broken:
                self._cond.wait()
            if self._broken:
                raise BrokenPipeError("the reader of the redaction output stopped")
            self._buf += data
            self.written += len(data)
            self._cond.notify_all()
        return len(data)

    def flush(self) -> None:
        pass

    def close_writer(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    # reader side
    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        with self._cond:
            while not self._buf and not self._closed and not self._broken:
                self._cond.wait()
            if self._broken:
                raise BrokenPipeError("the redaction stopped")
            n = min(len(view), len(self._buf))
            view[:n] = self._buf[:n]
            del self._buf[:n]
            self._cond.notify_all()
            return n

    def read(self, n: int = -1) -> bytes:
        buf = bytearray(n if n >= 0 else self.limit)
        got = self.readinto(buf)
        return bytes(buf[:got])

    def break_(self) -> None:
        with self._cond:
            self._broken = True
            self._cond.notify_all()


# The pipeline -----------------------------------------------------------------------------------------

@dataclass
class Counts:
    frames: int = 0
    frames_total: int = 0
    frames_blurred: int = 0
    faces_detected: int = 0
    faces_kept: int = 0
    operator_boxes: int = 0
    audio_muted_s: float = 0.0
    seconds: float = 0.0


def _frames_total(video) -> int:
    if video.frames:
        return int(video.frames)
    rate = video.average_rate or video.guessed_rate
    if video.duration is not None and rate:
        return int(float(video.duration * video.time_base) * float(rate))
    return 0


def redact_stream(src, dst, plan: Plan, *, progress: Callable[[int, int], None] | None = None,
                  detector: FaceDetector | None = None, cancelled: Callable[[], bool] | None = None,
                  x264: dict | None = None) -> Counts:
    """Read the MP4 in `src` (seekable file-like), write the redacted MP4 (fragmented: `dst` needs only
    `write`). Returns the counts for the redaction log."""
    import av
    import cv2
    import numpy as np

    started = time.perf_counter()
    counts = Counts()
    try:
        media = av.open(src, mode="r")
    except av.error.FFmpegError as exc:
        raise KluisError(f"the recording cannot be read as video: {exc}") from None
    with media:
        if not media.streams.video:
            raise KluisError("the recording holds no video stream")
        video = media.streams.video[0]
        video.thread_type = "AUTO"
        audio = media.streams.audio[0] if media.streams.audio else None
        width, height = video.codec_context.width, video.codec_context.height
        if width % 2 or height % 2:
            raise KluisError(f"odd frame size {width}x{height} is not supported")
        counts.frames_total = _frames_total(video)
        rate = video.average_rate or video.guessed_rate or Fraction(25)
        origin_v = video.start_time or 0
        detector = detector if detector is not None else (FaceDetector() if plan.detect_faces else None)
        det_scale = min(1.0, DETECT_WIDTH / width)
        det_size = (round(width * det_scale), round(height * det_scale))
        tracks: dict[str, list[Keyframe]] = {}
        for kf in plan.boxes:
            tracks.setdefault(kf.track, []).append(kf)
        trackers = [Track(kfs, cv2, det_scale) for kfs in tracks.values()]

        out = av.open(dst, mode="w", format="mp4",
                      options={"movflags": "frag_keyframe+empty_moov+default_base_moof"})
        with out:
            vout = out.add_stream("libx264", rate=rate)
            vout.width, vout.height, vout.pix_fmt = width, height, "yuv420p"
            vout.codec_context.time_base = video.time_base
            vout.options = {**X264, **(x264 or {}), "g": str(max(1, round(float(rate) * 2)))}
            # x264's frame threads: with FFmpeg's default here (slice threads) encoding 1080p is ~3x slower
            vout.codec_context.thread_type = "FRAME"
            aout = resampler = None
            if audio is not None:
                aout = out.add_stream("aac", rate=audio.codec_context.sample_rate)
                aout.layout = audio.codec_context.layout.name
                aout.codec_context.time_base = Fraction(1, audio.codec_context.sample_rate)
                resampler = av.AudioResampler(format="fltp", layout=aout.layout.name,
                                              rate=audio.codec_context.sample_rate)
            origin_a = (audio.start_time or 0) if audio is not None else 0
            audio_pts = 0

            # Faces are searched every `every` frames; the frames between two searched frames wait (in
            # `pending`) until the later one is searched, then each face's box moves linearly between its
            # two sightings. A face seen in only one of them is blurred over the whole stretch as it was seen.
            every = max(1, round(float(rate) * DETECT_INTERVAL))
            pending: deque = deque()   # (frame_no, pts, array, operator rects, faces or None if not searched)
            carry: list[Rect] = []     # faces of the last searched frame that the next one did not show
            frame_no = 0

            def finish(entry, rects: list[Rect]) -> None:
                no, pts, array, boxes, _ = entry
                rects = list(boxes) + rects
                if rects:
                    blur_yuv420(array, width, height, rects, cv2)
                    counts.frames_blurred += 1
                frame = av.VideoFrame.from_ndarray(array, format="yuv420p")
                frame.pts, frame.time_base = pts, video.time_base
                for packet in vout.encode(frame):
                    out.mux(packet)
                counts.frames += 1
                if progress is not None and counts.frames % 10 == 0:
                    progress(counts.frames, max(counts.frames_total, counts.frames))

            def settle(final: bool = False) -> None:
                """Finish the pending frames before the last searched one (all of them at the end)."""
                nonlocal carry
                if detector is None:
                    while pending:
                        finish(pending.popleft(), [])
                    return
                searched = [e for e in pending if e[4] is not None]
                if len(searched) >= 2:
                    a, b = searched[0], searched[-1]
                    pairs, only_a, only_b = pair_faces(a[4], b[4])
                    while pending[0] is not b:
                        entry = pending.popleft()
                        f = (entry[0] - a[0]) / (b[0] - a[0])
                        rects = [lerp(ra, rb, f) for ra, rb in pairs] + only_a + only_b
                        if entry is a:
                            rects += carry
                        finish(entry, rects)
                    carry = only_a
                if final:
                    held = (searched[-1][4] if searched else []) + carry
                    while pending:
                        finish(pending.popleft(), held)

            def mute_audio(frame) -> None:
                nonlocal audio_pts
                for fr in resampler.resample(frame):
                    samples = fr.to_ndarray()  # planar float: (channels, n)
                    rate_a = fr.sample_rate
                    t0 = float(((frame.pts or 0) - origin_a) * frame.time_base) if frame.pts is not None else audio_pts / rate_a
                    n = samples.shape[-1]
                    changed = False
                    for a, b in plan.mute:
                        i0 = max(0, int(round((a - t0) * rate_a)))
                        i1 = min(n, int(round((b - t0) * rate_a)))
                        if i1 > i0:
                            samples[..., i0:i1] = 0
                            counts.audio_muted_s += (i1 - i0) / rate_a
                            changed = True
                    if changed:
                        fresh = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples), format=fr.format.name,
                                                           layout=fr.layout.name)
                        fresh.sample_rate = rate_a
                        fr = fresh
                    fr.pts, fr.time_base = audio_pts, Fraction(1, rate_a)
                    audio_pts += fr.samples
                    for packet in aout.encode(fr):
                        out.mux(packet)

            streams = [video] + ([audio] if audio is not None else [])
            try:
                for packet in media.demux(streams):
                    if cancelled is not None and cancelled():
                        raise KluisError("the redaction was cancelled")
                    for frame in packet.decode():
                        if packet.stream is audio:
                            mute_audio(frame)
                            continue
                        t = float(((frame.pts or 0) - origin_v) * video.time_base)
                        array = frame.to_ndarray(format="yuv420p")
                        search = detector is not None and frame_no % every == 0
                        small = None
                        if search or trackers:
                            luma = array[:height]
                            small = luma if det_scale == 1.0 else cv2.resize(luma, det_size, interpolation=cv2.INTER_AREA)
                        boxes = []
                        for track in trackers:
                            r = track.rect_at(t, small)
                            if r is not None:
                                boxes.append(r.grown(0.05))
                                counts.operator_boxes += 1
                        found = None
                        if search:
                            found = []
                            for r in detector.detect_small(small, det_scale):
                                cx, cy = r.centre()
                                if any(k.active(t) and k.rect.contains(cx, cy) for k in plan.keep):
                                    counts.faces_kept += 1
                                    continue
                                found.append(r.grown(MARGIN))
                            counts.faces_detected += len(found)
                        pending.append((frame_no, frame.pts, array, boxes, found))
                        frame_no += 1
                        if search or detector is None:
                            settle()
                settle(final=True)
                for packet in vout.encode():
                    out.mux(packet)
                if aout is not None:
                    for packet in aout.encode():
                        out.mux(packet)
            except av.error.FFmpegError as exc:
                raise KluisError(f"the recording could not be redacted: {exc}") from None
    if progress is not None:
        progress(counts.frames, counts.frames)
    counts.seconds = round(time.perf_counter() - started, 3)
    counts.audio_muted_s = round(counts.audio_muted_s, 3)
    return counts


# Into the vault -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Redacted:
    recording_id: str   # the derivative
    original_id: str
    counts: Counts
    hold_id: int


def redact(box: Box, identity, recording_id: str, plan: Plan, *, actor: str, purpose: str, case_ref: str,
           reason: str = "", client: str | None = None, request_id: str | None = None, job_id: str | None = None,
           progress: Callable[[int, int], None] | None = None, cancelled: Callable[[], bool] | None = None) -> Redacted:
    """Make the redacted derivative of a recording and store it as a new recording: sealed to the same
    recipients as new recordings, linked to its original, held for `purpose` / `case_ref` (its retention
    follows the request), with the redaction log in the audit log. `identity` is the unlocked box key."""
    from .clip import DecryptedReader
    from .container import Encryptor
    from .purposes import parse_purpose
    from .recordings import catalog_stored, check_space

    code = parse_purpose(purpose)
    case_ref = (case_ref or "").strip()
    if not case_ref:
        raise KluisError("a redaction needs a case reference (zaaknummer): the derivative is held for it")
    original = box.catalog.get_recording(recording_id)
    check_space(box, original["size"])
    # Reading footage is audited before the first byte is decrypted.
    with box.catalog.transaction():
        audit.record(box.catalog, actor=actor, action="redact_start", recording_id=recording_id, purpose=code,
                     case_ref=case_ref, client=client, clock=box.clock,
                     details={"job": job_id, "request": request_id, "plan": plan.as_log(), "reason": reason or None})
    detector = FaceDetector() if plan.detect_faces else None
    encryptor = Encryptor(box.recipients(), chunk_size=box.settings.storage.chunk_size)
    writer = box.vault.writer()
    pipe = Pipe()
    outcome: dict = {}

    def produce() -> None:
        try:
            with DecryptedReader.open(box, identity, recording_id) as src:
                outcome["counts"] = redact_stream(src, pipe, plan, progress=progress, detector=detector,
                                                  cancelled=cancelled)
        except BaseException as exc:  # handed to the consuming thread, raised there
            outcome["error"] = exc
            pipe.break_()
        finally:
            pipe.close_writer()

    producer = threading.Thread(target=produce, name="kluis-redact", daemon=True)
    producer.start()
    try:
        writer.write(encryptor.header.raw)
        for sealed in encryptor.chunks(pipe):
            writer.write(sealed)
        producer.join()
        if "error" in outcome:
            raise outcome["error"]
    except BaseException as exc:
        pipe.break_()
        producer.join()
        writer.abort()
        error = outcome.get("error", exc)
        with box.catalog.transaction():
            audit.record(box.catalog, actor=actor, action="redact_failed", recording_id=recording_id,
                         purpose=code, case_ref=case_ref, client=client, clock=box.clock,
                         details={"job": job_id, "error": str(error)[:500]})
        if error is not exc:
            raise error from None
        raise
    stored = writer.commit()
    counts: Counts = outcome["counts"]
    now = box.now_iso()
    fields = {k: original.get(k) for k in ("camera_serial", "officer", "team", "start_time", "end_time",
                                           "camera_start_time", "clock_offset_s", "pre_record_s", "post_record_s")}
    fields.update(source="redaction", source_ref=recording_id, derived_from=recording_id)
    log = {"derivative": None, "plan": plan.as_log(), "detector": detector.name if detector else None,
           "counts": asdict(counts), "reason": reason or None, "request": request_id, "job": job_id}
    with box.catalog.transaction():
        derivative = catalog_stored(box, stored, fields, actor=actor, client=client)
        log["derivative"] = derivative
        box.catalog.db.execute(
            "INSERT INTO redactions (recording_id, original_id, created_by, created_at, purpose, case_ref, reason, "
            "request_id, detector, plan, counts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [derivative, recording_id, actor, now, code, case_ref, reason or None, request_id,
             log["detector"], json.dumps(plan.as_log()), json.dumps(asdict(counts))])
        hold_id = retention.add_hold(box, derivative, code, case_ref, actor, client=client)
        audit.record(box.catalog, actor=actor, action="redact", recording_id=recording_id, purpose=code,
                     case_ref=case_ref, client=client, clock=box.clock, details=log)
    return Redacted(derivative, recording_id, counts, hold_id)


def derivatives_of(catalog, recording_id: str) -> list[dict]:
    """The redacted derivatives made of a recording (newest first), with who made them and why."""
    return list(catalog.db.query(
        "SELECT d.recording_id AS id, d.created_by, d.created_at, d.purpose, d.case_ref, d.reason, d.counts, "
        "r.state FROM redactions d LEFT JOIN recordings r ON r.id = d.recording_id "
        "WHERE d.original_id = ? ORDER BY d.created_at DESC, d.recording_id", [recording_id]))


def redaction_of(catalog, derivative_id: str) -> dict | None:
    rows = list(catalog.db.query("SELECT * FROM redactions WHERE recording_id = ?", [derivative_id]))
    return rows[0] if rows else None


def default_case_ref(recording_id: str) -> str:
    """The case reference of a redaction that names none (and no request): the hold still needs one."""
    return f"redactie-{recording_id}"


def redaction_purpose(purpose: str) -> str:
    """The purpose's code, if a redacted copy is made for it (PURPOSES); else a one-line error."""
    from .purposes import parse_purpose

    code = parse_purpose(purpose)
    if code not in PURPOSES:
        raise KluisError(f"a redacted copy is not made for {code}: choose one of {', '.join(PURPOSES)}")
    return code


def start_job(box: Box, identity, recording_id: str, plan: Plan, *, actor: str, purpose: str,
              case_ref: str | None = None, reason: str = "", client: str | None = None,
              request_ref: str | None = None) -> str:
    """Queue a redaction as a background job (appliance.jobs); returns the job id at once. The job's
    result is {"recording_id": the derivative, "counts": ...}. The identity stays in memory."""
    from . import jobs

    code = redaction_purpose(purpose)
    box.catalog.get_recording(recording_id)
    if request_ref:
        try:
            request = access_requests.get(box, request_ref)
        except NotFound:
            raise KluisError(f"no request {request_ref!r} in the register") from None
        case_ref = case_ref or request["ref"]
    case_ref = (case_ref or "").strip() or default_case_ref(recording_id)
    params = {"plan": plan.as_log(), "purpose": code, "case_ref": case_ref, "reason": reason or None,
              "request": request_ref}
    runner = jobs.runner_for(box)

    def work(job_box: Box, progress) -> dict:
        done = redact(job_box, identity, recording_id, plan, actor=actor, purpose=code, case_ref=case_ref,
                      reason=reason, client=client, request_id=request_ref, job_id=progress.job_id,
                      progress=progress, cancelled=progress.cancelled)
        return {"recording_id": done.recording_id, "original_id": recording_id, "hold": done.hold_id,
                "counts": asdict(done.counts)}

    return runner.submit("redact", work, actor=actor, recording_id=recording_id, params=params)


def still_jpeg(box: Box, identity, recording_id: str, t: float, quality: int = 85) -> bytes:
    """The frame at `t` seconds (or the last one before the end) as JPEG bytes, decoded in memory. For the
    web form on which the operator draws regions; the caller audits the view first."""
    import av
    import cv2

    from .clip import DecryptedReader

    with DecryptedReader.open(box, identity, recording_id) as src:
        try:
            with av.open(src, mode="r") as media:
                if not media.streams.video:
                    raise KluisError("the recording holds no video stream")
                video = media.streams.video[0]
                origin = video.start_time or 0
                media.seek(origin + int(max(0.0, t) / video.time_base), stream=video, backward=True, any_frame=False)
                chosen = None
                for frame in media.decode(video):
                    if chosen is not None and float((frame.pts - origin) * video.time_base) > t + 1e-6:
                        break
                    chosen = frame
                if chosen is None:
                    raise KluisError("no frame at that time")
                bgr = chosen.to_ndarray(format="bgr24")
        except av.error.FFmpegError as exc:
            raise KluisError(f"the recording cannot be read as video: {exc}") from None
    ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise KluisError("the frame could not be encoded")
    return data.tobytes()
