"""One frame of a recording as JPEG, for the web form on which the operator draws regions."""

from __future__ import annotations

from ..errors import KluisError


def still_jpeg(source, t: float, quality: int = 85) -> bytes:
    """The frame at `t` seconds (or the last one before the end) of the gate's reader `source`
    (appliance.footage.open_for_redaction) as JPEG bytes, decoded in memory."""
    import av
    import cv2

    with source.open() as src:
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
