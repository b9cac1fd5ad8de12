#!/usr/bin/env python3
"""How often a moving face is left sharp when faces are searched only every Nth frame (issue 23: detection
on every frame, or in between only where that is shown not to lose a face).

    .venv/bin/python bench/redact_motion.py [--every 1,2,3,4,5] [--detectors centerface,haar] [--seconds 4]

A 1080p 25 frames/s video (x264, as a bodycam's) with real faces (scikit-image's astronaut and LFW faces)
moving over the street-like collage of redact_material.py: faces of 60-120 px (hairline to chin) at walking
pace (10 px per frame: across the frame in 8 s), 25 px per frame, and running or a turning camera (50 px
per frame: across in 1.5 s), one going back and forth (sudden turns), one walking in from the left edge. The real
redaction pipeline (appliance.redaction.transcode: decode, search every Nth frame, each face's box moved
linearly between its sightings, a face seen in only one of two searches blurred over the whole stretch)
runs with each N; the regions it would blur in each frame are compared with where the faces really are.
A face is left sharp in a frame when less than 95 % of its core (the middle 70 % of the face itself: eyes,
nose, mouth) lies under the blurred regions. Rows: frames with a face left sharp, the longest run of such
frames, and ms per frame of the whole run (decode, search, blur; not the encode).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
FPS = 25
WIDTH, HEIGHT = 1920, 1080


def faces_at(n: int, faces: list) -> list[tuple[int, int, int, int]]:
    """Where each moving face is in frame n: (x, y, w, h)."""
    out = []
    for i, ((face, _box), speed, y, mode) in enumerate(faces):
        h, w = face.shape[:2]
        span = WIDTH - w
        if mode == "enter":   # walks in from outside the left edge
            x = -w + speed * n
        elif mode == "zigzag":  # turns every 12 frames
            phase, k = divmod(n, 12)
            x = 300 + (speed * k if phase % 2 == 0 else speed * (12 - k))
        else:
            x = (100 + i * 200 + speed * n) % (2 * span)
            x = x if x < span else 2 * span - x
        out.append((int(x), y, w, h))
    return out


def make_video(path: Path, seconds: float) -> tuple[int, list[list[tuple[int, int, int, int]]]]:
    import av
    import cv2
    import redact_material

    rng = np.random.default_rng(5)
    head, lfw = redact_material._faces()
    bg = redact_material._collage(rng)
    # (photo, face box in it), px per frame, y, how it moves; face heights 60-120 px (hairline to chin)
    faces = [(redact_material.face_of(head, lfw, 0, 60), 10, 60, "across"),
             (redact_material.face_of(head, lfw, 3, 60), 25, 240, "across"),
             (redact_material.face_of(head, lfw, 0, 120), 50, 380, "across"),
             (redact_material.face_of(head, lfw, 17, 60), 50, 640, "across"),
             (redact_material.face_of(head, lfw, 0, 80), 30, 760, "zigzag"),
             (redact_material.face_of(head, lfw, 41, 80), 20, 930, "enter")]
    frames = round(seconds * FPS)
    truth = []
    with av.open(str(path), "w", format="mp4") as out:
        vs = out.add_stream("libx264", rate=FPS)
        vs.width, vs.height, vs.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        vs.options = {"preset": "ultrafast", "crf": "20", "g": str(2 * FPS)}
        for n in range(frames):
            img = bg.copy()
            boxes = []
            for ((face, (fx, fy, fw, fh)), *_), (x, y, w, h) in zip(faces, faces_at(n, faces)):
                x0, x1 = max(0, x), min(WIDTH, x + w)
                img[y:y + h, x0:x1] = face[:, x0 - x:x1 - x]
                f0, f1 = max(0, x + fx), min(WIDTH, x + fx + fw)
                if f1 - f0 > fw // 2:  # at least half of the face in the frame: a face to blur
                    boxes.append((f0, y + fy, f1 - f0, fh))
            truth.append(boxes)
            rgb = cv2.cvtColor(img, cv2.COLOR_BGR2RGB).astype(np.uint8, copy=False)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = n, Fraction(1, FPS)
            for packet in vs.encode(frame):
                out.mux(packet)
        for packet in vs.encode():
            out.mux(packet)
    return frames, truth


def blurred_regions(path: Path, detector, every: int) -> tuple[list[list], float]:
    """The regions the real pipeline blurs in each frame, searching every `every`th frame; ms per frame."""
    import av

    from appliance.redaction import make_plan
    from appliance.redaction.transcode import FRAGMENTED_MP4, _Transcoder, open_video

    regions: list[list] = []

    class Watched(_Transcoder):
        def finish(self, entry, rects):  # what would be blurred; not encoded (the encode is not measured)
            regions.append(list(entry[3]) + list(rects))

    started = time.perf_counter()
    with open(path, "rb") as src, open_video(src) as media:
        run = Watched(media, make_plan(), None, detector)
        run.every = every
        with av.open(io.BytesIO(), mode="w", format="mp4", options=FRAGMENTED_MP4) as out:
            run.open_output(out, None)
            run.run(None)
    return regions, (time.perf_counter() - started) * 1000 / max(1, len(regions))


def left_sharp(regions: list[list], truth: list[list]) -> tuple[int, int, int, set]:
    """(frames with a face left sharp, the longest run of them, faces x frames in all, the (frame, face)
    pairs left sharp)."""
    bad_frames, run, longest, total = 0, 0, 0, 0
    pairs = set()
    for n, (rects, faces) in enumerate(zip(regions, truth)):
        mask = np.zeros((HEIGHT, WIDTH), bool)
        for r in rects:
            mask[max(0, r.y):max(0, r.y + r.h), max(0, r.x):max(0, r.x + r.w)] = True
        bad = False
        for i, (x, y, w, h) in enumerate(faces):
            total += 1
            core = mask[y + round(h * 0.15):y + h - round(h * 0.15), x + round(w * 0.15):x + w - round(w * 0.15)]
            if core.size and core.mean() < 0.95:
                bad = True
                pairs.add((n, i))
        bad_frames += bad
        run = run + 1 if bad else 0
        longest = max(longest, run)
    return bad_frames, longest, total, pairs


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--every", default="1,2,3,4,5", help="search every Nth frame, for each N")
    p.add_argument("--detectors", default="centerface", help="centerface, haar (their [redaction] defaults)")
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    import tempfile

    from appliance.config_models import RedactionSettings
    from appliance.redaction import make_detector

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "moving.mp4"
        frames, truth = make_video(video, args.seconds)
        for kind in args.detectors.split(","):
            detector = make_detector(RedactionSettings(detector=kind))
            every_frame: set | None = None
            for every in sorted(int(n) for n in args.every.split(",")):
                regions, ms = blurred_regions(video, detector, every)
                bad, longest, total, pairs = left_sharp(regions, truth)
                if every == 1:
                    every_frame = pairs
                rows.append({"detector": detector.name, "every": every, "frames": frames, "faces_x_frames": total,
                             "frames_with_a_face_left_sharp": bad, "longest_run": longest,
                             "face_frames_left_sharp": len(pairs),
                             "more_than_searching_every_frame": None if every_frame is None
                             else len(pairs - every_frame),
                             "ms_per_frame": round(ms, 1)})
                if not args.json:
                    print(json.dumps(rows[-1]), flush=True)
    if args.json:
        print(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
