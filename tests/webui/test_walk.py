"""Every page for every role, in real Chromium at a desktop width (1280 px) and a phone width (390 px): the page
answers, is no wider than the window (a table scrolls inside its own box, long values wrap), and axe-core finds
no serious or critical accessibility violation. Screenshots of each go to test-output/walk/ for a person to look
at; with KLUIS_UI_SHOTS=<dir> (`make screenshots`) one of every page per width goes there as well, with an
index (docs/ui/ holds the current ones).

axe-core is the npm package pinned in tests/a11y/package.json, installed by `make test` (npm ci) and put into
each page from disk: the test browser reaches no network. One browser for the module, one context per role and
width."""

from __future__ import annotations

import os
import shutil
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
import pytest_asyncio

from appliance import access_requests, audit, handover, retention, roles
from appliance.box import Box
from appliance.dock import devices
from tests.browser_helpers import (FIND_VIOLATIONS, OUTPUT, chromium, layout_problems, login, needs_chromium,
                                   save_small, with_axe)
from tests.webui.conftest import NOW, PASSWORD, ROLE_USER, START, fixed_clock
from webui.site import create_app

pytestmark = needs_chromium
in_module_loop = pytest.mark.asyncio(loop_scope="module")  # the module's server and browser live in its loop

SHOTS = OUTPUT / "walk"
WIDTHS = {"desktop": 1280, "phone": 390}
HEIGHTS = {"desktop": 900, "phone": 844}
# A Dutch user's browser (its language and time zone; headless Chromium's own date fields stay in English).
BROWSER = {"ignore_https_errors": True, "locale": "nl-NL", "timezone_id": "Europe/Amsterdam"}
# A case reference as long as people make them (a police report number with the case's parts), in one piece
# without spaces, the hardest to fit: 100 characters.
LONG_REF = ("PL1300-2026-0412345/OpenbareOrde-StationspleinNoord/Aanhouding-na-melding-winkelpersoneel/ZK-00042"
            "-deel-2")[:100]
# And one without any place to break, as a hash or a reference typed without separators would be.
LONG_TOKEN = ("PL13002026041234500OpenbareOrdeStationspleinNoordAanhoudingNaMeldingWinkelpersoneelZK00042deel2"
              "00000")[:100]
assert len(LONG_REF) == len(LONG_TOKEN) == 100

# Each page a role may open: (route as the router knows it, the path to open, its name in screenshots). The
# path's {placeholders} are filled from the seeded box. Which roles see a page follows from the permission
# its handler declares (webui.app.needs), so a change in appliance/roles.py changes the walk.
PAGES = [
    ("/", "/", "overzicht"),
    ("/opnames", "/opnames", "opnames"),
    ("/opnames/{id}", "/opnames/{noord}", "opname"),
    ("/opnames/{id}/redigeren", "/opnames/{noord}/redigeren", "redigeren"),
    ("/mijn-opnames", "/mijn-opnames", "mijn-opnames"),
    ("/mijn-opnames/{id}", "/mijn-opnames/{noord}", "mijn-opname"),
    ("/cameras", "/cameras", "cameras"),
    ("/gebruikers", "/gebruikers", "gebruikers"),
    ("/verzoeken", "/verzoeken", "verzoeken"),
    ("/verzoeken/nieuw", "/verzoeken/nieuw", "verzoek-nieuw"),
    ("/verzoeken/{id}", "/verzoeken/{request}", "verzoek"),
    ("/zaken", "/zaken", "zaken"),
    ("/zaken/{ref}", "/zaken/{case}", "zaak"),
    ("/overdrachten", "/overdrachten", "overdrachten"),
    ("/overdrachten/nieuw", "/overdrachten/nieuw?opname={noord}", "overdracht-nieuw"),
    ("/overdrachten/{id}", "/overdrachten/{handover}", "overdracht"),
    ("/logboek", "/logboek", "logboek"),
    ("/logboek/verwijderverslag", "/logboek/verwijderverslag", "verwijderverslag"),
    ("/statistieken", "/statistieken", "statistieken"),
    ("/verwerkingsregister", "/verwerkingsregister", "verwerkingsregister"),
    ("/instellingen", "/instellingen", "instellingen"),
    ("/onderhoud", "/onderhoud", "onderhoud"),
    ("/account", "/account", "account"),
]
# GET routes that are no page of their own (downloads, streams, images, redirects), or that need a state the
# walk does not make: why each is left out.
NOT_PAGES = {
    "/login": "walked before logging in",
    "/taal/{lang}": "switches the language and redirects",
    "/overzicht/voortgang": "server-sent events",
    "/opnames/{id}/video/{grant}": "the video stream",
    "/opnames/{id}/redigeren/beeld": "a still image",
    "/logboek.csv": "CSV", "/logboek/verwijderverslag.csv": "CSV", "/overdrachten.csv": "CSV",
    "/statistieken.csv": "CSV",
    "/statistieken/raadsrapportage.pdf": "the report to the council as a PDF (tests/webui/test_statistieken.py reads it)",
    "/verwerkingsregister.pdf": "the register as a PDF (tests/webui/test_register_page.py reads it)",
    "/verwerkingsregister.md": "the register as Markdown", "/verwerkingsregister/dpia.pdf": "the DPIA's facts as a PDF",
    "/verwerkingsregister/dpia.md": "the DPIA's facts as Markdown",
    "/overdrachten/{id}/pakket/{grant}": "the package download",
    r"/redactie/{job}": "a running redaction job's progress (tests/redaction walk it)",
    r"/redactie/{job}.json": "JSON",
    "/overdrachten/{id}/formulier": "the transfer form as a PDF (tests/handover_ui read it)",
    "/verzoeken/{id}/brief/{kind}": "a letter to the requester as a PDF (tests/requests read them)",
    "/logboek/bewaarketen": "a custody report as a ZIP (tests/audit/test_custody_report.py)",
    "/opnames/{id}/redigeren/gezichten": "JSON: the faces in a frame, under the editor's grant",
    "/opnames/{id}/redigeren/voorbeeld/{preview}": "the preview video, under the editor's grant",
}
# Whose screenshot of a page goes to the docs: the first of these roles that may open it.
DOCS_ROLES = (roles.PRIVACY_OFFICER, roles.TEAM_LEADER, roles.KEEPER, roles.OFFICER, roles.AUDITOR)



def seed(box: Box, ids: dict) -> dict:
    """What makes the pages show something: a hold, an access request with its holds, a handover waiting for
    approval and views in the log, all with a 100-character case reference. Returns the placeholders."""
    recording = ids["noord"]
    retention.add_hold(box, recording, "complaint", LONG_REF, "tl")
    registered = access_requests.register(
        box, requester="A. de Boer-Vermeulen", kind="inzage", received_on=(NOW - timedelta(days=1)).date(),
        given_time=START + timedelta(seconds=10), actor="fg", place="Stationsplein, bij de fietsenstalling",
        contact="a.deboer@example.nl", notes="Wil weten wat er is opgenomen. " + LONG_REF)
    handover_id = handover.prepare(
        box, "tl", [recording], receiver="Politie Eenheid Amsterdam, team Centrum-Jordaan, brigadier P. de Wit",
        basis="vordering art. 126nd Sv", case_ref=LONG_REF, purpose="complaint", protection="passphrase")
    for actor, case_ref in (("tl", LONG_REF), ("fg", LONG_TOKEN)):
        audit.record(box.catalog, actor=actor, action="view", recording_id=recording, purpose="complaint",
                     case_ref=case_ref, clock=box.clock, details={"from_s": 0, "to_s": 20})
    retention.add_hold(box, ids["zuid"], "complaint", LONG_TOKEN, "fg")
    # Cameras: two paired (one personal, one pooled, in the dock), one found but not paired, and an alert;
    # inserted as the hostile-input test does (the dock protocol itself is tested in tests/dock).
    seen = (NOW - timedelta(minutes=5)).isoformat().replace("+00:00", "Z")
    for serial, paired, mode, officer, status in (("CAM001", 1, "personal", "jansen", "idle"),
                                                  ("CAM002", 1, "pooled", None, "offloading"),
                                                  ("CAM9F3A7C21", 0, "personal", None, "discovered")):
        box.catalog.db["devices"].insert({"serial": serial, "paired": paired, "online": 1, "mode": mode,
                                          "officer": officer, "model": "BWC-200", "address": "192.168.40.21",
                                          "last_seen": seen, "status": status})
    devices.alert(box, "spoofed_serial", "CAM9F3A7C21 advertises the serial of a paired camera", serial="CAM9F3A7C21")
    assert date.fromisoformat(registered.request["received_on"]) <= NOW.date()
    # The case of the long reference (opened by its first hold) names a "/": its page's path quotes it.
    return {"noord": recording, "request": registered.request["id"], "handover": handover_id,
            "case": quote(LONG_REF, safe="")}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def site(box_template, tmp_path_factory):
    """The seeded box's web UI on a free port and one Chromium: (base URL, browser, placeholders)."""
    from webui.server import start_web

    data = Path(shutil.copytree(box_template[0], tmp_path_factory.mktemp("walk") / "data"))
    with Box(data, clock=fixed_clock) as box:
        fill = seed(box, box_template[1])
        runner = await start_web(box, "127.0.0.1", 0)
        try:
            async with chromium() as browser:
                yield f"https://127.0.0.1:{runner.addresses[0][1]}", browser, fill
        finally:
            await runner.cleanup()
    docs = os.environ.get("KLUIS_UI_SHOTS")
    if docs:
        write_index(Path(docs))


def route_permissions(box_data) -> dict[str, str]:
    """GET route -> the permission its handler declares."""
    with Box(box_data, clock=fixed_clock) as box:
        app = create_app(box)
        return {route.resource.canonical: getattr(route.handler, "kluis_permission", None)
                for route in app.router.routes() if route.method == "GET" and route.resource is not None
                and not route.resource.canonical.startswith("/static")}


def pages_of(role: str, permissions: dict[str, str]) -> list[tuple[str, str]]:
    return [(path, name) for route, path, name in PAGES if roles.allowed(role, permissions[route])]


def test_every_page_is_walked(box_template):
    """A new page joins the walk (or says here why not)."""
    routes = set(route_permissions(box_template[0]))
    walked = {route for route, _path, _name in PAGES}
    assert routes - walked - set(NOT_PAGES) == set()
    assert walked <= routes


def docs_shot(role: str, name: str, permissions: dict[str, str]) -> bool:
    route = next(r for r, _p, n in PAGES if n == name)
    return next(r for r in DOCS_ROLES if roles.allowed(r, permissions[route])) == role


def write_index(docs: Path) -> None:
    """docs/ui/README.md: every page's screenshot at both widths."""
    lines = ["# The web UI, page by page", "",
             "Screenshots of every page at 1280 px and at 390 px (a phone), made by `make screenshots` "
             "(tests/webui/test_walk.py and tests/setup/test_setup_browser.py with KLUIS_UI_SHOTS=docs/ui): the first-boot wizard, then on a box seeded with recordings, a hold, "
             "an access request, a handover and log entries. Each page as the first of privacy officer, team "
             "leader, keeper, officer and auditor who may open it.", "",
             "| Page | 1280 px | 390 px |", "|---|---|---|"]
    extra = [("/opnames/{id} (bekijken)", "", "opname-bekijken"), ("404", "", "niet-gevonden")]
    setup = [(f"/setup ({path.name[6:-9]})", "", path.name[:-9]) for path in sorted(docs.glob("setup-*-1280.png"))]
    for route, _path, name in [*setup, ("/login", "/login", "login"), *PAGES, *extra]:
        if (docs / f"{name}-1280.png").exists():
            lines.append(f"| `{route}` | ![{name} 1280]({name}-1280.png) | ![{name} 390]({name}-390.png) |")
    (docs / "README.md").write_text("\n".join(lines) + "\n")


async def check(page, role: str, width: str, name: str, problems: list, docs_too: bool) -> None:
    scroll_width, found = await layout_problems(page)
    problems.extend(f"{name}: {problem}" for problem in found)
    folder = SHOTS / width
    folder.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(folder / f"{role}-{name}.png"), full_page=True)
    docs = os.environ.get("KLUIS_UI_SHOTS")
    if docs and docs_too:
        Path(docs).mkdir(parents=True, exist_ok=True)
        save_small(await page.screenshot(full_page=True), Path(docs) / f"{name}-{WIDTHS[width]}.png")
    print(f"{role} {WIDTHS[width]} {name}: {scroll_width}")  # the widths measured, with -s


@in_module_loop
@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("role", roles.ROLES)
async def test_walk(site, box_template, role, width):
    await walk(site, box_template, role, width)


@in_module_loop
@pytest.mark.parametrize("role", [roles.PRIVACY_OFFICER, roles.KEEPER])  # between them, every page
async def test_walk_in_english_on_a_phone(site, box_template, role):
    """The English texts are other lengths than the Dutch: they must fit a phone as well."""
    await walk(site, box_template, role, "phone", lang="en")


async def walk(site, box_template, role: str, width: str, lang: str = "nl") -> None:
    base_url, browser, fill = site
    permissions = route_permissions(box_template[0])
    context = await browser.new_context(**BROWSER, base_url=base_url,
                                        viewport={"width": WIDTHS[width], "height": HEIGHTS[width]})
    await with_axe(context)
    page = await context.new_page()
    problems: list[str] = []
    docs = lang == "nl"
    label = role if docs else f"{role}-{lang}"
    try:
        await page.goto(f"/taal/{lang}?next=/login")
        await check(page, label, width, "login", problems, docs and role == DOCS_ROLES[0])
        await login(page, ROLE_USER[role], PASSWORD, lang)
        walked = pages_of(role, permissions)
        assert len(walked) >= 4  # the overview, the account and what the role works with
        for path, name in walked:
            response = await page.goto(path.format(**fill))
            assert response is not None and response.status == 200, (path, response and response.status)
            await check(page, label, width, name, problems, docs and docs_shot(role, name, permissions))
        if roles.VIEW_PURPOSES.get(role, ()) is None and docs:  # may view with any purpose: the player, too
            await view(page, fill["noord"])
            await check(page, label, width, "opname-bekijken", problems, role == DOCS_ROLES[0])
        response = await page.goto("/bestaat-niet")
        assert response is not None and response.status == 404
        await check(page, label, width, "niet-gevonden", problems, docs and role == DOCS_ROLES[0])
    finally:
        await context.close()
    assert not problems, "\n".join(problems)


async def view(page, recording_id: str) -> None:
    """Open the recording with a purpose and a long case reference: the page with the player."""
    await page.goto(f"/opnames/{recording_id}")
    await page.get_by_label("Doel", exact=True).first.select_option("complaint")
    await page.locator("#case_ref").fill(LONG_REF)
    await page.get_by_role("button", name="Bekijken").click()
    await page.locator("video#video").wait_for()
    await page.wait_for_function("() => document.getElementById('video').readyState >= 1", timeout=15000)


@in_module_loop
async def test_the_checks_can_fail(site):
    """On the box's own login page at phone width (its CSP, its stylesheet), with a nameless button, pale text
    and a 1200 px wide block added: axe reports the first two (and only those), the width check the third."""
    base_url, browser, _fill = site
    context = await browser.new_context(**BROWSER, base_url=base_url, viewport={"width": 390, "height": 844})
    await with_axe(context)
    page = await context.new_page()
    try:
        await page.goto("/login")
        assert await layout_problems(page) == (390, [])
        await page.evaluate("""() => { const main = document.querySelector('main');
            main.append(document.createElement('button'));
            const pale = document.createElement('p'); pale.textContent = 'grijs'; main.append(pale);
            pale.style.color = '#ccc';
            const wide = document.createElement('div'); main.append(wide); wide.textContent = 'breed';
            wide.style.width = '1200px'; }""")
        found = await page.evaluate(FIND_VIOLATIONS)
        width, problems = await layout_problems(page)
    finally:
        await context.close()
    assert {v.split(" ")[0] for v in found} == {"button-name", "color-contrast"}
    assert width > 1200 and problems[0] == f"{width} px wide in a 390 px window"


@in_module_loop
async def test_phone_menu_is_compact(site):
    """At phone width the menu is one button that opens the list of pages; at desktop width the list shows."""
    base_url, browser, _fill = site
    for width, compact in (("phone", True), ("desktop", False)):
        context = await browser.new_context(**BROWSER, base_url=base_url,
                                            viewport={"width": WIDTHS[width], "height": HEIGHTS[width]})
        await with_axe(context)
        page = await context.new_page()
        try:
            await login(page, ROLE_USER[roles.PRIVACY_OFFICER], PASSWORD)
            logboek = page.get_by_role("link", name="Logboek", exact=True)
            menu = page.get_by_role("button", name="Menu")
            if compact:
                assert await menu.is_visible() and not await logboek.is_visible()
                assert await menu.get_attribute("aria-expanded") == "false"
                header = await page.locator("header").bounding_box()
                assert header is not None and header["height"] < 160
                await menu.click()
                assert await menu.get_attribute("aria-expanded") == "true"
                assert await logboek.is_visible()
                _width, problems = await layout_problems(page)
                assert problems == []
                (SHOTS / width).mkdir(parents=True, exist_ok=True)
                await page.screenshot(path=str(SHOTS / width / "menu-open.png"))
                await logboek.click()
                await page.wait_for_url("**/logboek")
            else:
                assert not await menu.is_visible() and await logboek.is_visible()
        finally:
            await context.close()
