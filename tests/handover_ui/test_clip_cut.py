"""Cutting a time window out of a recording: keyframe-aligned remux, no re-encoding, playable, in memory.

make_mp4 footage has a keyframe every second (GOP = fps = 10 frames), so a clip's length must be within one
second of the window asked for; ffprobe (the real ffmpeg tool) and PyAV read it."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from datetime import datetime, timezone

import av
import pytest

from appliance import recordings
from appliance.clip import cut_clip, cut_footage
from appliance.dock.footage import make_mp4
from appliance.errors import KluisError
from tests.conftest import PASSWORD, footage_of

START = datetime(2026, 11, 20, 13, 5, tzinfo=timezone.utc)
GOP_S = 1.0  # make_mp4: fps 10, g 10


@pytest.fixture(scope="module")
def footage() -> bytes:
    buf = io.BytesIO()
    make_mp4(buf, 12, START, "CAM001")
    return buf.getvalue()


def probe(data: bytes) -> tuple[float, float, int]:
    """(duration, first video timestamp, decoded frames) of an MP4 in memory, read by PyAV."""
    with av.open(io.BytesIO(data)) as media:
        video = media.streams.video[0]
        frames = [frame for frame in media.decode(video)]
        return media.duration / av.time_base, float(frames[0].pts * video.time_base), len(frames)


@pytest.mark.parametrize("window", [(3.4, 8.0), (0.0, 12.0), (10.5, 12.0), (6.0, 6.5)])
def test_clip_plays_and_lasts_the_window_within_one_gop(footage, window):
    start, end = window
    out = io.BytesIO()
    result = cut_clip(io.BytesIO(footage), start, end, out)
    clip = out.getvalue()
    duration, first_ts, frames = probe(clip)
    assert abs(duration - (end - start)) <= GOP_S + 0.01
    assert duration >= end - start - 0.01  # starts at the keyframe at or before: never shorter
    assert first_ts < 0.05                  # timestamps start near zero
    assert frames == round(duration * 10)   # every frame decodes
    assert result["requested_from_s"] == start and result["requested_to_s"] == end
    assert result["from_s"] <= start < result["from_s"] + GOP_S
    assert result["from_s"] == int(start)   # keyframes sit on whole seconds
    assert abs(result["duration_s"] - duration) < 0.01
    assert result["to_s"] == pytest.approx(result["from_s"] + result["duration_s"], abs=0.002)


def test_clip_is_not_reencoded(footage):
    """The clip's video packets are the original's packets, byte for byte, from the keyframe on."""
    out = io.BytesIO()
    cut_clip(io.BytesIO(footage), 4.2, 7.0, out)

    def packets(data, lo, hi):
        with av.open(io.BytesIO(data)) as media:
            v = media.streams.video[0]
            return [bytes(p) for p in media.demux(v) if p.pts is not None and lo <= p.pts * v.time_base < hi]

    assert packets(out.getvalue(), 0, 3) == packets(footage, 4, 7)


@pytest.mark.skipif(shutil.which("ffprobe") is None, reason="ffprobe (Debian ffmpeg) not installed")
def test_ffprobe_reads_a_clip_with_audio(tmp_path):
    """Audio streams come along; B-frames do not make timestamps negative. (The source is test footage
    made by ffmpeg here, not box footage.)"""
    src = tmp_path / "av.mp4"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=25",
                    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "6", "-c:v", "libx264",
                    "-preset", "ultrafast", "-g", "25", "-bf", "2", "-c:a", "aac", str(src)], check=True)
    out = io.BytesIO()
    with open(src, "rb") as f:
        result = cut_clip(f, 2.5, 4.5, out)
    probe_out = subprocess.run(["ffprobe", "-v", "error", "-print_format", "json", "-show_streams", "-show_format",
                                "-"], input=out.getvalue(), capture_output=True, check=True)
    info = json.loads(probe_out.stdout)
    kinds = sorted(s["codec_type"] for s in info["streams"])
    assert kinds == ["audio", "video"]
    assert abs(float(info["format"]["duration"]) - 2.0) <= 1.0 + 0.1
    assert all(0 <= float(s["start_time"]) < 0.2 for s in info["streams"])
    assert result["from_s"] == 2.0
    decode = subprocess.run(["ffmpeg", "-v", "error", "-i", "-", "-f", "null", "-"], input=out.getvalue(),
                            capture_output=True)
    assert decode.returncode == 0 and not decode.stderr.strip(), decode.stderr


@pytest.mark.parametrize("window, words", [
    ((12.5, 14.0), "after the end"),
    ((11.0, 13.0), "after the end"),
    ((-1.0, 2.0), "before the recording"),
    ((5.0, 5.0), "empty"),
    ((6.0, 5.0), "empty"),
    ((float("nan"), 2.0), "not a number"),
])
def test_window_outside_or_empty_is_refused(footage, window, words):
    out = io.BytesIO()
    with pytest.raises(KluisError, match=words):
        cut_clip(io.BytesIO(footage), *window, out)
    assert out.getvalue() == b""


def test_not_a_video_is_a_kluis_error():
    with pytest.raises(KluisError):
        cut_clip(io.BytesIO(b"not an mp4 at all" * 100), 0, 1, io.BytesIO())


def test_cut_from_the_vault_without_a_plaintext_copy(box, tmp_path, footage):
    """The gate's reader decrypts chunks on demand: the clip cut from the encrypted recording equals the clip
    cut from the plaintext, and reading it whole gives the original bytes."""
    src = tmp_path / "in.mp4"
    src.write_bytes(footage)
    assert len(footage) > 2 * 65536
    box.settings.storage.chunk_size = 65536  # the smallest: several chunks, PyAV's reads cross their borders
    recording_id = recordings.import_file(box, src, camera="CAM001", officer="jansen", start=START).recording_id
    src.unlink()
    identity = box.unlock("admin", PASSWORD)
    with footage_of(box, identity, recording_id).open() as reader:
        assert reader.read() == footage
        reader.seek(-10, io.SEEK_END)
        assert reader.read(100) == footage[-10:]
        reader.seek(65530)
        assert reader.read(10) == footage[65530:65540]
    from_vault, from_plain = io.BytesIO(), io.BytesIO()
    result = cut_footage(footage_of(box, identity, recording_id), 2.5, 6.0, from_vault)
    assert result == cut_clip(io.BytesIO(footage), 2.5, 6.0, from_plain)
    assert from_vault.getvalue() == from_plain.getvalue()
    # No plaintext anywhere under the test's directory (the box's data dir included).
    sample = footage[1000:1064]
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and sample in p.read_bytes()]
