"""Interrupted uploads: the link cut mid-part, the archive killed (SIGKILL) and restarted mid-upload.
The transfer resumes from the offset the archive committed, one whole copy arrives, and the bytes sent
twice stay under two parts per interruption."""

from __future__ import annotations

import asyncio
import hashlib
import time

from appliance import retention
from appliance.box import Box
from sync.archive.store import Archive
from sync.client import Syncer
from sync_helpers import CuttingProxy, import_random

CHUNK = 1024 * 1024
SIZE = 8 * 1024 * 1024 + 12345


def _one_copy(archive_dir, sha: str) -> None:
    with Archive(archive_dir) as archive:
        rows = archive.list_recordings()
    assert [r["sha256"] for r in rows] == [sha]
    blobs = list((archive_dir / "blobs").glob("*/*"))
    assert [b.name for b in blobs] == [sha]
    assert hashlib.sha256(blobs[0].read_bytes()).hexdigest() == sha
    assert not list((archive_dir / "tmp").iterdir())  # no half copy left behind


def _held(data, tmp_path) -> tuple[str, str, int]:
    with Box(data) as box:
        rid, _ = import_random(box, tmp_path, SIZE)
        retention.add_hold(box, rid, "police_report", "PV-1", actor="admin")
        row = box.catalog.get_recording(rid)
        return rid, row["sha256"], row["blob_size"]


async def test_link_cut_twice_mid_upload_resumes(enrolled, tmp_path):
    data, archive = enrolled
    rid, sha, size = _held(data, tmp_path)
    # Cut 2.5 parts into the upload, then again 3.3 parts later (both mid-part).
    proxy = CuttingProxy(archive.port, cuts=[int(2.5 * CHUNK), int(3.3 * CHUNK)])
    await proxy.start()
    try:
        with Box(data) as box:
            box.settings.sync.archive_url = f"https://127.0.0.1:{proxy.port}"
            result = await Syncer(box, chunk_size=CHUNK, retry_base_s=0.05, pass_retry_s=30).run()
            state = box.catalog.db.execute("SELECT state, attempts FROM sync_outbox").fetchone()
    finally:
        await proxy.close()
    assert proxy.cuts == 2
    assert result.sent == [rid] and result.ok, result.as_dict()
    assert state == ("sent", 1)
    _one_copy(archive.data_dir, sha)
    resent = result.bytes_sent - size
    wire = proxy.forwarded - size  # on the wire: re-sent bytes plus TLS, headers and the other requests
    print(f"link cut x{proxy.cuts}: {resent} part bytes re-sent ({resent / CHUNK:.2f} parts of {CHUNK}); "
          f"{wire} bytes on the wire beyond the container")
    assert 0 < resent < 2 * CHUNK * proxy.cuts
    assert 0 < wire < 2 * CHUNK * proxy.cuts  # an upper bound on what was really sent twice


async def test_archive_killed_and_restarted_mid_upload_resumes(enrolled, tmp_path):
    data, archive = enrolled
    rid, sha, size = _held(data, tmp_path)
    with Box(data) as box:
        # 2 MiB/s keeps the upload going for about 4 s, long enough to kill the archive in the middle.
        syncer = Syncer(box, chunk_size=CHUNK, retry_base_s=0.2, pass_retry_s=60, bandwidth_kbps=2048)
        task = asyncio.create_task(syncer.run())
        part = archive.data_dir / "tmp"
        for _ in range(200):
            await asyncio.sleep(0.05)
            parts = list(part.glob("*.part"))
            if parts and parts[0].stat().st_size >= 2 * CHUNK:
                break
        else:
            raise AssertionError("upload did not get going")
        archive.kill()
        committed = parts[0].stat().st_size
        await asyncio.sleep(1.0)
        assert not task.done()  # the box keeps retrying, with backoff
        archive.start()
        result = await asyncio.wait_for(task, 60)
    assert 2 * CHUNK <= committed < size
    assert result.sent == [rid] and result.ok, result.as_dict()
    _one_copy(archive.data_dir, sha)
    resent = result.bytes_sent - size
    print(f"archive killed at {committed} committed bytes: {resent} bytes re-sent ({resent / CHUNK:.2f} parts)")
    assert 0 <= resent < 2 * CHUNK


async def test_a_pass_cancelled_mid_stream_stops_at_once_and_the_next_one_finishes(enrolled, tmp_path):
    """The service stops while a recording streams (on the sending thread's blocking socket): the pass
    ends within moments, nothing is left sending, and the next pass resumes and completes the upload."""
    data, archive = enrolled
    rid, sha, size = _held(data, tmp_path)
    with Box(data) as box:
        task = asyncio.create_task(Syncer(box, chunk_size=CHUNK, bandwidth_kbps=1024).run())
        part = archive.data_dir / "tmp"
        for _ in range(200):
            await asyncio.sleep(0.05)
            parts = list(part.glob("*.part"))
            if parts and parts[0].stat().st_size >= CHUNK:
                break
        else:
            raise AssertionError("upload did not get going")
        started = time.monotonic()
        task.cancel()
        try:
            await asyncio.wait_for(task, 10)
        except asyncio.CancelledError:
            pass
        assert time.monotonic() - started < 3
        await asyncio.sleep(0.3)
        stopped_at = parts[0].stat().st_size
        await asyncio.sleep(0.7)
        assert parts[0].stat().st_size == stopped_at < size  # nothing is sending any more
        result = await Syncer(box, chunk_size=CHUNK).run()
    assert result.sent == [rid] and result.ok, result.as_dict()
    _one_copy(archive.data_dir, sha)
