"""What the redaction editor shows before a job runs: one frame, the faces the detector finds in it,
and a short low-resolution preview of the redaction itself.

All three read the original through the gate's reader (`source`, from appliance.footage), whose audit
entry the caller committed first, and decode, blur and encode in memory: the preview is a fragmented
MP4 in a BytesIO, never a file (plaintext never touches the disk). The preview blurs with the same
code as the job (appliance.redaction.transcode), so what the privacy officer sees is what the job will
make, only smaller and shorter.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from ..errors import KluisError
from .detectors import Detector, make_detector
from .plan import Plan, Rect
from .transcode import FRAGMENTED_MP4, Counts, _Transcoder, open_video

PREVIEW_SECONDS = 4.0   # how long a preview runs
PREVIEW_WIDTH = 320     # its width in pixels (low resolution: it shows where the blur is, not the scene)
KEEP_GROWTH = 0.5       # a face clicked "keep" becomes a keep region this much larger on every side, so
                        # that the requester stays visible when they move a little


def frame_at(source, t: float):
    """The frame at `t` seconds (or the last one before the end) of the gate's reader `source` as a BGR
    array, and its time; decoded in memory."""
    import av

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
                return chosen.to_ndarray(format="bgr24"), float((chosen.pts - origin) * video.time_base)
        except av.error.FFmpegError as exc:
            raise KluisError(f"the recording cannot be read as video: {exc}") from None


@dataclass(frozen=True)
class FrameFaces:
    t: float            # the frame's own time (the last frame at or before the time asked)
    width: int
    height: int
    faces: list[Rect]   # as the job's detector finds them, in the video's pixels, largest first
    keep: list[Rect]    # for each face, the keep region the editor proposes (keep_region_for)


def faces_at(source, t: float, detector: Detector | None = None) -> FrameFaces:
    """The faces the job's detector (the box's settings: the caller makes it) finds in the frame at `t`,
    for the operator to click one to keep."""
    bgr, at = frame_at(source, t)
    height, width = bgr.shape[:2]
    found = sorted((detector or make_detector()).detect(bgr), key=lambda r: -r.w * r.h)
    return FrameFaces(at, width, height, found, [keep_region_for(f, width, height) for f in found])


def keep_region_for(face: Rect, width: int, height: int) -> Rect:
    """The keep region the editor proposes for a face the operator clicked: the face grown by KEEP_GROWTH
    on every side, within the frame."""
    grown = face.grown(KEEP_GROWTH)
    x0, y0 = max(0, grown.x), max(0, grown.y)
    x1, y1 = min(width, grown.x + grown.w), min(height, grown.y + grown.h)
    return Rect(x0, y0, x1 - x0, y1 - y0)


@dataclass(frozen=True)
class Preview:
    mp4: bytes
    start: float      # seconds into the recording of its first frame
    seconds: float
    width: int
    height: int
    counts: Counts


def preview(source, plan: Plan, start: float, *, seconds: float = PREVIEW_SECONDS, width: int = PREVIEW_WIDTH,
            detector: Detector | None = None) -> Preview:
    """`seconds` of the redaction from `start`, blurred as the job would, scaled to `width`, without sound,
    as a fragmented MP4 in memory. Boxes that the job follows with a tracker after their last keyframe are
    followed from the preview's first frame, where the job follows them from the keyframe."""
    import av

    out = io.BytesIO()
    with source.open() as src, open_video(src) as media:
        run = _PreviewRun(media, plan, detector, width)
        try:
            with av.open(out, mode="w", format="mp4", options=FRAGMENTED_MP4) as muxer:
                run.open_output(muxer, {"preset": "ultrafast", "crf": "28"})
                run.window(max(0.0, start), seconds)
        except av.error.FFmpegError as exc:
            raise KluisError(f"the preview could not be made: {exc}") from None
    if run.counts.frames == 0:
        raise KluisError("the recording has no frames from that time on")
    return Preview(out.getvalue(), run.first_t or 0.0, seconds, run.out_size[0], run.out_size[1], run.counts)


class _PreviewRun(_Transcoder):
    """The job's transcoder over a window of the recording, video only, scaled down."""

    def __init__(self, media, plan: Plan, detector: Detector | None, width: int):
        super().__init__(media, plan, None, detector)
        self.audio = None  # no sound in a preview
        scale = min(1.0, width / self.width)
        self.out_size = (max(2, round(self.width * scale / 2) * 2), max(2, round(self.height * scale / 2) * 2))
        self.first_t: float | None = None

    def window(self, start: float, seconds: float) -> None:
        video = self.video
        self.media.seek(self.origin_v + int(start / video.time_base), stream=video, backward=True, any_frame=False)
        end = start + seconds
        for frame in self.media.decode(video):
            t = float(((frame.pts or 0) - self.origin_v) * video.time_base)
            if t < start - 1e-6:
                continue
            if t >= end:
                break
            if self.first_t is None:
                self.first_t, self.pts_offset = t, frame.pts or 0
            self.take_video(frame)
        self.settle(final=True)
        for packet in self.vout.encode():
            self.out.mux(packet)


def open_for_editor(box, actor: str, recording_id: str, purpose: str, case_ref: str | None,
                    request_ref: str | None, *, identity, client: str | None = None, details: dict | None = None):
    """The gate's reader for the editor (scrubbing, faces, preview): the redaction's role, scope and
    purpose, then a 'view' entry with the redaction's case (the request's reference when it names a
    request) and what the view was for; the entry is committed before the first byte is read."""
    from .. import footage
    from .derivative import PURPOSES
    from .jobs import case_for

    case = case_for(box, recording_id, case_ref, request_ref)
    return footage.open_for_redaction(box, actor, recording_id, purpose, case, identity=identity, allowed=PURPOSES,
                                      action="view", client=client,
                                      details={"for": "redaction", "request": request_ref or None, **(details or {})})
