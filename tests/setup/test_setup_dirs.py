"""The wizard's directory rules: a foreign non-empty directory is refused; what an interrupted setup left is
cleared (the certificate kept); SIGTERM before the commit leaves no box and frees the lock; an idle claim
lapses so that another browser can start over."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from appliance import tls
from appliance.errors import KluisError
from tests.conftest import run_kluis
from tests.setup.conftest import csrf_of
from appliance import provisioning
from sync.client import enroll
from webui.setup_server import create_setup_app

PASSWORD = "een goed wachtwoord voor de kluis"


def test_a_foreign_directory_is_refused_in_one_line(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "notes.txt").write_text("not a box")
    result = run_kluis("serve", "--data", data, "--listen", "127.0.0.1:0", check=False, timeout=60)
    err = result.stderr.decode() if isinstance(result.stderr, bytes) else result.stderr
    assert result.returncode == 1 and "Traceback" not in err
    assert "is not a Kluis data directory and not empty (notes.txt)" in err.strip().splitlines()[-1]
    assert sorted(p.name for p in data.iterdir()) == ["notes.txt"]  # nothing made there


def test_leftovers_of_an_interrupted_setup_are_cleared_and_the_certificate_kept(tmp_path):
    data = tmp_path / "data"
    wizard = provisioning.FirstBoot(data)
    wizard.prepare()
    fingerprint = tls.fingerprint(data)
    wizard.release()
    # A power cut in the middle of the commit: some of the box moved, the catalog not.
    (data / "kluis.toml").write_text("[box]\n")
    (data / "keys").mkdir()
    (data / "keys" / "signing.key").write_bytes(b"x" * 32)
    (data / "blobs").mkdir()
    (data / ".kluis-setup" / "box").mkdir(parents=True)
    (data / ".kluis-setup" / "box" / "catalog.db").write_bytes(b"half")
    again = provisioning.FirstBoot(data)
    again.prepare()
    try:
        assert sorted(p.name for p in data.iterdir()) == [".kluis-setup", "tls"]
        assert not again.staging.exists() and tls.fingerprint(data) == fingerprint
        # Two wizards on one directory: the second is refused by the lock.
        with pytest.raises(KluisError, match="being set up by another kluis serve"):
            provisioning.FirstBoot(data).prepare()
    finally:
        again.release()

    (data / "blobs" / "ab").mkdir(parents=True)
    (data / "blobs" / "ab" / "abcdef").write_bytes(b"ciphertext")  # recordings without a catalog: not ours to wipe
    with pytest.raises(KluisError, match="holds recordings but there is no catalog"):
        provisioning.FirstBoot(data).prepare()


def test_sigterm_before_the_commit_leaves_no_box_and_frees_the_directory(serve, tmp_path):
    data = tmp_path / "data"
    first = serve(data)
    first.find(r"setup wizard is at")
    assert first.stop() == 0
    assert any("setup stopped before the box was made" in line for line in first.lines)
    assert not (data / "catalog.db").exists()
    again = provisioning.FirstBoot(data)  # the lock was released: a new start may serve the wizard again
    again.prepare()
    again.release()


async def test_an_idle_claim_lapses_and_the_next_browser_starts_afresh(tmp_path):
    data = tmp_path / "data"
    wizard = provisioning.FirstBoot(data, kdf_profile="interactive")
    wizard.prepare()
    server = TestServer(create_setup_app(wizard, enroll))
    await server.start_server(ssl=tls.server_context(data))
    clients = [TestClient(server, cookie_jar=aiohttp.CookieJar(unsafe=True),
                          connector=aiohttp.TCPConnector(ssl=False)) for _ in range(2)]
    first, second = clients
    try:
        page = await (await first.get("/setup")).text()
        response = await first.post("/setup/begin", allow_redirects=False, data={
            "csrf": csrf_of(page), "office": "Noord", "municipality": "Gemeente Noord", "keeper": "els", "password": PASSWORD,
            "password_again": PASSWORD})
        assert response.status == 303 and wizard.step == "recovery" and wizard.staging.exists()
        assert (await second.get("/setup")).status == 409
        # The English switch works in the wizard too (and leads back to it).
        response = await second.get("/taal/en?next=/opnames", allow_redirects=False)
        assert response.status == 303 and response.headers["Location"] == "/setup"
        assert "This box is being set up in another browser" in await (await second.get("/setup")).text()

        wizard.active -= provisioning.CLAIM_IDLE_S + 1  # half an hour without a request from the first browser
        response = await second.get("/setup")
        assert response.status == 200 and 'action="/setup/begin"' in await response.text()
        assert wizard.step == "start" and wizard.owner is None and not wizard.staging.exists()
        # The first browser's old claim is worth nothing now.
        response = await first.post("/setup/opgeschreven", data={"csrf": csrf_of(page)}, allow_redirects=False)
        assert response.status == 303 and wizard.step == "start"
    finally:
        for c in clients:
            await c.close()
        await server.close()
        wizard.release()
