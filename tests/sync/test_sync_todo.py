"""A failing archive sync reaches the keeper's "Te doen" on the overview: a box enrolled at a real archive that
then stops answering, a held recording that a real sync pass cannot send, the web UI over real HTTPS."""

from __future__ import annotations

import re

from appliance import outbox, retention, roles, users
from appliance.box import Box
from sync import client
from webui.site import create_app

from tests.conftest import PASSWORD
from tests.web_helpers import https_client, log_in
from sync_helpers import import_random


def sync_task(html: str) -> str | None:
    block = html[html.index('id="te-doen"'):]
    block = block[:block.index("</section>")]
    match = re.search(r'<li id="todo-sync_failing".*?</ul>', block, re.DOTALL)
    return match.group(0) if match else None


async def test_failing_sync_is_a_task_for_the_keeper(enrolled, tmp_path):
    data, archive = enrolled
    with Box(data) as box:
        users.add_user(box, "admin", "fg", roles.PRIVACY_OFFICER, PASSWORD, identity=box.unlock("admin", PASSWORD))
        async with https_client(box, create_app(box)) as web:
            assert (await log_in(web, "admin")).status == 303
            assert sync_task(await (await web.get("/")).text()) is None  # enrolled, nothing wrong yet

            archive.stop()  # the archive goes away
            # nothing to send yet: the pass itself fails (checkpoint, requisitions), and that is the task
            first = await client.Syncer(box, retry_base_s=0.01, pass_retry_s=0.01).run(ignore_window=True)
            assert first.errors and outbox.status(box)["counts"]["failing"] == 0
            item = sync_task(await (await web.get("/")).text())
            assert item and f'<strong class="count">{len(first.errors)}</strong>' in item
            assert "send_checkpoint: archive unreachable" in item

            held, _ = import_random(box, tmp_path, 100_000)
            retention.add_hold(box, held, "police_report", "PV-2026-101", actor="admin")
            result = await client.Syncer(box, retry_base_s=0.01, pass_retry_s=0.01).run(ignore_window=True)
            assert not result.ok
            assert outbox.status(box)["counts"]["failing"] == 1

            html = await (await web.get("/")).text()
            item = sync_task(html)
            assert item, "the keeper is told that sync fails"
            assert "Synchronisatie met het archief mislukt" in item and 'href="/instellingen#sync"' in item
            assert '<strong class="count">1</strong>' in item
            assert held in item and "archive unreachable" in item  # which recording, and why

            assert (await log_in(web, "fg")).status == 303  # not the privacy officer's to fix
            assert sync_task(await (await web.get("/")).text()) is None
