"""Streams of an upload on the archive: the slot kept per upload only while a stream of it is open, and
the progress feed by which a streaming box keeps its window (at most a chunk beyond what the archive
wrote in flight). Box and archive in one process, real HTTPS over loopback."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from pathlib import Path

import jsonschema
import yaml
from aiohttp import web

from appliance import retention
from appliance.box import Box
from sync import client
from sync.archive import server
from sync.archive.store import init_archive
from sync.protocol import API

from sync_helpers import ARCHIVE_PASSWORD, CuttingProxy, import_random

DOC = Path(__file__).resolve().parents[2] / "docs" / "archive-openapi.yaml"


async def test_the_archive_forgets_an_upload_stream_once_it_ends(box_dir, tmp_path):
    data, _ = box_dir
    archive, _ = init_archive(tmp_path / "archive", ARCHIVE_PASSWORD, kdf_profile="interactive")
    runner, port = await server.start(archive, "127.0.0.1", 0)
    try:
        with Box(data) as box:
            await client.enroll(box, f"https://127.0.0.1:{port}", archive.new_token(), actor="admin")
            held = [import_random(box, tmp_path, 300_000 + n)[0] for n in range(3)]
            for recording_id in held:
                retention.add_hold(box, recording_id, "police_report", "PV-1", actor="admin")
            await client.Syncer(box).run(ignore_window=True)
            assert all(client.receipt_for(box, recording_id) for recording_id in held)
        assert runner.app[server.STREAMS] == {}
    finally:
        await runner.cleanup()
        archive.close()


WINDOW = 1024 * 1024


@contextlib.asynccontextmanager
async def _behind_proxy(data, tmp_path, size: int, *middlewares):
    """An archive served in this process (its app with `middlewares` first) behind a CuttingProxy, and
    the box enrolled at it through the proxy with one held recording of `size` bytes:
    yields (app, box, proxy, recording id)."""
    archive, _ = init_archive(tmp_path / "archive", ARCHIVE_PASSWORD, kdf_profile="interactive")
    app = server.make_app(archive)
    app.middlewares[0:0] = middlewares
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server.tls.server_context(archive.data_dir))
    await site.start()
    proxy = CuttingProxy(runner.addresses[0][1])
    await proxy.start()
    try:
        with Box(data) as box:
            await client.enroll(box, f"https://127.0.0.1:{runner.addresses[0][1]}", archive.new_token())
            box.settings.sync.archive_url = f"https://127.0.0.1:{proxy.port}"
            rid, _ = import_random(box, tmp_path, size)
            retention.add_hold(box, rid, "police_report", "PV-1", actor="admin")
            yield app, box, proxy, rid
    finally:
        await proxy.close()
        await runner.cleanup()
        archive.close()


def _written(app: web.Application) -> int:
    """The offset the archive's running stream has written (0 before one runs)."""
    slots = list(app[server.STREAMS].values())
    return (slots[0].offset or 0) if slots else 0


async def _until_written(app: web.Application, n: int) -> None:
    while _written(app) < n:
        await asyncio.sleep(0.005)


async def test_a_stalled_link_holds_the_box_to_its_window(box_dir, tmp_path, monkeypatch):
    """The uplink stalls mid-stream: the box stops once it is a window ahead of what the archive wrote,
    instead of filling the socket buffers on the way (several MiB, all lost on a cut). It learns the
    archive's progress from the feed, one request per stream, not by asking again and again; every
    line of the feed is an UploadState as documented."""
    # Under the feed's step (a line per MiB): the box then waits on lines that only a pause in the
    # archive's writing can bring.
    window = 768 * 1024
    requests: Counter = Counter()
    feed_lines: list[dict] = []

    @web.middleware
    async def count(request, handler):
        requests[request.method, request.match_info.route.resource.canonical] += 1
        return await handler(request)

    heard = client.Acks._heard

    def spy(acks, answer):  # what the box read from the feed; it acts on it unchanged
        feed_lines.append(answer)
        heard(acks, answer)

    monkeypatch.setattr(client.Acks, "_heard", spy)
    async with _behind_proxy(box_dir[0], tmp_path, 24 * window, count) as (app, box, proxy, rid):
        syncer = client.Syncer(box, chunk_size=window)
        passing = asyncio.create_task(syncer.run(ignore_window=True))
        await _until_written(app, 4 * window)
        proxy.flowing.clear()
        await asyncio.sleep(1.0)
        written = _written(app)
        ahead = syncer.result.bytes_sent - written
        told = feed_lines[-1]["offset"]  # the feed tells a pause in writing, not only each MiB
        proxy.flowing.set()
        result = await passing
        assert result.ok and result.sent == [rid], result.as_dict()
        assert client.receipt_for(box, rid)
    print(f"stalled link: the box was {ahead} bytes ahead of the archive (window {window}); {requests}")
    assert 0 <= ahead <= window
    assert told == written
    assert requests["GET", f"{API}/uploads/{{sha256}}/progress"] >= 1
    assert requests["GET", f"{API}/uploads/{{sha256}}"] == 0  # no polling
    assert requests["PUT", f"{API}/uploads/{{sha256}}/stream"] == 1  # a stall is not a cut: no retry
    assert len(feed_lines) >= 8  # one per MiB written, at least
    offsets = [line["offset"] for line in feed_lines]
    assert offsets == sorted(offsets)
    doc = yaml.safe_load(DOC.read_text())
    schema = {**doc["components"]["schemas"]["UploadState"], "components": doc["components"]}
    for line in feed_lines:
        jsonschema.validate(line, schema)


async def test_a_box_waiting_on_its_window_notices_the_link_reset(box_dir, tmp_path):
    """The uplink stalls while the box waits for the archive to catch up, then drops with a reset: the
    archive stops where it was, so the window never opens again. The box notices its connection ended
    (not only when it next sends) and resumes from what the archive wrote, instead of waiting forever."""
    async with _behind_proxy(box_dir[0], tmp_path, 12 * WINDOW) as (app, box, proxy, rid):
        syncer = client.Syncer(box, chunk_size=WINDOW, retry_base_s=0.05)
        passing = asyncio.create_task(syncer.run(ignore_window=True))
        await _until_written(app, 4 * WINDOW)
        proxy.flowing.clear()
        await asyncio.sleep(0.5)  # the box is a window ahead now, and waits
        proxy.cut_now()
        proxy.flowing.set()
        result = await asyncio.wait_for(passing, 30)
        assert result.ok and result.sent == [rid], result.as_dict()
        assert client.receipt_for(box, rid)
        size = box.catalog.get_recording(rid)["blob_size"]
    assert proxy.cuts == 1
    assert 0 < result.bytes_sent - size < 2 * WINDOW  # resumed from the archive's offset
