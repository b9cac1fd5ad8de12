"""The whole route x role matrix, held against appliance.roles and against the running server.

EXPECTED spells out, per route, which roles may use it (from the issue's "who does what"). A route that
the application has but EXPECTED lacks fails the test: a new route cannot be added open.
"""

from __future__ import annotations

import pytest

from appliance import roles
from webui.app import PUBLIC
from tests.webui.conftest import ROLE_USER

ALL = set(roles.ROLES)
K, TL, FG, OF, AU = roles.KEEPER, roles.TEAM_LEADER, roles.PRIVACY_OFFICER, roles.OFFICER, roles.AUDITOR

# (method, path pattern) -> roles allowed; PUBLIC routes need no login.
EXPECTED: dict[tuple[str, str], set[str] | str] = {
    ("GET", "/login"): PUBLIC,
    ("POST", "/login"): PUBLIC,
    ("GET", "/taal/{lang}"): PUBLIC,
    ("POST", "/logout"): ALL,
    ("GET", "/"): ALL,
    ("GET", "/account"): ALL,
    ("POST", "/account/wachtwoord"): ALL,
    ("POST", "/account/tweestaps"): ALL,
    ("POST", "/account/tweestaps/bevestigen"): ALL,
    ("GET", "/overzicht/voortgang"): ALL,
    ("GET", "/cameras"): {K},
    ("POST", "/cameras/koppelen"): {K},
    ("POST", "/cameras/{serial}/toewijzen"): {K},
    ("POST", "/cameras/{serial}/dienst"): {K},
    ("POST", "/cameras/axis/verbindingsbestand"): {K},  # an Axis W800's connection file
    ("POST", "/cameras/usb/{serial}/registreren"): {K},  # the keeper registers a found USB camera
    ("POST", "/cameras/meldingen/gelezen"): {K},  # the keeper marks the alerts read
    ("GET", "/opnames"): {TL, FG, OF},
    ("GET", "/opnames/{id}"): {TL, FG, OF},
    ("POST", "/opnames/{id}/bekijken"): {TL, FG, OF},
    ("GET", "/opnames/{id}/video/{grant}"): {TL, FG, OF},
    ("POST", "/opnames/{id}/video/{grant}/afgespeeld"): {TL, FG, OF},  # the player reports what it played
    ("POST", "/opnames/{id}/reden"): {TL, OF},
    ("POST", "/opnames/{id}/categorie"): {TL, FG, OF},  # retention categories: an officer only what they added
    ("GET", "/mijn-opnames"): {OF},  # the officer's own recordings, metadata only
    ("GET", "/mijn-opnames/{id}"): {OF},
    ("POST", "/mijn-opnames/{id}/reden"): {OF},
    ("POST", "/mijn-opnames/{id}/categorie"): {OF},
    ("POST", "/opnames/{id}/exporteren"): {FG},
    ("POST", "/opnames/{id}/bewaren"): {TL, FG},
    ("POST", "/opnames/{id}/vrijgeven"): {TL, FG},
    ("GET", "/gebruikers"): {K},
    ("POST", "/gebruikers"): {K},
    ("POST", "/gebruikers/{name}/rol"): {K},
    ("POST", "/gebruikers/{name}/wachtwoord"): {K},
    ("POST", "/gebruikers/{name}/ontgrendelen"): {K},
    ("POST", "/gebruikers/{name}/uitschakelen"): {K},
    ("POST", "/gebruikers/{name}/tweestaps-uit"): {K},
    ("POST", "/gebruikers/{name}/persoon"): {K},
    ("GET", "/logboek"): {FG, AU},
    ("POST", "/logboek/controleer"): {FG, AU},
    ("GET", "/logboek.csv"): {FG, AU},
    ("GET", "/logboek/bewaarketen"): {FG, AU},
    ("GET", "/logboek/verwijderverslag"): {FG, AU},
    ("GET", "/logboek/verwijderverslag.csv"): {FG, AU},
    ("GET", "/instellingen"): {K},
    ("POST", "/instellingen"): {K},
    ("POST", "/instellingen/herverpakken"): {K},
    ("POST", "/instellingen/testmelding"): {K},
    ("POST", "/instellingen/backup-test"): {K},
    ("POST", "/instellingen/backup-sleutel"): {K},
    ("GET", "/statistieken"): {K, TL, FG, AU},  # the auditor checks the pilot's figures
    ("GET", "/statistieken.csv"): {K, TL, FG, AU},
    ("GET", "/statistieken/raadsrapportage.pdf"): {FG, AU},
    # Handovers: the team leader prepares for the own team, the privacy officer approves.
    ("GET", "/overdrachten"): {TL, FG, AU},
    ("GET", "/overdrachten.csv"): {TL, FG, AU},
    ("GET", "/overdrachten/nieuw"): {TL, FG},
    ("POST", "/overdrachten/nieuw"): {TL, FG},
    ("GET", "/overdrachten/{id}"): {TL, FG, AU},
    ("POST", "/overdrachten/{id}/goedkeuren"): {FG},
    ("GET", "/overdrachten/{id}/pakket/{grant}"): {FG},
    ("GET", "/overdrachten/{id}/formulier"): {TL, FG, AU},
    ("POST", "/overdrachten/{id}/weigeren"): {FG},
    ("POST", "/overdrachten/{id}/intrekken"): {TL, FG},
    # requests of people who were filmed (webui/routes/verzoeken.py): the privacy officer only
    ("GET", "/verzoeken"): {FG},
    ("POST", "/verzoeken"): {FG},
    ("GET", "/verzoeken/nieuw"): {FG},
    ("GET", "/verzoeken/{id}"): {FG},
    ("POST", "/verzoeken/{id}/koppelen"): {FG},
    ("POST", "/verzoeken/{id}/ontkoppelen"): {FG},
    ("POST", "/verzoeken/{id}/afsluiten"): {FG},
    ("POST", "/verzoeken/{id}/verlengen"): {FG},
    ("GET", "/verzoeken/{id}/brief/{kind}"): {FG},
    ("POST", "/verzoeken/{id}/overdragen"): {FG},
    # cases (webui/routes/zaken.py): read by the team leader (own team's recordings), the privacy officer and the
    # auditor; opened, closed and reopened by the team leader and the privacy officer; handed over by those who
    # prepare handovers
    ("GET", "/zaken"): {TL, FG, AU},
    ("POST", "/zaken"): {TL, FG},
    ("GET", "/zaken/{ref}"): {TL, FG, AU},
    ("POST", "/zaken/{ref}/wijzigen"): {TL, FG},
    ("POST", "/zaken/{ref}/afsluiten"): {TL, FG},
    ("POST", "/zaken/{ref}/heropenen"): {TL, FG},
    ("POST", "/zaken/{ref}/overdragen"): {TL, FG},
    # redacted derivatives (webui/routes/redactie.py): the privacy officer only
    ("GET", "/opnames/{id}/redigeren"): {FG},
    ("GET", "/opnames/{id}/redigeren/beeld"): {FG},
    ("POST", "/opnames/{id}/redigeren/openen"): {FG},
    ("GET", "/opnames/{id}/redigeren/gezichten"): {FG},
    ("POST", "/opnames/{id}/redigeren/voorbeeld"): {FG},
    ("GET", "/opnames/{id}/redigeren/voorbeeld/{preview}"): {FG},
    ("POST", "/opnames/{id}/redigeren"): {FG},
    ("GET", "/redactie/{job}"): {FG},
    ("GET", "/redactie/{job}.json"): {FG},
    ("POST", "/redactie/{job}/stoppen"): {FG},
    # backups and signed updates (webui/routes/onderhoud.py): the keeper
    ("GET", "/onderhoud"): {K},
    ("POST", "/onderhoud/backup"): {K},
    ("POST", "/onderhoud/update"): {K},
    # the processing register entry and the DPIA's fact sheet (webui/routes/verwerkingsregister.py)
    ("GET", "/verwerkingsregister"): {FG},
    ("GET", "/verwerkingsregister.pdf"): {FG},
    ("GET", "/verwerkingsregister.md"): {FG},
    ("GET", "/verwerkingsregister/dpia.pdf"): {FG},
    ("GET", "/verwerkingsregister/dpia.md"): {FG},
}
ROLE_REFUSAL = "Uw rol staat dit niet toe."


def app_routes(app) -> dict[tuple[str, str], object]:
    found = {}
    for route in app.router.routes():
        if route.method == "HEAD" or route.resource.canonical == "/static":
            continue  # HEAD mirrors GET; static files are the stylesheet
        found[(route.method, route.resource.canonical)] = route.handler
    return found


def test_every_route_is_in_the_matrix_and_matches_the_role_table(web_box):
    from webui.site import create_app

    routes = app_routes(create_app(web_box))
    missing = set(routes) - set(EXPECTED)
    assert not missing, f"routes without an entry in the role matrix: {sorted(missing)}"
    stale = set(EXPECTED) - set(routes)
    assert not stale, f"matrix names routes the app does not have: {sorted(stale)}"
    for key, handler in routes.items():
        permission = getattr(handler, "kluis_permission", None)
        assert permission is not None, f"{key} declares no permission"
        if EXPECTED[key] == PUBLIC:
            assert permission == PUBLIC, key
        else:
            assert permission != PUBLIC, f"{key} is public but should need a login"
            by_table = {role for role in roles.ROLES if roles.allowed(role, permission)}
            assert by_table == EXPECTED[key], f"{key}: table allows {by_table}, matrix says {EXPECTED[key]}"


def _path(pattern: str, rec_ids: dict) -> str:
    return (pattern.replace("{id}", rec_ids["noord"]).replace("{grant}", "nogrant").replace("{preview}", "nopreview")
            .replace("{name}", "nobody").replace("{job}", "0" * 16).replace("{lang}", "nl").replace("{serial}", "NOCAM")
            .replace("{kind}", "receipt").replace("{ref}", "NOCASE")
            .replace("/voortgang", "/voortgang?once=1"))


@pytest.mark.parametrize("role", roles.ROLES)
async def test_server_enforces_the_matrix_for(role, web, rec_ids):
    await web.as_role(role)
    token = await web.csrf("/")
    checked = 0
    for (method, pattern), allowed in sorted(EXPECTED.items(), key=lambda kv: kv[0][1] == "/logout"):
        if allowed == PUBLIC:
            continue
        path = _path(pattern, rec_ids)
        if method == "GET":
            response = await web.client.get(path, allow_redirects=False)
        else:
            response = await web.client.post(path, data={"csrf": token}, allow_redirects=False)
        body = (await response.read()).decode("utf-8", "replace")  # a PDF answer too
        if role in allowed:
            assert response.status < 500, (role, method, path, body[:300])
            assert not (response.status == 403 and ROLE_REFUSAL in body), (role, method, path)
            assert response.status != 401, (role, method, path)
        else:
            assert response.status == 403 and ROLE_REFUSAL in body, (role, method, path, response.status)
        checked += 1
    assert checked == sum(1 for v in EXPECTED.values() if v != PUBLIC)


async def test_without_login_every_protected_route_refuses(web, rec_ids):
    for (method, pattern), allowed in EXPECTED.items():
        if allowed == PUBLIC:
            continue
        path = _path(pattern, rec_ids)
        if method == "GET":
            response = await web.client.get(path, allow_redirects=False, headers={"Accept": "text/html"})
            assert response.status == 303 and response.headers["Location"].startswith("/login"), path
        else:
            response = await web.client.post(path, data={}, allow_redirects=False)
            assert response.status == 401, path


async def test_a_route_that_declares_no_permission_is_closed(web_box):
    """Fail closed: the middleware refuses a handler without @needs/@public, even to the keeper."""
    from aiohttp import web as aioweb

    from webui.site import create_app

    app = create_app(web_box)

    async def forgotten(request):
        return aioweb.Response(text="secret")

    app.router.add_get("/vergeten", forgotten)
    from tests.web_helpers import https_client
    from tests.webui.conftest import Web

    async with https_client(web_box, app) as client:
        await Web(web_box, client, app).as_role(roles.KEEPER)
        response = await client.get("/vergeten")
        assert response.status == 403 and "secret" not in await response.text()


def test_role_users_exist(web_box):
    assert {u["role"] for u in web_box.catalog.list_users()} == set(ROLE_USER)
