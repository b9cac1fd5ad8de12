"""/zaken over real HTTPS with real sessions: the list and a case's page per role (a team leader sees the own
team's recordings only), opening a case by hand, the case-level handover and closing it from the page."""

from __future__ import annotations

import re
from urllib.parse import quote

from appliance import audit, cases, handover, retention
from tests.cases.conftest import RECEIVER, request_case

REF = "PV/2026/118"  # a reference with slashes: its page's path quotes them


def place_holds(box, ids) -> None:
    for key in ("noord", "noord2", "zuid"):
        retention.add_hold(box, ids[key], "police_report", REF, "fg")


async def test_the_case_page_shows_its_recordings_holds_and_who_did_what(web, hbox, ids):
    place_holds(hbox, ids)
    await web.login("fg")
    listing = await web.page("/zaken")
    assert f'href="/zaken/{quote(REF, safe="")}"' in listing and "1 zaak." in listing
    html = await web.page(f"/zaken/{quote(REF, safe='')}")
    assert all(ids[key] in html for key in ("noord", "noord2", "zuid"))
    assert "CAM002" in html and "de Vries" in html
    assert html.count("<rect") == 2 * 3  # each recording's bar on its track
    assert f"opende zaak {REF}" in html and "plaatste een bewaring op opname" in html
    assert f'/logboek/bewaarketen?zaak={REF}' in html  # a slash is fine in a query
    assert "Overdracht van de zaak voorbereiden" in html and "Zaak sluiten" in html


async def test_a_team_leader_sees_the_own_team_and_the_auditor_only_reads(web, hbox, ids):
    place_holds(hbox, ids)
    await web.login("tl")
    html = await web.page(f"/zaken/{quote(REF, safe='')}")
    assert ids["noord"] in html and ids["noord2"] in html and ids["zuid"] not in html
    assert "Nog 1 opname van deze zaak valt buiten uw bereik." in html
    assert "de Vries" not in html
    await web.login("au")
    html = await web.page(f"/zaken/{quote(REF, safe='')}")
    assert ids["zuid"] in html and "Zaak sluiten" not in html and "Overdracht van de zaak" not in html
    # A case of team Zuid only is not the team leader's: not listed, not found.
    retention.add_hold(hbox, ids["zuid"], "complaint", "K-ZUID", "fg")
    await web.login("tl")
    assert "K-ZUID" not in await web.page("/zaken")
    status, _html = await web.get("/zaken/K-ZUID")
    assert status == 404


async def test_open_hand_over_and_close_a_case_from_its_pages(web, hbox, ids):
    await web.login("tl")
    response = await web.post("/zaken", {"reference": "K-12", "purpose": "complaint", "title": "Klacht Domplein"},
                              csrf_from="/zaken")
    assert response.status == 303 and response.headers["Location"] == "/zaken/K-12"
    assert cases.get(hbox, "K-12")["title"] == "Klacht Domplein"
    changed = await web.post("/zaken/K-12/wijzigen", {"title": "Klacht Domplein 3 december", "description": ""},
                             csrf_from="/zaken/K-12")
    assert changed.status == 303 and cases.get(hbox, "K-12")["title"] == "Klacht Domplein 3 december"
    assert [e["details"]["new"] for e in audit.entries(hbox.catalog, action="case_change")] == [
        "Klacht Domplein 3 december"]
    again = await web.post("/zaken", {"reference": "k-12", "purpose": "complaint"}, csrf_from="/zaken")
    assert again.status == 400 and "aria-invalid" in await again.text()
    for key in ("noord", "zuid"):
        retention.add_hold(hbox, ids[key], "complaint", "K-12", "fg")
    # The case-level handover: the team leader's own team's recording only, under the case's reference and kind.
    response = await web.post("/zaken/K-12/overdragen", {"receiver": RECEIVER, "basis_kind": "vrijwillig",
                                                         "protection": "passphrase"}, csrf_from="/zaken/K-12")
    assert response.status == 303
    handover_id = re.fullmatch(r"/overdrachten/(OV-\d{4}-\d{4})", response.headers["Location"]).group(1)
    prepared = handover.get(hbox, handover_id)
    assert (prepared["recording_ids"], prepared["case_ref"], prepared["purpose"], prepared["state"]) == (
        [ids["noord"]], "K-12", "complaint", "prepared")
    missing = await web.post("/zaken/K-12/overdragen", {"receiver": "", "protection": "passphrase"},
                             csrf_from="/zaken/K-12")
    assert missing.status == 400
    # The team leader may not close it: it holds a recording of team Zuid.
    refused = await web.post("/zaken/K-12/afsluiten", {"reason": ""}, csrf_from="/zaken/K-12")
    assert refused.status == 403 and cases.is_open(cases.get(hbox, "K-12"))
    await web.login("fg")
    closed = await web.post("/zaken/K-12/afsluiten", {"reason": "klacht afgehandeld"}, csrf_from="/zaken/K-12")
    assert closed.status == 303
    assert not [h for h in retention.active_holds(hbox.catalog) if h["case_ref"] == "K-12"]
    assert [e["details"]["reason"] for e in audit.entries(hbox.catalog, action="case_close")] == [
        "case closed: klacht afgehandeld"]
    html = await web.page("/zaken/K-12")
    assert "gesloten" in html and "Zaak heropenen" in html and "Overdracht van de zaak voorbereiden" not in html
    assert "sloot zaak K-12" in html and ids["zuid"] in html  # its history stays
    assert "/zaken/K-12\"" not in await web.page("/zaken") and "/zaken/K-12\"" in await web.page("/zaken?alle=1")


async def test_a_requests_case_page_lists_the_recordings_of_every_source_and_the_trail(web, hbox, ids):
    """A request that found the Noord recordings (linked), a hold by hand on the second, a handover of the Zuid
    one: the case's page lists all three with what was done to each, and says it closes with its request."""
    ref = request_case(hbox, ids)
    await web.login("fg")
    html = await web.page(f"/zaken/{ref}")
    assert all(ids[key] in html for key in ("noord", "noord2", "zuid"))
    assert html.count("<rect") == 2 * 3
    assert f'href="/verzoeken/1">{ref}</a>' in html and "/overdrachten/OV-" in html
    for told in (f"opende zaak {ref}", f"koppelde opname {ids['noord']} aan verzoek",
                 f"plaatste een bewaring op opname {ids['noord2']}", "bereidde overdracht"):
        assert told in html, told
    assert "Deze zaak hoort bij een verzoek: ze sluit met het verzoek." in html and "Zaak sluiten" not in html


async def test_a_hold_for_a_closed_case_is_refused_at_its_field(web, hbox, ids):
    retention.add_hold(hbox, ids["noord"], "complaint", "K-77", "fg")
    await web.login("fg")
    closed = await web.post("/zaken/K-77/afsluiten", {"reason": ""}, csrf_from="/zaken/K-77")
    assert closed.status == 303
    response = await web.post(f"/opnames/{ids['noord2']}/bewaren", {"purpose": "complaint", "case_ref": "k-77"},
                              csrf_from=f"/opnames/{ids['noord2']}")
    html = await response.text()
    assert response.status == 400 and "Zaak K-77 is gesloten: heropen haar eerst op haar pagina." in html
    assert not retention.active_holds(hbox.catalog, ids["noord2"])
