"""Cut a time window out of a recording for a handover: remuxed at keyframes, never re-encoded.

The clip starts at the keyframe at or before the requested start (a clip that starts between keyframes
would not play until the next one) and ends at the requested end; audio streams come along. Its
timestamps are shifted to start near zero. Nothing is re-encoded, so every frame in the clip is the
camera's own bytes.

Plaintext never touches the disk: the gate's reader (appliance.footage, `Footage.open`) is a seekable
file-like object over the vault's encrypted payload that decrypts only the chunks PyAV asks for, and the
clip is written to whatever `dst` the caller gives (memory, or the encrypted package's writer).
"""

from __future__ import annotations

from typing import BinaryIO

from .errors import KluisError

# A window may end this much past the recording's length (rounding of a typed-in end time).
END_TOLERANCE_S = 0.05


def _seconds(value, time_base) -> float:
    return float(value * time_base)


def media_duration(src: BinaryIO) -> float:
    """Seconds of media in a seekable MP4 reader (the window a clip may be cut from)."""
    import av  # here, not at the top: PyAV's libraries cost kluis serve ~17 MB while nobody cuts a clip

    src.seek(0)
    try:
        with av.open(src, mode="r") as media:
            video = _video_stream(media)
            return _duration_of(media, video)
    except av.error.FFmpegError as exc:
        raise KluisError(f"the recording cannot be read as video: {exc}") from None


def _video_stream(media):
    if not media.streams.video:
        raise KluisError("the recording holds no video stream")
    return media.streams.video[0]


def _duration_of(media, video) -> float:
    import av

    if video.duration is not None and video.time_base is not None:
        return _seconds(video.duration, video.time_base)
    if media.duration is not None:
        return media.duration / av.time_base
    raise KluisError("the recording's length cannot be read")


def _check_window(start_s: float, end_s: float, duration: float) -> None:
    if not (start_s == start_s and end_s == end_s):  # NaN
        raise KluisError("the time window is not a number")
    if start_s < 0:
        raise KluisError(f"the time window starts before the recording ({start_s:g} s)")
    if end_s <= start_s:
        raise KluisError(f"the time window is empty: it ends ({end_s:g} s) at or before its start ({start_s:g} s)")
    if start_s >= duration:
        raise KluisError(f"the time window starts at {start_s:g} s, after the end of the recording "
                         f"({duration:.1f} s long)")
    if end_s > duration + END_TOLERANCE_S:
        raise KluisError(f"the time window ends at {end_s:g} s, after the end of the recording "
                         f"({duration:.1f} s long)")


def cut_clip(src: BinaryIO, start_s: float, end_s: float, dst: BinaryIO) -> dict:
    """Remux [start_s, end_s) of the MP4 in `src` (seekable) into `dst` as a playable MP4, from the keyframe
    at or before start_s, without re-encoding. Returns the window actually cut:
    {"from_s", "to_s", "duration_s", "requested_from_s", "requested_to_s"} (seconds in the recording)."""
    import av

    start_s, end_s = float(start_s), float(end_s)
    src.seek(0)
    try:
        media = av.open(src, mode="r")
    except av.error.FFmpegError as exc:
        raise KluisError(f"the recording cannot be read as video: {exc}") from None
    with media:
        video = _video_stream(media)
        duration = _duration_of(media, video)
        _check_window(start_s, end_s, duration)
        streams = [video] + list(media.streams.audio)
        base = {s.index: _seconds(s.start_time or 0, s.time_base) for s in streams}
        try:
            # backward + keyframes only: lands on the keyframe at or before the start.
            media.seek(int(start_s / video.time_base) + (video.start_time or 0), stream=video,
                       backward=True, any_frame=False)
        except av.error.FFmpegError as exc:
            raise KluisError(f"cannot seek in the recording: {exc}") from None
        try:
            out = av.open(dst, mode="w", format="mp4")
        except av.error.FFmpegError as exc:
            raise KluisError(f"cannot write the clip: {exc}") from None
        with out:
            targets = {s.index: out.add_stream_from_template(s) for s in streams}
            shift = {}      # stream index -> timestamps to subtract (its time base)
            origin = None   # seconds in the recording where the clip starts (the first keyframe)
            last_end = None
            ended = set()
            for packet in media.demux(streams):
                index = packet.stream.index
                if packet.dts is None and packet.pts is None:
                    continue  # the demuxer's end-of-stream marker
                tb = packet.stream.time_base
                at = _seconds(packet.pts if packet.pts is not None else packet.dts, tb) - base[index]
                if origin is None:
                    if index != video.index or not packet.is_keyframe:
                        continue  # nothing before the first keyframe: it could not be decoded
                    origin = at
                if at < origin - 1e-6 or at >= end_s:
                    if at >= end_s:
                        ended.add(index)
                        if len(ended) == len(streams):
                            break
                    continue
                if index not in shift:
                    shift[index] = _first_shift(packet, origin + base[index], tb)
                if packet.pts is not None:
                    packet.pts -= shift[index]
                if packet.dts is not None:
                    packet.dts -= shift[index]
                stop = at + (_seconds(packet.duration, tb) if packet.duration else 0)
                if index == video.index:
                    last_end = max(last_end or 0.0, stop)
                packet.stream = targets[index]
                out.mux(packet)
            if origin is None or last_end is None:
                raise KluisError("the time window holds no complete video frame")
    return {"from_s": round(origin, 3), "to_s": round(last_end, 3), "duration_s": round(last_end - origin, 3),
            "requested_from_s": start_s, "requested_to_s": end_s}


def _first_shift(packet, origin_abs_s: float, tb) -> int:
    """How far to move a stream's timestamps back: to the clip's origin, or further when the stream's first
    dts (reordered video) lies before it, so that nothing becomes negative."""
    origin_ts = int(round(origin_abs_s / float(tb)))
    earliest = min(t for t in (packet.pts, packet.dts) if t is not None)
    return min(origin_ts, earliest)


def cut_footage(footage, start_s: float, end_s: float, dst: BinaryIO) -> dict:
    """cut_clip over a recording the gate opened (appliance.footage.Footage), decrypting in memory only."""
    with footage.open() as reader:
        return cut_clip(reader, start_s, end_s, dst)
