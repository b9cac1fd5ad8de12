"""Real, playable test footage: H.264 in MP4 with the camera's clock burnt into every frame.

Used by the camera simulator and the demo. Pure Python plus PyAV: frames are drawn as raw YUV planes
with a 5x7 bitmap font, so no numpy, fonts or ffmpeg binary are needed.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import BinaryIO

import av

# 5x7 glyphs, one string of 7 rows of 5 bits per character.
_FONT = {
    "0": "01110 10001 10011 10101 11001 10001 01110", "1": "00100 01100 00100 00100 00100 00100 01110",
    "2": "01110 10001 00001 00010 00100 01000 11111", "3": "11110 00001 00001 01110 00001 00001 11110",
    "4": "00010 00110 01010 10010 11111 00010 00010", "5": "11111 10000 11110 00001 00001 10001 01110",
    "6": "00110 01000 10000 11110 10001 10001 01110", "7": "11111 00001 00010 00100 01000 01000 01000",
    "8": "01110 10001 10001 01110 10001 10001 01110", "9": "01110 10001 10001 01111 00001 00010 01100",
    ":": "00000 01100 01100 00000 01100 01100 00000", "-": "00000 00000 00000 11111 00000 00000 00000",
    ".": "00000 00000 00000 00000 00000 01100 01100", " ": "00000 00000 00000 00000 00000 00000 00000",
    "A": "01110 10001 10001 11111 10001 10001 10001", "C": "01110 10001 10000 10000 10000 10001 01110",
    "M": "10001 11011 10101 10101 10001 10001 10001", "T": "11111 00100 00100 00100 00100 00100 00100",
    "R": "11110 10001 10001 11110 10100 10010 10001", "E": "11111 10000 10000 11110 10000 10000 11111",
}


def _draw_text(plane: bytearray, width: int, text: str, x0: int, y0: int, scale: int) -> None:
    for i, char in enumerate(text.upper()):
        rows = _FONT.get(char, _FONT[" "]).split()
        for ry, bits in enumerate(rows):
            for rx, bit in enumerate(bits):
                if bit == "1":
                    x, y = x0 + (i * 6 + rx) * scale, y0 + ry * scale
                    for dy in range(scale):
                        start = (y + dy) * width + x
                        plane[start : start + scale] = b"\xeb" * scale


def make_mp4(path: Path | BinaryIO, seconds: float, started_at: datetime, label: str = "",
             width: int = 320, height: int = 240, fps: int = 10) -> Path | BinaryIO:
    """Write an MP4 of `seconds` whose frames show `label` and the camera clock from `started_at`.
    `path` may be a seekable binary file object (e.g. io.BytesIO): the camera simulator keeps its
    plaintext footage in memory only."""
    target = path if hasattr(path, "write") else Path(path)
    frames = max(1, round(seconds * fps))
    with av.open(target if hasattr(target, "write") else str(target), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "g": str(fps)}  # a keyframe every second: quick seeking
        chroma = bytes([128]) * ((width // 2) * (height // 2))
        for n in range(frames):
            luma = bytearray(bytes([16 + (n * 3) % 64]) * (width * height))
            stamp = (started_at + timedelta(seconds=n / fps)).strftime("%Y-%m-%d %H:%M:%S")
            _draw_text(luma, width, label, 8, 8, 2)
            _draw_text(luma, width, stamp, 8, height - 24, 2)
            frame = av.VideoFrame(width, height, "yuv420p")
            frame.planes[0].update(bytes(luma))
            frame.planes[1].update(chroma)
            frame.planes[2].update(chroma)
            frame.pts = n
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return target
