"""The settings page: the keeper sets who gets alerts (addresses per role), the mail server and the log
collector, each change audited, and sends a test mail through the real mail server."""

from __future__ import annotations

import tomllib

from appliance import audit, config
from appliance.box import Box
from tests.alerts.conftest import KEEPER, PRIVACY, SMTP_PASSWORD, SMTP_USER
from tests.alerts.servers import HOST
from tests.conftest import add_role_users
from tests.web_helpers import csrf_of, https_client, log_in
from webui.site import create_app


async def test_the_keeper_sets_alerts_up_and_sends_a_test(box_dir, smtp, certs, tmp_path, monkeypatch):
    monkeypatch.setenv("KLUIS_TIMESYNC", "yes")
    data, _ = box_dir
    add_role_users(data, "fg")
    secret = tmp_path / "smtp-password"
    secret.write_text(SMTP_PASSWORD + "\n")
    with Box(data) as box:
        app = create_app(box)
        async with https_client(box, app) as client:
            assert (await log_in(client, "admin")).status == 303
            page = await (await client.get("/instellingen")).text()
            assert "Meldingen per e-mail" in page and "Testmail versturen" in page and "Geen openstaande meldingen." in page
            form = {"csrf": csrf_of(page), "alerts.smtp_server": HOST, "alerts.smtp_port": str(smtp.port),
                    "alerts.sender": "kluis-noord@gemeente.test", "alerts.smtp_user": SMTP_USER,
                    "alerts.smtp_password_file": str(secret), "alerts.smtp_ca_file": str(certs.ca),
                    "alerts.keeper": f"{KEEPER}, tweede@gemeente.test", "alerts.privacy_officer": PRIVACY,
                    "alerts.digest": "", "syslog.server": ""}
            saved = await client.post("/instellingen", data=form, allow_redirects=False)
            assert saved.status == 303
            toml = tomllib.loads((data / config.FILENAME).read_text())
            assert toml["alerts"]["keeper"] == [KEEPER, "tweede@gemeente.test"]
            assert box.settings.alerts.privacy_officer == [PRIVACY]  # the running box has it at once
            change = audit.entries(box.catalog, action="settings_change")[-1]
            assert change["details"]["alerts.keeper"] == {"old": [], "new": [KEEPER, "tweede@gemeente.test"]}
            page = await (await client.get("/instellingen")).text()
            assert f'value="{KEEPER}, tweede@gemeente.test"' in page

            bad = await client.post("/instellingen", data={"csrf": csrf_of(page), "alerts.keeper": "geen adres"})
            assert bad.status == 400 and "E-mailadressen gescheiden door komma" in await bad.text()
            assert box.settings.alerts.keeper == [KEEPER, "tweede@gemeente.test"]

            sent = await client.post("/instellingen/testmelding", data={"csrf": csrf_of(page)}, allow_redirects=False)
            assert sent.status == 303
            shown = await (await client.get("/instellingen")).text()
            assert "Testmail: verstuurd." in shown and "Testbericht aan de logserver: niet ingesteld." in shown
            assert len(smtp.inbox) == 1
            assert sorted(smtp.inbox[0].envelope_to) == sorted([KEEPER, "tweede@gemeente.test", PRIVACY])
            assert audit.entries(box.catalog, action="alerts_test")[-1]["actor"] == "admin"

            assert (await log_in(client, "fg")).status == 303  # not the privacy officer's to test
            refused = await client.post("/instellingen/testmelding", data={"csrf": csrf_of(
                await (await client.get("/")).text())}, allow_redirects=False)
            assert refused.status == 403
            assert len(smtp.inbox) == 1
