"""/account: own password change (re-wraps the key slot) and the optional TOTP second factor."""

from __future__ import annotations

import base64
import re
from datetime import datetime, timezone

import pytest

from appliance import audit, users
from appliance.errors import WrongSecret
from tests.webui.test_feedback import flash_of
from tests.web_helpers import csrf_of
from tests.webui.conftest import PASSWORD


def test_totp_codes_match_rfc_6238():
    secret = base64.b32encode(b"12345678901234567890").decode()
    # RFC 6238 appendix B (SHA-1): T=59 -> 94287082, T=1111111109 -> 07081804 (last six digits here)
    assert users.totp_code(secret, 59 // 30) == "287082"
    assert users.totp_code(secret, 1111111109 // 30) == "081804"


async def test_second_factor_set_up_then_required_and_single_use(web):
    now = datetime(2026, 11, 22, 12, 0, 5, tzinfo=timezone.utc)
    web.box.clock = lambda: now
    await web.as_role("team_leader")
    page = await (await web.client.get("/account")).text()
    started = await (await web.client.post("/account/tweestaps", data={"csrf": csrf_of(page)})).text()
    secret = re.search(r"secret=([A-Z2-7]+)", started).group(1)
    step = int(now.timestamp()) // 30
    wrong = await web.client.post("/account/tweestaps/bevestigen", data={"csrf": csrf_of(page), "code": "000000"})
    assert wrong.status == 400 and users.get(web.box, "tl")["totp"] is False
    field = re.search(r'<input id="code"[^>]*>', await wrong.text()).group(0)  # said at the code's field
    assert 'aria-invalid="true" aria-describedby="code-error"' in field
    ok = await web.client.post("/account/tweestaps/bevestigen", allow_redirects=False,
                               data={"csrf": csrf_of(page), "code": users.totp_code(secret, step)})
    assert ok.status == 303 and users.get(web.box, "tl")["totp"] is True
    assert ok.headers["Location"] == "/account"  # confirmed once there, not by the address
    assert flash_of(await web.page("/account")) == ["De tweede factor staat aan."]
    assert flash_of(await web.page("/account")) == []

    assert (await web.login("tl")).status == 400, "the password alone no longer logs in"
    web.box.clock = lambda: datetime(2026, 11, 22, 12, 0, 40, tzinfo=timezone.utc)  # the next step
    token = csrf_of(await (await web.client.get("/login")).text())
    code = users.totp_code(secret, step + 1)
    response = await web.client.post("/login", allow_redirects=False, data={
        "username": "tl", "password": PASSWORD, "code": code, "csrf": token})
    assert response.status == 303
    web.client.session.cookie_jar.clear()
    token = csrf_of(await (await web.client.get("/login")).text())
    replay = await web.client.post("/login", data={"username": "tl", "password": PASSWORD, "code": code,
                                                   "csrf": token})
    assert replay.status == 400, "a code works once"
    # The keeper turns it off (a lost phone).
    await web.as_role("keeper")
    page = await (await web.client.get("/gebruikers")).text()
    off = await web.client.post("/gebruikers/tl/tweestaps-uit", data={"csrf": csrf_of(page)})
    assert flash_of(await off.text()) == ["Tweede factor van tl uitgezet."]  # followed to /gebruikers
    assert (await web.login("tl")).status == 303
    changes = [e["details"] for e in audit.entries(web.box.catalog, action="user_change")]
    assert {"user": "tl", "totp": True} in changes and {"user": "tl", "totp": False} in changes


async def test_own_password_change_rewraps_the_key_slot(web):
    await web.as_role("officer")
    page = await (await web.client.get("/account")).text()
    differ = await web.client.post("/account/wachtwoord", data={
        "csrf": csrf_of(page), "password": PASSWORD, "new_password": "a new long password",
        "new_password_again": "another long password"})
    assert differ.status == 400 and "verschillen" in await differ.text()
    wrong = await web.client.post("/account/wachtwoord", data={
        "csrf": csrf_of(page), "password": "not it at all", "new_password": "a new long password",
        "new_password_again": "a new long password"})
    assert wrong.status == 400
    done = await web.client.post("/account/wachtwoord", allow_redirects=False, data={
        "csrf": csrf_of(page), "password": PASSWORD, "new_password": "a new long password",
        "new_password_again": "a new long password"})
    assert done.status == 303 and done.headers["Location"] == "/login?ok=password"
    login_page = await (await web.client.get(done.headers["Location"])).text()
    assert '<p class="notice" role="status">Uw wachtwoord is gewijzigd. Log in met het nieuwe wachtwoord.</p>' in login_page
    assert bytes(web.box.unlock("jansen", "a new long password").public_key) == bytes(web.box.public_key)
    with pytest.raises(WrongSecret):
        web.box.unlock("jansen", PASSWORD)
