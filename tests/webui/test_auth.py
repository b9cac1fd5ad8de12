"""Login, cookies, CSRF, lock-out and idle logout over real HTTPS."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from appliance import audit, users
from tests.web_helpers import csrf_of
from tests.webui.conftest import PASSWORD


async def test_login_sets_strict_cookie_and_records_audit(web):
    response = await web.login("tl")
    assert response.status == 303 and response.headers["Location"] == "/"
    cookie = next(v for v in response.headers.getall("Set-Cookie") if v.startswith("kluis_session="))
    attributes = {part.strip().lower() for part in cookie.split(";")}
    assert {"secure", "httponly", "samesite=strict", "path=/"} <= attributes
    assert "/opnames" in await (await web.client.get("/")).text()
    last = audit.entries(web.box.catalog, newest_first=True, limit=1)[0]
    assert (last["actor"], last["action"]) == ("tl", "login")


async def test_wrong_password_and_unknown_user_give_the_same_clear_message(web):
    wrong = await web.login("tl", "not the password")
    unknown = await web.login("nobody-here", "not the password")
    for response in (wrong, unknown):
        assert response.status == 400
        assert "Verkeerde gebruikersnaam, wachtwoord of code." in await response.text()
    actions = [(e["actor"], e["action"]) for e in audit.entries(web.box.catalog)]
    assert ("tl", "login_failed") in actions and ("nobody-here", "login_failed") in actions


async def test_login_without_csrf_token_is_refused(web):
    await web.client.get("/login")
    response = await web.client.post("/login", data={"username": "tl", "password": PASSWORD},
                                     allow_redirects=False)
    assert response.status == 403
    assert "kluis_session" not in {c.key for c in web.client.session.cookie_jar}


async def test_every_form_carries_a_token_and_a_post_without_it_is_refused(web, rec_ids):
    await web.as_role("team_leader")
    page = await (await web.client.get(f"/opnames/{rec_ids['noord']}")).text()
    forms = page.count("<form method=\"post\"")
    assert forms >= 3 and page.count('name="csrf"') == forms
    token = csrf_of(page)
    missing = await web.client.post(f"/opnames/{rec_ids['noord']}/reden", data={"reason": "threat"})
    forged = await web.client.post(f"/opnames/{rec_ids['noord']}/reden", data={"reason": "threat", "csrf": "x" * 43})
    assert missing.status == 403 and forged.status == 403
    assert web.box.catalog.get_recording(rec_ids["noord"])["reason"] is None
    ok = await web.client.post(f"/opnames/{rec_ids['noord']}/reden",
                               data={"reason": "threat", "warning_given": "yes", "csrf": token})
    assert ok.status == 200
    assert web.box.catalog.get_recording(rec_ids["noord"])["reason"] == "threat"
    entry = audit.entries(web.box.catalog, action="reason_set")[0]
    assert entry["recording_id"] == rec_ids["noord"] and entry["details"]["reason"] == "threat"


async def test_lock_out_after_repeated_failures_even_with_the_right_password(web):
    for _ in range(users.MAX_FAILURES - 1):
        assert (await web.login("jansen", "wrong password!")).status == 400
    locked = await web.login("jansen", "wrong password!")
    assert locked.status == 403 and "geblokkeerd" in await locked.text()
    right = await web.login("jansen", PASSWORD)
    assert right.status == 403, "the right password does not open a locked account"
    row = web.box.catalog.get_user("jansen")
    assert row["locked_until"] is not None
    # The keeper sees it and can unlock.
    await web.as_role("keeper")
    page = await (await web.client.get("/gebruikers")).text()
    assert "geblokkeerd tot" in page
    await web.client.post("/gebruikers/jansen/ontgrendelen", data={"csrf": csrf_of(page)})
    assert (await web.login("jansen", PASSWORD)).status == 303


async def test_lock_out_ends_after_its_time(web_box):
    now = [datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)]
    web_box.clock = lambda: now[0]
    for _ in range(users.MAX_FAILURES):
        try:
            users.login(web_box, "fg", "wrong password!")
        except Exception:
            pass
    try:
        users.login(web_box, "fg", PASSWORD)
        raise AssertionError("not locked")
    except users.LockedOut:
        pass
    now[0] += timedelta(minutes=users.LOCK_MINUTES + 1)
    assert users.login(web_box, "fg", PASSWORD).user["name"] == "fg"


async def test_idle_session_is_logged_out(web):
    from webui.app import SESSIONS

    now = [datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)]
    sessions = web.app[SESSIONS]
    sessions.clock = lambda: now[0]
    await web.as_role("privacy_officer")
    assert (await web.client.get("/opnames", allow_redirects=False)).status == 200
    now[0] += sessions.idle + timedelta(seconds=1)
    response = await web.client.get("/opnames", allow_redirects=False, headers={"Accept": "text/html"})
    assert response.status == 303 and "expired=1" in response.headers["Location"]
    assert len(sessions) == 0
    last = audit.entries(web.box.catalog, newest_first=True, limit=1)[0]
    assert (last["actor"], last["action"], last["details"]["reason"]) == ("fg", "logout", "idle")


async def test_logout_forgets_the_session(web):
    await web.as_role("team_leader")
    token = await web.csrf("/")
    response = await web.client.post("/logout", data={"csrf": token}, allow_redirects=False)
    assert response.status == 303
    again = await web.client.get("/opnames", allow_redirects=False, headers={"Accept": "text/html"})
    assert again.status == 303 and again.headers["Location"].startswith("/login")


async def test_login_redirect_stays_on_the_box(web):
    page = await web.client.get("/login?next=https://evil.example/")
    token = csrf_of(await page.text())
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        response = await web.client.post("/login", data={"username": "tl", "password": PASSWORD, "csrf": token,
                                                          "next": target}, allow_redirects=False)
        assert response.headers["Location"] == "/", target
        web.client.session.cookie_jar.clear()
        token = csrf_of(await (await web.client.get("/login")).text())


async def test_language_switch_to_english(web):
    await web.client.get("/taal/en?next=/login")
    page = await (await web.client.get("/login")).text()
    assert "User name" in page and 'lang="en"' in page
    await web.client.get("/taal/nl")
    assert "Gebruikersnaam" in await (await web.client.get("/login")).text()


async def test_error_pages_share_the_style(web):
    await web.as_role("team_leader")
    missing = await web.client.get("/bestaat-niet")
    assert missing.status == 404 and "kluis.css" in await missing.text() and "Niet gevonden" in await missing.text()
    refused = await web.client.get("/gebruikers")
    assert refused.status == 403 and "Geen toegang" in await refused.text()
