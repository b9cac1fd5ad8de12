"""What the editor shows before a job, on a real clip with faces, without a box: the faces of a frame with
the keep region proposed for each, and the preview (a window of the recording, scaled down, blurred by
the job's own code, as MP4 bytes in memory)."""

from __future__ import annotations

import io

import av
import numpy as np

from appliance import redaction
from appliance.redaction.editor import frame_at
import redactie_media as media


class Source:
    """Stands in for the gate's reader (appliance.footage.Footage): only open() is used."""

    def __init__(self, path):
        self.path = path

    def open(self):
        return open(self.path, "rb")


def test_faces_of_a_frame_and_the_keep_region_for_each(tmp_path):
    clip = media.make_footage(tmp_path / "in.mp4", audio=False)
    found = redaction.faces_at(Source(clip.path), 1.0)
    assert (found.t, found.width, found.height) == (1.0, media.WIDTH, media.HEIGHT)
    centres = [(f.x + f.w / 2, f.y + f.h / 2) for f in found.faces]
    standing = clip.keep[0] + clip.keep[2] / 2, clip.keep[1] + clip.keep[3] / 2
    assert any(abs(x - standing[0]) < 15 and abs(y - standing[1]) < 15 for x, y in centres), centres
    for face, keep in zip(found.faces, found.keep):
        assert keep.contains(*face.centre()) and keep.w >= face.w and keep.h >= face.h
        assert keep.x >= 0 and keep.y >= 0 and keep.x + keep.w <= media.WIDTH and keep.y + keep.h <= media.HEIGHT


def test_the_preview_is_a_blurred_scaled_window(tmp_path):
    clip = media.make_footage(tmp_path / "in.mp4", audio=True)
    box = (60, 30, 90, 100)
    plan = redaction.make_plan([], ["fiets:1:" + ",".join(map(str, box)), "fiets:1.8:0,0,0,0"], detect_faces=False)
    made = redaction.preview(Source(clip.path), plan, 1.0, seconds=1.0, width=160)
    assert (made.width, made.height, made.start) == (160, 120, 1.0)
    with av.open(io.BytesIO(made.mp4)) as m:
        assert not m.streams.audio  # a preview has no sound
        frames = [f.to_ndarray(format="gray") for f in m.decode(m.streams.video[0])]
    assert len(frames) == made.counts.frames == media.FPS  # 1.0 to 1.9 s
    assert made.counts.operator_boxes == 8  # 1.0 .. 1.7: the marker at 1.8 ends the track
    import cv2

    original, _ = frame_at(Source(clip.path), 1.0)
    small = cv2.resize(cv2.cvtColor(original, cv2.COLOR_BGR2GRAY), (160, 120), interpolation=cv2.INTER_AREA)
    x, y, w, h = (v // 2 for v in box)
    inside = (slice(y + 4, y + h - 4), slice(x + 4, x + w - 4))
    # blurred: the mosaic leaves ~2% of the detail; the preview's coarse encoding alone keeps about half
    assert redaction.laplacian_variance(frames[0][inside]) < 0.1 * redaction.laplacian_variance(small[inside])
    outside = (slice(70, 115), slice(90, 150))  # background and the standing face, nothing blurred there
    assert float(np.abs(frames[0][outside].astype(float) - small[outside]).mean()) < 6
    # after the marker at 1.8 s the track has ended: the last frame (1.9 s) is as sharp there as the original
    later, _ = frame_at(Source(clip.path), 1.9)
    later = cv2.resize(cv2.cvtColor(later, cv2.COLOR_BGR2GRAY), (160, 120), interpolation=cv2.INTER_AREA)
    assert redaction.laplacian_variance(frames[-1][inside]) > 0.3 * redaction.laplacian_variance(later[inside])
