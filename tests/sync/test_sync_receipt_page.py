"""The archive's receipt reaches the recording's page: a held recording is sent by a real `kluis sync run`
to a real archive, then a privacy officer opens its page in the web UI (HTTPS, real server)."""

from __future__ import annotations

import re

from appliance import retention, roles, users
from appliance.box import Box
from webui.site import create_app

from tests.conftest import PASSWORD
from tests.web_helpers import https_client, log_in
from sync_helpers import import_random


async def test_receipt_is_shown_on_the_recording_page(enrolled, tmp_path, kluis):
    data, _archive = enrolled
    with Box(data) as box:
        held, _ = import_random(box, tmp_path, 300_000)
        retention.add_hold(box, held, "police_report", "PV-2026-077", actor="admin")
        users.add_user(box, "admin", "fg", roles.PRIVACY_OFFICER, PASSWORD, identity=box.unlock("admin", PASSWORD))
        sha = box.catalog.get_recording(held)["sha256"]
    kluis("sync", "run", "--data", data)

    with Box(data) as box:
        async with https_client(box, create_app(box)) as client:
            assert (await log_in(client, "fg")).status == 303
            page = await (await client.get(f"/opnames/{held}")).text()
    section = page[page.index('id="archief"'):]
    assert "Centraal archief" in page
    assert sha in section and "ondertekend ontvangstbewijs" in section
    signature = re.search(r'<code class="wrap">([0-9a-f]{128})</code>', section)
    assert signature, "the archive's Ed25519 signature is shown"
