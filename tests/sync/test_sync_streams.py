"""The archive keeps a stream slot per upload only while a stream of it is open (no slot per upload ever
seen): box and archive in one process, real HTTPS over loopback."""

from __future__ import annotations

from appliance import retention
from appliance.box import Box
from sync import client
from sync.archive import server
from sync.archive.store import init_archive

from sync_helpers import ARCHIVE_PASSWORD, import_random


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
