"""Instellingen, "Back-ups": the keeper sets the network backup target (address, the server's host key, the
time), makes the box's login key and tests the connection, against a real OpenSSH server (sshd, sshfs);
bad values get Dutch field errors and change nothing; every change and test is on record."""

from __future__ import annotations

import getpass
import html
import re
import tomllib

import pytest

from appliance import audit, config
from tests.backup.sshd_server import keygen, real_parts, run_sshd
from tests.web_helpers import csrf_of


@pytest.fixture
def nas(tmp_path):
    """A real OpenSSH server: the municipality's NAS."""
    real_parts()
    yield from run_sshd(tmp_path)


async def _page(web) -> str:
    return html.unescape(await (await web.client.get("/instellingen")).text())


async def test_the_keeper_sets_the_network_target_makes_the_key_and_tests_the_connection(web, nas, tmp_path):
    port, host_pub, authorized, remote = nas
    await web.as_role("keeper")
    page = await _page(web)
    assert "Back-ups" in page and "Netwerkdoel" in page and "Verbinding testen" in page
    assert "De Kluis heeft nog geen inlogsleutel voor een netwerkdoel." in page

    response = await web.client.post("/instellingen/backup-sleutel", data={"csrf": csrf_of(page)},
                                     allow_redirects=False)
    assert response.status == 303
    page = await _page(web)
    public = re.search(r'<pre id="backup-key">(ssh-ed25519 [^<]+)</pre>', page).group(1)
    authorized.write_text(public + "\n")

    before = (web.box.data_dir / config.FILENAME).read_text()
    bad = {"csrf": csrf_of(page), "backup.network": "ftp://nas.gemeente.local/kluis",
           "backup.network_host_key": "geen sleutel", "backup.network_time": "25:00", "backup.keep": "0"}
    response = await web.client.post("/instellingen", data=bad)
    text = html.unescape(await response.text())
    assert response.status == 400
    assert "Een adres zoals sftp://kluis@nas.gemeente.local/kluis (gebruiker, server, map), of leeg." in text
    assert "De sleutel van de server zoals ssh-keyscan die toont" in text and "Een tijd zoals 03:30." in text
    assert 'aria-invalid="true" aria-describedby="backup.keep-error' in text
    assert (web.box.data_dir / config.FILENAME).read_text() == before

    url = f"sftp://{getpass.getuser()}@127.0.0.1:{port}{remote}"
    good = {"csrf": csrf_of(page), "backup.network": url, "backup.network_host_key": f"127.0.0.1 {host_pub}",
            "backup.network_time": "02:15"}
    response = await web.client.post("/instellingen", data=good, allow_redirects=False)
    assert response.status == 303
    saved = tomllib.loads((web.box.data_dir / config.FILENAME).read_text())["backup"]
    assert saved["network"] == url and saved["network_time"] == "02:15"
    assert saved["network_host_key"] == " ".join(host_pub.split()[:2])  # the host name and comment left off
    change = audit.entries(web.box.catalog, action="settings_change")[-1]
    assert change["actor"] == "admin" and change["details"]["backup.network"] == {"old": "", "new": url}

    page = await _page(web)
    response = await web.client.post("/instellingen/backup-test", data={"csrf": csrf_of(page)},
                                     allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/instellingen#backup"
    assert "Verbinding met het netwerkdoel voor back-ups: werkt." in await _page(web)
    assert list(remote.iterdir()) == []  # its test file removed again
    tested = audit.entries(web.box.catalog, action="backup_test")[-1]
    assert tested["details"] == {"target": url, "result": "ok"}

    # Another server's key pinned: the test says it failed and why, and that is on record too.
    page = await _page(web)
    await web.client.post("/instellingen", data={"csrf": csrf_of(page),
                                                 "backup.network_host_key": keygen(tmp_path / "other")},
                          allow_redirects=False)
    page = await _page(web)
    await web.client.post("/instellingen/backup-test", data={"csrf": csrf_of(page)}, allow_redirects=False)
    page = await _page(web)
    assert "Verbinding met het netwerkdoel voor back-ups: mislukt: " in page and "could not connect" in page
    assert audit.entries(web.box.catalog, action="backup_test")[-1]["details"]["result"] != "ok"


async def test_only_the_keeper_may_test_the_backup_connection(web):
    await web.as_role("team_leader")
    page = await (await web.client.get("/")).text()
    response = await web.client.post("/instellingen/backup-test", data={"csrf": csrf_of(page)},
                                     allow_redirects=False)
    assert response.status == 403
    assert audit.entries(web.box.catalog, action="backup_test") == []
