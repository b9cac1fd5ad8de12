"""Blurring regions of a decoded frame, in place."""

from __future__ import annotations

from .plan import Rect

MOSAIC = 8                # a blurred region is reduced to about this many blocks across, then smoothed


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
