"""kluis axis-sim: a simulated Axis W800 system controller uploads recordings to a content destination
(simulators/axis/). Test and demo equipment."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from pathlib import Path

import click

from simulators.axis import clips, protocol, recording
from simulators.axis.w800 import W800Simulator, setup_logging


@click.command("axis-sim")
@click.option("--connection-file", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The content destination's connection file (JSON, the Axis \"Connection API\").")
@click.option("--state", "state_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="The W800's state directory (system id, user UUIDs); reruns are the same system.")
@click.option("--recordings", type=click.IntRange(0), default=1, show_default=True,
              help="How many recordings to upload.")
@click.option("--clips-per-recording", type=click.IntRange(1), default=1, show_default=True,
              help="Generated clips per recording.")
@click.option("--seconds", type=click.IntRange(1, 3600), default=10, show_default=True,
              help="Length of each generated clip.")
@click.option("--clip-file", "clip_files", multiple=True, type=click.Path(exists=True, dir_okay=False,
              path_type=Path), help="Upload this file as a clip (repeatable: the clips of every recording, "
              "in order) instead of generated footage. Sent as it is.")
@click.option("--filler-mb", type=click.FloatRange(0), default=0,
              help="Pad each generated clip with this many MiB that players skip (benchmarks; streamed, "
                   "never held in memory or on disk).")
@click.option("--pre-buffer", type=click.FloatRange(0), default=2, show_default=True,
              help="Seconds recorded before the trigger (the first clip starts this much earlier).")
@click.option("--post-buffer", type=click.FloatRange(0), default=2, show_default=True,
              help="Seconds recorded after the trigger off.")
@click.option("--user-name", default="J. Jansen", show_default=True, help="The officer's name.")
@click.option("--user-id", default="1001", show_default=True, help="The officer's user supplied ID.")
@click.option("--serial", default="B8A44F000001", show_default=True, help="The camera's serial number.")
@click.option("--model", default=protocol.MODEL, show_default=True, help="The camera's model.")
@click.option("--device-name", help="The camera's nice name (default: its serial).")
@click.option("--system-name", default="W800 simulator", show_default=True,
              help="The system's nice name (first run only: kept in the state directory).")
@click.option("--bookmark", "bookmark_texts", multiple=True, help="Add a bookmark with this text (repeatable).")
@click.option("--bookmark-category", help="Add a category bookmark with this category name.")
@click.option("--bookmark-category-id",
              help="... and this category ID (default: the destination's for that name, else 1).")
@click.option("--gnss/--no-gnss", default=True, show_default=True,
              help="Upload a GNSS track (if the destination has StoreGNSSTrackRecording).")
@click.option("--concurrency", type=click.IntRange(1), default=1, show_default=True,
              help="Upload this many recordings at once.")
@click.option("--retry-budget", type=click.FloatRange(0), default=120, show_default=True,
              help="Seconds a request is retried on 503, 507 or a lost connection before giving up.")
@click.option("--max-backoff", type=click.FloatRange(0.2), default=5, show_default=True,
              help="Longest wait between retries, in seconds (the first is 0.2 s, then doubling).")
@click.option("--no-etag", is_flag=True,
              help="Send clips without an ETag header (skips the hashing pass). The box then computes no MD5 "
                   "and answers none, as the Axis spec allows; an Etag it does answer is still checked.")
@click.option("--no-checksum", is_flag=True,
              help="With --no-etag: do not hash clips at all and trust the reply's Etag (the W800's CPU out of "
                   "a benchmark of the box).")
@click.option("--key-after-clip", is_flag=True, help="PUT each key object after its clip, not before.")
@click.option("--cut-mid-clip", is_flag=True, help="Fault: drop the connection halfway through a clip, once.")
@click.option("--wrong-credentials", is_flag=True, help="Fault: authenticate with a wrong key.")
@click.option("--wrong-system-id", is_flag=True, help="Fault: claim another System ID than the saved one.")
@click.option("--malformed-metadata", is_flag=True,
              help="Fault: a TriggerOnTime that is no number and a value that is not percent-encoding.")
@click.option("--complete-before-clips", is_flag=True, help="Fault: set Status Complete before any clip.")
@click.option("-v", "--verbose", is_flag=True, help="Log every request on stderr.")
@click.pass_context
def axis_sim(ctx: click.Context, connection_file: Path, state_dir: Path, recordings: int,
             clips_per_recording: int, seconds: int, clip_files: tuple[Path, ...], filler_mb: float,
             pre_buffer: float, post_buffer: float, user_name: str, user_id: str, serial: str, model: str,
             device_name: str | None, system_name: str, bookmark_texts: tuple[str, ...],
             bookmark_category: str | None, bookmark_category_id: str | None, gnss: bool, concurrency: int,
             retry_budget: float, max_backoff: float, no_etag: bool, no_checksum: bool, key_after_clip: bool, cut_mid_clip: bool,
             wrong_credentials: bool, wrong_system_id: bool, malformed_metadata: bool,
             complete_before_clips: bool, verbose: bool) -> None:
    """Play an Axis W800 body-worn system controller: authenticate, register the user and the camera, and
    upload recordings (clips, keys, GNSS track, bookmarks) to a content destination. Prints one line per
    recording: its container, its clips, and ok or the error. Exits 1 if any recording failed."""
    setup_logging(verbose)
    connection = protocol.load_connection(connection_file)
    if clip_files:
        lengths = [clips.probe_seconds(path) or seconds for path in clip_files]
    else:
        lengths = [seconds] * clips_per_recording
    total = sum(max(1, round(s)) for s in lengths)
    if pre_buffer + post_buffer > total:
        raise click.UsageError(f"--pre-buffer + --post-buffer exceed the recording's length ({total} s)")
    bookmarks = [recording.Bookmark(text=text) for text in bookmark_texts]
    w800 = W800Simulator(
        connection, state_dir, system_name=system_name, retry_budget_s=retry_budget, max_backoff_s=max_backoff,
        send_etag=not no_etag, check_etag=not (no_etag and no_checksum), wrong_credentials=wrong_credentials, wrong_system_id=wrong_system_id,
        malformed_metadata=malformed_metadata, complete_before_clips=complete_before_clips,
        cut_mid_clip=cut_mid_clip, key_after_clip=key_after_clip)

    # The recordings of this run follow each other a minute apart and end now; but a camera records one
    # thing at a time, and a quick rerun would reuse container names: so they never start before the
    # camera's latest recording on this state directory ended (closer together, or from just after it).
    now = datetime.now(timezone.utc).replace(microsecond=0)
    busy_until = w800.camera_free_from(serial)
    for gap in (60, 1):
        first = now - recordings * timedelta(seconds=total) - (recordings - 1) * timedelta(seconds=gap)
        if busy_until is None or first > busy_until:
            break
    else:
        assert busy_until is not None  # the loop breaks when the camera is free
        first = busy_until + timedelta(seconds=1)
    starts = [first + i * timedelta(seconds=total + gap) for i in range(recordings)]

    async def one(start: datetime, user_uuid: str, gate: asyncio.Semaphore) -> recording.RecordingResult:
        async with gate:
            files: list[clips.ClipSource | Path]
            if clip_files:
                files = list(clip_files)
            else:
                files, begin = [], start
                for length in lengths:  # made just before the upload: only `concurrency` recordings in memory
                    files.append(await asyncio.to_thread(
                        clips.make_clip, length, begin, serial, w800.container_type, int(filler_mb * 1024 * 1024)))
                    begin += timedelta(seconds=round(length))
            result = await w800.upload_recording(
                user_uuid, serial, files, start + timedelta(seconds=round(pre_buffer)), pre_buffer, post_buffer,
                bookmarks=bookmarks, gnss=gnss, clip_seconds=lengths, model=model)
        outcome = "ok" if result.ok else f"FAILED: {result.error}"
        click.echo(f"{result.container}  clips={','.join(result.clips) or '-'}  retries={result.retries}  "
                   f"{outcome}")
        return result

    async def run() -> list[recording.RecordingResult]:
        try:
            await w800.connect()
            user_uuid = await w800.register_user(user_name, user_id or None)
            await w800.register_device(serial, model, device_name)
            if bookmark_category:  # the categories are known once connected
                category_id = bookmark_category_id or w800.category_id(bookmark_category) or "1"
                bookmarks.append(recording.Bookmark(category_id=category_id, category_name=bookmark_category))
            gate = asyncio.Semaphore(concurrency)
            return await asyncio.gather(*(one(start, user_uuid, gate) for start in starts))
        finally:
            await w800.close()

    results = asyncio.run(run())
    if not all(result.ok for result in results):
        ctx.exit(1)


COMMANDS = [axis_sim]
