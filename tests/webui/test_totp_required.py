"""[security] totp_required: the keeper makes a second factor required per role on /instellingen (audited);
a user of such a role without one is sent to set it up at the next login and can do nothing else until
then (CSRF still checked, a new session id once it is on); the keeper's way back for a lost phone still
works; real HTTPS server and real Chromium."""

from __future__ import annotations

import re

from appliance import audit, users
from tests.browser_helpers import OUTPUT, needs_chromium, press, shot
from tests.webui.conftest import NOW, PASSWORD
from tests.webui.test_feedback import flash_of

SHOTS = OUTPUT / "tweestaps-verplicht"
STEP = int(NOW.timestamp()) // 30  # the web box's clock stands still at NOW
HTML = {"Accept": "text/html"}  # as a browser asks for a page (others get 403, not a redirect)


async def _require(web, *roles_ticked: str):
    await web.as_role("keeper")
    form = {"security.totp_required": "1", **{f"security.totp_required.{r}": "1" for r in roles_ticked}}
    response = await web.post("/instellingen", form, csrf_from="/instellingen")
    assert response.status == 303, await response.text()


async def test_required_role_is_sent_to_set_up_and_can_do_nothing_else(web):
    assert web.box.settings.security.totp_required == []  # a kluis.toml without the setting requires nothing
    await _require(web, "privacy_officer")
    assert web.box.settings.security.totp_required == ["privacy_officer"]
    changes = [e["details"] for e in audit.entries(web.box.catalog, action="settings_change")]
    assert {"security.totp_required": {"old": [], "new": ["privacy_officer"]}} in changes
    assert 'id="totp_required_privacy_officer" name="security.totp_required.privacy_officer" value="1" checked' \
        in await web.page("/instellingen")

    # A role not ticked is not held up.
    await web.as_role("team_leader")
    assert (await web.client.get("/opnames", allow_redirects=False)).status == 200

    login = await web.login("fg")
    assert login.status == 303  # the password logs in ...
    old_cookie = web.client.session.cookie_jar.filter_cookies(web.client.make_url("/"))["kluis_session"].value
    for path in ("/", "/opnames", "/logboek", "/statistieken"):  # ... but every page leads to the set-up
        response = await web.client.get(path, allow_redirects=False, headers=HTML)
        assert (response.status, response.headers.get("Location")) == (303, "/account"), path
    account = await web.page("/account")
    assert "Voor uw rol is op deze kluis een tweede factor verplicht" in account
    assert "/account/wachtwoord" not in account  # nothing but the second factor on the page
    refused = await web.post("/logboek/controleer", {}, csrf_from="/account")
    assert refused.status == 403 and "stel die eerst in" in await refused.text()
    assert not [e for e in audit.entries(web.box.catalog, action="verify") if e["actor"] == "fg"]

    started = await web.post("/account/tweestaps", {}, csrf_from="/account")
    secret = re.search(r"secret=([A-Z2-7]+)", await started.text()).group(1)
    forged = await web.client.post("/account/tweestaps/bevestigen", allow_redirects=False,
                                   data={"csrf": "not-the-token", "code": users.totp_code(secret, STEP)})
    assert forged.status == 403 and users.get(web.box, "fg")["totp"] is False  # CSRF as everywhere
    ok = await web.post("/account/tweestaps/bevestigen", {"code": users.totp_code(secret, STEP)},
                        csrf_from="/account")
    assert (ok.status, ok.headers["Location"]) == (303, "/account")
    assert users.get(web.box, "fg")["totp"] is True
    new_cookie = web.client.session.cookie_jar.filter_cookies(web.client.make_url("/"))["kluis_session"].value
    assert new_cookie != old_cookie  # a new session id at the step up
    assert flash_of(await web.page("/account")) == ["De tweede factor staat aan."]
    assert (await web.client.get("/logboek", allow_redirects=False)).status == 200
    web.client.session.cookie_jar.update_cookies({"kluis_session": old_cookie}, web.client.make_url("/"))
    stale = await web.client.get("/logboek", allow_redirects=False, headers=HTML)
    assert stale.status == 303 and stale.headers["Location"].startswith("/login")  # the old id is gone

    # A lost phone: the keeper turns it off; at the next login fg sets up a new one, as before.
    await web.as_role("keeper")
    off = await web.post("/gebruikers/fg/tweestaps-uit", {}, csrf_from="/gebruikers")
    assert off.status == 303 and users.get(web.box, "fg")["totp"] is False
    assert (await web.login("fg")).status == 303
    assert (await web.client.get("/", allow_redirects=False, headers=HTML)).headers["Location"] == "/account"


async def test_keeper_who_ticks_their_own_role_sets_it_up_next(web):
    await _require(web, "keeper", "privacy_officer")
    response = await web.client.get("/gebruikers", allow_redirects=False, headers=HTML)
    assert (response.status, response.headers["Location"]) == (303, "/account")
    other = await web.client.get("/gebruikers", allow_redirects=False)  # not a browser asking for a page
    assert other.status == 403
    logout = await web.post("/logout", {}, csrf_from="/account")  # logging out is always allowed
    assert (logout.status, logout.headers["Location"]) == (303, "/login")


@needs_chromium
async def test_forced_set_up_in_chromium(web_box):
    from tests.browser_helpers import browser_page

    web_box.settings.security.totp_required = ["privacy_officer"]  # as a new box's kluis.toml has it
    async with browser_page(web_box, SHOTS) as page:
        await page.goto("/login")
        await page.get_by_label("Gebruikersnaam").fill("fg")
        await page.get_by_label("Wachtwoord").fill(PASSWORD)
        await press(page, "Inloggen", "**/account")
        await page.get_by_text("Voor uw rol is op deze kluis een tweede factor verplicht").wait_for()
        await shot(page, SHOTS, "01-verplicht")
        await page.goto("/opnames")
        await page.wait_for_url("**/account")  # nothing else until it is set up
        await press(page, "Instellen", "**/account/tweestaps")
        secret = (await page.locator("code.details").inner_text()).strip()
        await page.get_by_label("Code uit uw authenticator-app").fill(users.totp_code(secret, STEP))
        await shot(page, SHOTS, "02-code")
        await press(page, "Aanzetten", "**/account")
        await page.get_by_text("De tweede factor staat aan.").wait_for()
        await page.goto("/opnames")
        assert page.url.endswith("/opnames")
        assert "Opnames" in await page.inner_text("main")
    assert users.get(web_box, "fg")["totp"] is True
