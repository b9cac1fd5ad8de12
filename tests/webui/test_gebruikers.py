"""Gebruikers: the keeper enrols users (their key slot wraps the box key), changes roles, resets passwords
and disables accounts; mistakes get a clear Dutch message; a changed user's sessions end."""

from __future__ import annotations

from appliance import audit
from tests.web_helpers import csrf_of


async def test_keeper_manages_users_through_the_page(web, rec_ids):
    await web.as_role("keeper")
    page = await (await web.client.get("/gebruikers")).text()
    token = csrf_of(page)
    short = await web.client.post("/gebruikers", data={"csrf": token, "name": "kim", "role": "team_leader",
                                                       "team": "Noord", "password": "short"})
    html = await short.text()
    assert short.status == 400 and "Een wachtwoord heeft minstens 10 tekens." in html
    assert 'value="kim"' in html and "short" not in html.split("<main")[1], "the form is kept, the password not"
    no_team = await web.client.post("/gebruikers", data={"csrf": token, "name": "kim", "role": "team_leader",
                                                         "password": "a long enough password"})
    assert no_team.status == 400 and "Een teamleider heeft een team nodig." in await no_team.text()
    added = await web.client.post("/gebruikers", allow_redirects=False, data={
        "csrf": token, "name": "kim", "role": "team_leader", "team": "Noord", "password": "a long enough password"})
    assert added.status == 303
    assert bytes(web.box.unlock("kim", "a long enough password").public_key) == bytes(web.box.public_key)

    # kim logs in and can view; then the keeper makes kim an auditor: kim's session ends and the key leaves
    assert (await web.login("kim", "a long enough password")).status == 303
    assert (await web.client.get(f"/opnames/{rec_ids['noord']}")).status == 200
    kim_cookies = web.client.session.cookie_jar.filter_cookies(web.client.make_url("/"))
    await web.as_role("keeper")
    token = csrf_of(await (await web.client.get("/gebruikers")).text())
    changed = await web.client.post("/gebruikers/kim/rol", allow_redirects=False,
                                    data={"csrf": token, "role": "auditor", "team": ""})
    assert changed.status == 303
    stale = await web.client.get("/opnames", allow_redirects=False, headers={"Accept": "text/html"},
                                 cookies={"kluis_session": kim_cookies["kluis_session"].value})
    assert stale.status == 303 and stale.headers["Location"].startswith("/login")
    assert (await web.login("kim", "a long enough password")).status == 303
    assert (await web.client.get("/opnames")).status == 403

    # Back to team leader needs a new password (only it can wrap the key again).
    await web.as_role("keeper")
    token = csrf_of(await (await web.client.get("/gebruikers")).text())
    refused = await web.client.post("/gebruikers/kim/rol", data={"csrf": token, "role": "team_leader", "team": "Noord"})
    assert refused.status == 400
    reset = await web.client.post("/gebruikers/kim/wachtwoord", allow_redirects=False, data={
        "csrf": token, "password": "a second long password", "role": "team_leader"})
    assert reset.status == 303
    await web.client.post("/gebruikers/kim/rol", data={"csrf": token, "role": "team_leader", "team": "Noord"})
    assert (await web.login("kim", "a second long password")).status == 303
    assert (await web.client.get(f"/opnames/{rec_ids['noord']}")).status == 200

    # Disabled: no login at all.
    await web.as_role("keeper")
    token = csrf_of(await (await web.client.get("/gebruikers")).text())
    await web.client.post("/gebruikers/kim/uitschakelen", data={"csrf": token, "disabled": "1"})
    assert (await web.login("kim", "a second long password")).status == 400
    await web.as_role("keeper")  # the keeper cannot lock themselves out
    token = csrf_of(await (await web.client.get("/gebruikers")).text())
    mine = await web.client.post("/gebruikers/admin/uitschakelen", data={"csrf": token, "disabled": "1"})
    assert mine.status == 400 and "U kunt uzelf niet uitschakelen." in await mine.text()
    actions = [e["action"] for e in audit.entries(web.box.catalog) if (e["details"] or {}).get("user") == "kim"]
    assert actions[0] == "user_add" and "role_change" in actions and "key_slot_change" in actions
    assert actions[-1] == "user_change"
