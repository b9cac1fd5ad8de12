"""/onderhoud over real HTTPS: the keeper makes a backup to a directory and sees it listed; uploads a signed
update bundle (staged when good; refused and audited when not). Other roles may not open the page."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import aiohttp
import pytest
from nacl.signing import SigningKey

from appliance import audit, backup, update
from appliance.box import Box
from tests.conftest import add_role_users
from tests.web_helpers import csrf_of, https_client, log_in
from tests.webui.test_feedback import flash_of
from backup_helpers import store
from update_helpers import make_wheel, repo_files
from webui.site import create_app


@pytest.fixture
async def client(box_dir):
    add_role_users(box_dir[0], "fg")
    with Box(box_dir[0]) as box:
        async with https_client(box, create_app(box)) as client:
            yield client, box


async def login(client, name: str) -> str:
    """Log in as name; the CSRF token of the maintenance page (the keeper) or of the overview."""
    assert (await log_in(client, name)).status == 303
    return csrf_of(await (await client.get("/onderhoud" if name == "admin" else "/")).text())


async def test_the_keeper_makes_a_backup_and_sees_it(client, tmp_path):
    client, box = client
    now = datetime.now(timezone.utc)
    for days_ago in (0, 2, 4):
        store(box, tmp_path, now - timedelta(days=days_ago))
    token = await login(client, "admin")
    usb = tmp_path / "usb"
    usb.mkdir()
    response = await client.post("/onderhoud/backup", data={"csrf": token, "target": str(usb)})
    html = await response.text()
    assert response.status == 200 and f"Back-up gemaakt in {usb}." in html
    made, = backup.list_backups(usb)
    assert made.name in html and str(usb) in html
    assert backup.verify_backup(made).ok
    entry, = audit.entries(box.catalog, action="backup")
    assert entry["actor"] == "admin"
    # what a restore would bring back, said where the backups are shown
    assert "a restore brings back" not in html  # Dutch, not the English id
    assert f"naar {usb}: terugzetten brengt 5 dag(en) aan beelden terug (3 opnames)." in html
    assert "Dagen aan beelden</th>" in html

    assert flash_of(html) == [f"Back-up gemaakt in {usb}."]
    assert 'id="backup-failed"' not in html

    # A run that fails (the nightly job, a full disk) is said on the page until one succeeds again.
    full = tmp_path / "full"
    full.write_text("not a directory")
    with pytest.raises(backup.KluisError):
        backup.run(box, full)
    html = await (await client.get("/onderhoud")).text()
    assert "De laatste back-up, " in html and f"naar {full}, is mislukt." in html
    await client.post("/onderhoud/backup", data={"csrf": token, "target": str(usb)})
    assert 'id="backup-failed"' not in await (await client.get("/onderhoud")).text()
    for bad, says in ((str(tmp_path / "nope"), "Die map bestaat niet"), ("relative/dir", "volledige pad"),
                      (str(box.data_dir / "blobs"), "eigen gegevensmap")):
        response = await client.post("/onderhoud/backup", data={"csrf": token, "target": bad})
        assert response.status == 400 and says in await response.text()


async def test_an_uploaded_bundle_is_staged_only_when_signed_by_a_trusted_key(client, tmp_path, monkeypatch):
    client, box = client
    key = SigningKey.generate()
    trusted = tmp_path / "release-keys"
    trusted.write_text(bytes(key.verify_key).hex() + "\n")
    monkeypatch.setenv(update.TRUSTED_KEYS_ENV, str(trusted))
    wheel = make_wheel(tmp_path / "w", "0.2.0", repo_files())
    good, stranger = tmp_path / "good.kluis-update", tmp_path / "stranger.kluis-update"
    update.build(key, wheel, good)
    update.build(SigningKey.generate(), wheel, stranger)
    token = await login(client, "admin")

    form = aiohttp.FormData()
    form.add_field("csrf", token)
    form.add_field("bundle", stranger.read_bytes(), filename=stranger.name)
    response = await client.post("/onderhoud/update", data=form)
    html = await response.text()
    assert response.status == 400 and "Deze update is geweigerd; er is niets veranderd." in html
    # the verifier's English reason is folded under the technical details, not in the Dutch sentence
    assert re.search(r'<details class="technical"><summary>technische details</summary><span lang="en">.+</span>', html)
    assert not (box.data_dir / "update" / "staged.kluis-update").exists()

    form = aiohttp.FormData()
    form.add_field("csrf", token)
    form.add_field("bundle", good.read_bytes(), filename=good.name)
    response = await client.post("/onderhoud/update", data=form)
    html = await response.text()
    assert response.status == 200 and "Versie 0.2.0 wacht op installatie" in html
    assert flash_of(html) == ["De update is gecontroleerd en staat klaar om te worden geïnstalleerd."]
    assert flash_of(await (await client.get("/onderhoud")).text()) == []  # said once
    assert (box.data_dir / "update" / "staged.kluis-update").read_bytes() == good.read_bytes()
    assert [e["action"] for e in audit.entries(box.catalog) if e["action"].startswith("update")] == \
        ["update_refused", "update_staged"]
    assert list((box.data_dir / "update").iterdir()) == [box.data_dir / "update" / "staged.kluis-update"]


async def test_only_the_keeper_may_open_it(client):
    client, box = client
    await login(client, "fg")
    response = await client.get("/onderhoud")
    assert response.status == 403
