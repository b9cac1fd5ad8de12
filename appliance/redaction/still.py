"""One frame of a recording as JPEG, for the web form on which the operator draws regions."""

from __future__ import annotations

from ..errors import KluisError
from .editor import frame_at


def still_jpeg(source, t: float, quality: int = 85) -> bytes:
    """The frame at `t` seconds (or the last one before the end) of the gate's reader `source`
    (appliance.footage.open_for_redaction) as JPEG bytes, decoded in memory."""
    import cv2

    bgr, _ = frame_at(source, t)
    ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise KluisError("the frame could not be encoded")
    return data.tobytes()
