"""Whether the audit signing key is sealed to the TPM2, as the keeper reads it on the settings page and in
`kluis status`: a real `kluis serve` given the key as systemd gives it to kluis.service on the appliance
($CREDENTIALS_DIRECTORY), the plaintext gone; and a box without a TPM2, where it says the key is not sealed."""

from __future__ import annotations

import json


from appliance import keys
from appliance.box import SIGNING_KEY
from tests.conftest import PASSWORD
from tests.setup.conftest import client, csrf_of

SEALED = "De ondertekeningssleutel van het logboek is verzegeld in de TPM2"
NOT_SEALED = "De ondertekeningssleutel van het logboek is niet verzegeld in een TPM2"


async def settings_page(box) -> str:
    async with client() as browser:
        page = await (await browser.get(box.url + "/login")).text()
        response = await browser.post(box.url + "/login", data={
            "csrf": csrf_of(page), "username": "admin", "password": PASSWORD}, allow_redirects=False)
        assert response.status == 303, await response.text()
        return await (await browser.get(box.url + "/instellingen")).text()


async def test_the_keeper_reads_whether_the_signing_key_is_sealed(box_dir, tmp_path, kluis, serve):
    data = box_dir[0]
    from tests.dock.dock_helpers import configure_box  # discovery on loopback only

    configure_box(data, ["127.0.0.1"])
    assert json.loads(kluis("status", "--data", data, "--json").stdout)["signing_key_sealed"] is False
    box = serve(data)
    box.find(r"Kluis is serving")
    page = await settings_page(box)
    assert NOT_SEALED in page and SEALED not in page
    assert box.stop() == 0

    # What seal-signing-key and systemd leave: the sealed copy, no file, the key in the credentials.
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / keys.SIGNING_CREDENTIAL).write_bytes((data / SIGNING_KEY).read_bytes())
    keys.sealed_path(data / SIGNING_KEY).write_bytes(b"sealed to a TPM2 this test does not have")
    (data / SIGNING_KEY).unlink()
    box = serve(data, env={"CREDENTIALS_DIRECTORY": str(creds)})
    box.find(r"Kluis is serving")
    page = await settings_page(box)
    assert SEALED in page and NOT_SEALED not in page
    assert box.stop() == 0  # a clean stop signs a checkpoint: with the key from the credentials
    status = kluis("status", "--data", data, env={"CREDENTIALS_DIRECTORY": str(creds)}).stdout.decode()
    assert "audit signing key: sealed to the TPM2" in status


UNAVAILABLE = "maar de TPM2 gaf hem niet vrij (the TPM2 refused to unseal it: TPM_RC_POLICY_FAIL)"


async def test_a_sealed_key_that_did_not_unseal_is_a_stated_state_not_a_dead_service(box_dir, tmp_path, kluis, serve):
    # What kluis-signing-key.service leaves when the TPM2 refuses (a cleared TPM2, another board, a changed
    # Secure Boot state): the credential says why. Kluis serves all the same, says so once in its log, on
    # the settings page and in `kluis status`, and keeps recording (unsigned) audit entries.
    from tests.dock.dock_helpers import configure_box

    data = box_dir[0]
    configure_box(data, ["127.0.0.1"])
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / keys.SIGNING_CREDENTIAL).write_bytes(b"unavailable: the TPM2 refused to unseal it: TPM_RC_POLICY_FAIL\n")
    keys.sealed_path(data / SIGNING_KEY).write_bytes(b"sealed to a TPM2 this test does not have")
    (data / SIGNING_KEY).unlink()
    box = serve(data, env={"CREDENTIALS_DIRECTORY": str(creds)})
    box.find(r"Kluis is serving")
    box.find(r"ERROR.*signing key sealed to the TPM2 did not unseal \(the TPM2 refused.*\)")
    page = await settings_page(box)  # the login is an audit entry: written, unsigned
    assert UNAVAILABLE in page and SEALED + ":" not in page
    assert box.stop() == 0
    output = box.output()
    assert output.count("did not unseal") == 1 and "Traceback" not in output, output
    status = kluis("status", "--data", data, env={"CREDENTIALS_DIRECTORY": str(creds)}).stdout.decode()
    assert "audit signing key: sealed to the TPM2 but NOT unsealed (the TPM2 refused" in status
    info = json.loads(kluis("status", "--data", data, "--json", env={"CREDENTIALS_DIRECTORY": str(creds)}).stdout)
    assert info["signing_key_unavailable"] == "the TPM2 refused to unseal it: TPM_RC_POLICY_FAIL"
    import sqlite3

    db = sqlite3.connect(data / "catalog.db")
    last = db.execute("SELECT action, signature FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
    db.close()
    assert last[1] is None  # recorded, waiting for the key to sign it
