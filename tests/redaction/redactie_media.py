"""Test footage for redaction: a real face (scikit-image's bundled `astronaut` photo, no download) moving
across a textured scene, a second face standing still (the requester, marked keep), and a 440 Hz tone."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

WIDTH, HEIGHT, FPS, SECONDS = 320, 240, 10, 2.5
RATE = 48000
FACE = 72                    # face crop size (square) in the video
KEEP_AT = (236, 150)         # where the standing face is (x, y)
TONE = 0.4                   # amplitude


def face_crop(size: int = FACE) -> np.ndarray:
    import cv2
    from skimage import data

    image = data.astronaut()  # RGB, 512x512, shipped inside the scikit-image wheel
    head = image[30:230, 150:330]  # Eileen Collins' face
    head = cv2.resize(head, (size, round(size * head.shape[0] / head.shape[1])), interpolation=cv2.INTER_AREA)
    return head


def background() -> np.ndarray:
    rng = np.random.default_rng(8)
    base = rng.integers(60, 200, size=(HEIGHT // 8, WIDTH // 8, 3), dtype=np.uint8)
    import cv2

    return cv2.resize(base, (WIDTH, HEIGHT), interpolation=cv2.INTER_NEAREST)


@dataclass(frozen=True)
class Footage:
    path: Path
    frames: int
    moving: list[tuple[int, int, int, int]]   # the moving face's box per frame (x, y, w, h)
    keep: tuple[int, int, int, int]           # the standing face's box


def moving_at(n: int, frames: int, w: int, h: int) -> tuple[int, int, int, int]:
    x = 8 + round((150 - 8) * n / max(1, frames - 1))
    return x, 40, w, h


def make_footage(path: Path, seconds: float = SECONDS, audio: bool = True, fps: int = FPS) -> Footage:
    face = face_crop()
    h, w = face.shape[:2]
    frames = round(seconds * fps)
    bg = background()
    boxes = []
    with av.open(str(path), "w", format="mp4") as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        vs.options = {"preset": "ultrafast", "crf": "16", "g": str(fps)}
        aus = None
        if audio:
            aus = out.add_stream("aac", rate=RATE)
            aus.layout = "mono"
        samples_done = 0
        for n in range(frames):
            img = bg.copy()
            x, y, _, _ = moving_at(n, frames, w, h)
            img[y:y + h, x:x + w] = face
            kx, ky = KEEP_AT
            img[ky - 60:ky - 60 + h, kx:kx + w] = face
            boxes.append((x, y, w, h))
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = n
            frame.time_base = Fraction(1, fps)
            for packet in vs.encode(frame):
                out.mux(packet)
            if aus is not None:
                # audio up to the end of this frame
                until = round((n + 1) / fps * RATE)
                t = (np.arange(samples_done, until) / RATE).astype(np.float32)
                chunk = (TONE * np.sin(2 * np.pi * 440 * t)).astype(np.float32).reshape(1, -1)
                af = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
                af.sample_rate = RATE
                af.pts = samples_done
                af.time_base = Fraction(1, RATE)
                samples_done = until
                for packet in aus.encode(af):
                    out.mux(packet)
        for packet in vs.encode():
            out.mux(packet)
        if aus is not None:
            for packet in aus.encode():
                out.mux(packet)
    kx, ky = KEEP_AT
    return Footage(path, frames, boxes, (kx, ky - 60, w, h))


def decode(src) -> tuple[list[np.ndarray], np.ndarray, int]:
    """Luma planes of every frame, and the audio as one mono float array with its rate."""
    luma, audio, rate = [], [], RATE
    with av.open(src) as media:
        streams = [media.streams.video[0]] + list(media.streams.audio[:1])
        for packet in media.demux(streams):
            for frame in packet.decode():
                if isinstance(frame, av.VideoFrame):
                    luma.append(frame.to_ndarray(format="gray"))
                else:
                    rate = frame.sample_rate
                    audio.append(frame.to_ndarray().mean(axis=0) if frame.format.is_planar else frame.to_ndarray().reshape(-1))
    return luma, (np.concatenate(audio) if audio else np.zeros(0)), rate
