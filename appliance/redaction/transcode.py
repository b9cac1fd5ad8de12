"""The redaction itself, on plaintext streams: decode, blur, mute, encode (libx264 + AAC), mux as MP4.

`redact_stream` reads a seekable MP4 and writes a fragmented MP4 (no seeking back), so the output can go
straight into a pipe. A `_Transcoder` carries the state of one run: the open streams, the frames that
wait for the next face search, the counts for the redaction log.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable

from ..errors import KluisError
from .detectors import Detector, make_detector
from .faces import DETECT_INTERVAL, MARGIN, TRACK_WIDTH, Track, lerp, pair_faces
from .pixels import blur_yuv420
from .plan import Keyframe, Plan, Rect

X264 = {"preset": "veryfast", "crf": "23"}


@dataclass
class Counts:
    frames: int = 0
    frames_total: int = 0
    frames_blurred: int = 0
    frames_searched: int = 0   # frames the detector looked at (every `every`th, and those between two that disagree)
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


# A fragmented MP4 needs only `write` of its output: the job streams it into a sealed file, the preview into memory.
FRAGMENTED_MP4 = {"movflags": "frag_keyframe+empty_moov+default_base_moof"}


def open_video(src):
    """The MP4 in `src` (seekable file-like) opened for reading, as a context manager; KluisError when it is
    no video."""
    import av

    try:
        media = av.open(src, mode="r")
    except av.error.FFmpegError as exc:
        raise KluisError(f"the recording cannot be read as video: {exc}") from None
    if not media.streams.video:
        media.close()
        raise KluisError("the recording holds no video stream")
    return media


def redact_stream(src, dst, plan: Plan, *, progress: Callable[[int, int], None] | None = None,
                  detector: Detector | None = None, cancelled: Callable[[], bool] | None = None,
                  x264: dict | None = None) -> Counts:
    """Read the MP4 in `src` (seekable file-like), write the redacted MP4 (fragmented: `dst` needs only
    `write`). `detector`: the face detector (without one, the default settings' when the plan detects
    faces). Returns the counts for the redaction log."""
    import av

    started = time.perf_counter()
    with open_video(src) as media:
        run = _Transcoder(media, plan, progress, detector)
        with av.open(dst, mode="w", format="mp4", options=FRAGMENTED_MP4) as out:
            run.open_output(out, x264)
            try:
                run.run(cancelled)
            except av.error.FFmpegError as exc:
                raise KluisError(f"the recording could not be redacted: {exc}") from None
    counts = run.counts
    if progress is not None:
        progress(counts.frames, counts.frames)
    counts.seconds = round(time.perf_counter() - started, 3)
    counts.audio_muted_s = round(counts.audio_muted_s, 3)
    return counts


class _Transcoder:
    """One redaction run. Faces are searched every `every` frames; the frames between two searched frames
    wait (in `pending`) until the later one is searched, then each face's box moves linearly between its
    two sightings. A face seen in only one of them is blurred over the whole stretch as it was seen."""

    def __init__(self, media, plan: Plan, progress: Callable[[int, int], None] | None,
                 detector: Detector | None):
        import cv2

        self.cv2, self.media, self.plan, self.progress = cv2, media, plan, progress
        self.counts = Counts()
        video = self.video = media.streams.video[0]
        video.thread_type = "AUTO"
        self.audio = media.streams.audio[0] if media.streams.audio else None
        self.width, self.height = video.codec_context.width, video.codec_context.height
        if self.width % 2 or self.height % 2:
            raise KluisError(f"odd frame size {self.width}x{self.height} is not supported")
        self.out_size = (self.width, self.height)  # the editor's preview encodes smaller (editor.py)
        self.pts_offset = 0                         # and from 0 where its window starts
        self.counts.frames_total = _frames_total(video)
        self.rate = video.average_rate or video.guessed_rate or Fraction(25)
        self.origin_v = video.start_time or 0
        self.detector = (detector if detector is not None else make_detector()) if plan.detect_faces else None
        self.track_scale = min(1.0, TRACK_WIDTH / self.width)
        self.track_size = (round(self.width * self.track_scale), round(self.height * self.track_scale))
        tracks: dict[str, list[Keyframe]] = {}
        for kf in plan.boxes:
            tracks.setdefault(kf.track, []).append(kf)
        self.trackers = [Track(kfs, cv2, self.track_scale) for kfs in tracks.values()]
        self.every = max(1, round(float(self.rate) * DETECT_INTERVAL))
        self.pending: deque = deque()   # (frame_no, pts, array, operator rects, faces or None if not searched)
        self.carry: list[Rect] = []     # faces of the last searched frame that the next one did not show
        self.frame_no = 0
        self.origin_a = (self.audio.start_time or 0) if self.audio is not None else 0
        self.audio_pts = 0

    def open_output(self, out, x264: dict | None) -> None:
        import av

        self.out = out
        vout = self.vout = out.add_stream("libx264", rate=self.rate)
        vout.width, vout.height, vout.pix_fmt = self.out_size[0], self.out_size[1], "yuv420p"
        vout.codec_context.time_base = self.video.time_base
        vout.options = {**X264, **(x264 or {}), "g": str(max(1, round(float(self.rate) * 2)))}
        # x264's frame threads: with FFmpeg's default here (slice threads) encoding 1080p is ~3x slower
        vout.codec_context.thread_type = "FRAME"
        self.aout = self.resampler = None
        if self.audio is not None:
            context = self.audio.codec_context
            self.aout = out.add_stream("aac", rate=context.sample_rate)
            self.aout.layout = context.layout.name
            self.aout.codec_context.time_base = Fraction(1, context.sample_rate)
            self.resampler = av.AudioResampler(format="fltp", layout=self.aout.layout.name, rate=context.sample_rate)

    def run(self, cancelled: Callable[[], bool] | None) -> None:
        streams = [self.video] + ([self.audio] if self.audio is not None else [])
        for packet in self.media.demux(streams):
            if cancelled is not None and cancelled():
                raise KluisError("the redaction was cancelled")
            for frame in packet.decode():
                if packet.stream is self.audio:
                    self.mute_audio(frame)
                else:
                    self.take_video(frame)
        self.settle(final=True)
        for packet in self.vout.encode():
            self.out.mux(packet)
        if self.aout is not None:
            for packet in self.aout.encode():
                self.out.mux(packet)

    def take_video(self, frame) -> None:
        counts = self.counts
        t = float(((frame.pts or 0) - self.origin_v) * self.video.time_base)
        array = frame.to_ndarray(format="yuv420p")
        search = self.detector is not None and self.frame_no % self.every == 0
        small = None
        if self.trackers:
            luma = array[:self.height]
            small = luma if self.track_scale == 1.0 else \
                self.cv2.resize(luma, self.track_size, interpolation=self.cv2.INTER_AREA)
        boxes = []
        for track in self.trackers:
            r = track.rect_at(t, small)
            if r is not None:
                boxes.append(r.grown(0.05))
                counts.operator_boxes += 1
        found = self.search(array, t) if search else None
        self.pending.append((self.frame_no, frame.pts, array, boxes, found, t))
        self.frame_no += 1
        if search or self.detector is None:
            self.settle()

    def search(self, array, t: float) -> list[Rect]:
        """The faces the detector finds in a frame, grown by MARGIN, less those in a keep region."""
        counts, found = self.counts, []
        assert self.detector is not None  # searched only when faces are detected
        counts.frames_searched += 1
        for r in self.detector.detect_yuv420(array, self.width, self.height):
            cx, cy = r.centre()
            if any(k.active(t) and k.rect.contains(cx, cy) for k in self.plan.keep):
                counts.faces_kept += 1
                continue
            found.append(r.grown(MARGIN))
        counts.faces_detected += len(found)
        return found

    def finish(self, entry, rects: list[Rect]) -> None:
        import av

        counts = self.counts
        _no, pts, array, boxes, _, _t = entry
        rects = list(boxes) + rects
        if rects:
            blur_yuv420(array, self.width, self.height, rects, self.cv2)
            counts.frames_blurred += 1
        frame = av.VideoFrame.from_ndarray(array, format="yuv420p")
        if self.out_size != (self.width, self.height):
            frame = frame.reformat(width=self.out_size[0], height=self.out_size[1])
        frame.pts = pts - self.pts_offset if pts is not None and self.pts_offset else pts
        frame.time_base = self.video.time_base
        for packet in self.vout.encode(frame):
            self.out.mux(packet)
        counts.frames += 1
        if self.progress is not None and counts.frames % 10 == 0:
            self.progress(counts.frames, max(counts.frames_total, counts.frames))

    def settle(self, final: bool = False) -> None:
        """Finish the pending frames before the last searched one (all of them at the end).

        Between two searches that agree (each face seen in both), a face's box moves linearly from one
        sighting to the other. Where they disagree (a face came into view, left it, or was missed once),
        the frames between are searched as well, and what either search saw stays blurred over the
        stretch: a fast face that appears between two searches is not left sharp until the next one
        (tests/redaction/test_redactie_detectors.py; docs/redaction.md measures it). At the end, the
        frames after the last search are searched too."""
        pending = self.pending
        if self.detector is None:
            while pending:
                self.finish(pending.popleft(), [])
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
                    rects += self.carry
                elif only_a or only_b:
                    rects += self.search(entry[2], entry[5])
                self.finish(entry, rects)
            self.carry = only_a
        if final:
            held = (searched[-1][4] if searched else []) + self.carry
            while pending:
                entry = pending.popleft()
                self.finish(entry, held + (self.search(entry[2], entry[5]) if entry[4] is None else []))

    def mute_audio(self, frame) -> None:
        import av
        import numpy as np

        assert self.resampler is not None and self.aout is not None  # made when the source has audio
        for fr in self.resampler.resample(frame):
            samples = fr.to_ndarray()  # planar float: (channels, n)
            rate_a = fr.sample_rate
            t0 = float(((frame.pts or 0) - self.origin_a) * frame.time_base) if frame.pts is not None \
                else self.audio_pts / rate_a
            n = samples.shape[-1]
            changed = False
            for a, b in self.plan.mute:
                i0 = max(0, int(round((a - t0) * rate_a)))
                i1 = min(n, int(round((b - t0) * rate_a)))
                if i1 > i0:
                    samples[..., i0:i1] = 0
                    self.counts.audio_muted_s += (i1 - i0) / rate_a
                    changed = True
            if changed:
                # PyAV's stubs give to_ndarray() no dtype; from the 'fltp' resampler it is float32
                fresh = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples),  # type: ignore[arg-type]
                                                   format=fr.format.name, layout=fr.layout.name)
                fresh.sample_rate = rate_a
                fr = fresh
            fr.pts, fr.time_base = self.audio_pts, Fraction(1, rate_a)
            self.audio_pts += fr.samples
            for packet in self.aout.encode(fr):
                self.out.mux(packet)
