"""/verzoeken over a real HTTPS server on a real box: register through the form (found, held, deadline with
days left), close (holds released, swept later), an upheld objection that an aangifte hold blocks, the
dashboard's near-deadline list, roles, hostile text, Dutch and English."""

from __future__ import annotations

import io

import pytest
from pypdf import PdfReader

from appliance import audit, recording_places, retention, sweep
from appliance import access_requests as ar
from verzoeken_helpers import HOSTILE
from tests.web_helpers import WebClient, https_client, injected_scripts
from webui.site import create_app

ESCAPED = "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;"


@pytest.fixture
async def web(copied_box) -> WebClient:
    async with https_client(copied_box, create_app(copied_box)) as client:
        yield WebClient(copied_box, client)


FORM = {"requester": "P. de Boer", "kind": "access_request", "received_on": "2026-11-21",
        "given_time": "2026-11-20T14:05", "place": "Oudegracht", "camera": "", "officer": "", "window": "15",
        "contact": "", "notes": ""}


async def register(web: WebClient, **changes) -> str:
    response = await web.post("/verzoeken", {**FORM, **changes}, "/verzoeken/nieuw")
    assert response.status == 303, await response.text()
    return response.headers["Location"].split("?")[0]


async def test_register_answer_release_and_the_normal_term(web, template, clock):
    ids = template[1]
    await web.login("fg")
    assert 'href="/verzoeken"' in await web.page("/")  # in the menu of the privacy officer
    path = await register(web, requester=HOSTILE, place=HOSTILE, notes=HOSTILE)
    html = await web.page(path)
    assert "Geregistreerd. 2 opnames gevonden en bewaard voor dit verzoek." in html  # said once (flash)
    assert "21-12-2026 (nog 29 dagen)" in html
    assert "als tekst genoteerd" in html
    assert f'href="/opnames/{ids["a"]}"' in html and f'href="/opnames/{ids["b"]}"' in html and ids["c"] not in html
    assert not injected_scripts(html) and html.count(ESCAPED) >= 4  # requester, place, notes, officer of b
    req = ar.list_requests(web.box)[0]
    for key in ("a", "b"):
        (hold,) = retention.active_holds(web.box.catalog, ids[key])
        assert (hold["purpose"], hold["case_ref"], hold["placed_by"]) == ("access_request", req["ref"], "fg")
    register_page = await web.page("/verzoeken")
    assert req["ref"] in register_page and "nog 29 dagen" in register_page and not injected_scripts(register_page)
    entries = audit.entries(web.box.catalog)
    assert [e["client"].startswith("web ") for e in entries if e["action"] == "request_add"] == [True]

    # Answered: the holds are released, the page says so, and after the grace period the sweep deletes.
    response = await web.post(f"{path}/afsluiten", {"outcome": "answered", "decision_ref": "AVG-12"}, path)
    assert response.status == 303
    html = await web.page(path)
    assert "afgesloten: beantwoord (besluit AVG-12)" in html and "bewaring vrijgegeven" in html
    assert all(retention.active_holds(web.box.catalog, ids[k]) == [] for k in ("a", "b"))
    assert [e["case_ref"] for e in audit.entries(web.box.catalog, action="request_close")] == [req["ref"]]
    clock.advance(days=40)
    assert set(sweep.sweep(web.box).deleted) == {ids["a"], ids["b"], ids["c"]}
    await web.login("fg")  # 40 days idle: the session ended
    html = await web.page(path)  # the request remembers its recordings, no longer to be opened
    assert ids["a"] in html and f'href="/opnames/{ids["a"]}"' not in html


async def test_upheld_objection_is_blocked_by_an_aangifte_hold_and_says_so(web, template):
    ids = template[1]
    retention.add_hold(web.box, ids["b"], "police_report", "PV-2026-118", "tl")
    await web.login("fg")
    path = await register(web, kind="objection", requester="B. Ezwaar")
    html = await web.page(path)
    assert "Een gegrond bezwaar verwijdert de opnames nu" in html
    response = await web.post(f"{path}/afsluiten", {"outcome": "upheld", "decision_ref": ""}, path)
    assert response.status == 400 and "Geef het kenmerk van het besluit." in await response.text()
    response = await web.post(f"{path}/afsluiten", {"outcome": "upheld", "decision_ref": "BZ-42"}, path)
    assert response.status == 303
    html = await web.page(path)
    assert "verwijderd vóór het einde van de termijn" in html
    assert "niet verwijderd: een andere bewaring houdt haar vast" in html
    assert "bewaard voor aangifte, zaak PV-2026-118" in html
    assert web.box.catalog.db.execute("SELECT count(*) FROM recordings WHERE id = ?", [ids["a"]]).fetchone()[0] == 0
    (deleted,) = audit.entries(web.box.catalog, recording_id=ids["a"], action="delete")
    assert (deleted["actor"], deleted["case_ref"]) == ("fg", "BZ-42") and deleted["client"].startswith("web ")
    assert web.box.catalog.get_recording(ids["b"])["state"] == "stored"


async def test_link_unlink_and_form_errors(web, template):
    ids = template[1]
    await web.login("fg")
    response = await web.post("/verzoeken", {**FORM, "requester": "", "kind": "x", "given_time": "gisteren",
                                             "received_on": "2099-01-01"}, "/verzoeken/nieuw")
    html = await response.text()
    assert response.status == 400
    for message in ("Geef de naam van de verzoeker.", "Kies het soort verzoek.", "Geen datum en tijd: gisteren",
                    "De datum van ontvangst ligt in de toekomst."):
        assert message in html, message
    path = await register(web, kind="complaint", camera="CAM001")
    assert ids["b"] not in await web.page(path)  # only CAM001
    response = await web.post(f"{path}/koppelen", {"recording": ids["c"]}, path)
    assert response.status == 303
    assert [h["purpose"] for h in retention.active_holds(web.box.catalog, ids["c"])] == ["complaint"]
    response = await web.post(f"{path}/koppelen", {"recording": "nope"}, path)
    assert response.status == 400 and "Er is geen opname nope." in await response.text()
    response = await web.post(f"{path}/ontkoppelen", {"recording": ids["c"], "reason": "andere persoon"}, path)
    assert response.status == 303
    assert retention.active_holds(web.box.catalog, ids["c"]) == []
    assert [e["action"] for e in audit.entries(web.box.catalog, recording_id=ids["c"])][-4:] == [
        "request_link", "hold_add", "request_unlink", "hold_release"]
    assert "losgekoppeld" in await web.page(path)


async def test_other_roles_get_no_register_and_english_works(web):
    for name in ("tl", "au"):
        await web.login(name)
        assert 'href="/verzoeken"' not in await web.page("/")
        for path in ("/verzoeken", "/verzoeken/nieuw", "/verzoeken/1"):
            response = await web.client.get(path)
            assert response.status == 403, (name, path)
        response = await web.post("/verzoeken", FORM, "/")
        assert response.status == 403
    assert web.box.catalog.db.execute("SELECT count(*) FROM requests").fetchone()[0] == 0
    await web.login("fg")
    path = await register(web)
    web.client.session.cookie_jar.update_cookies({"kluis_lang": "en"})
    html = await web.page(path)
    assert "21-12-2026 (29 days left)" in html and "Access request VZ-2026-0001" in html


async def test_dashboard_lists_requests_near_and_past_their_deadline(web):
    await web.login("fg")
    late = await register(web, received_on="2026-10-20", requester="Laat")    # deadline 20-11: 2 days late
    near = await register(web, received_on="2026-10-27", requester="Bijna")   # deadline 27-11: 5 days left
    await register(web, received_on="2026-11-21", requester="Ruim")           # deadline 21-12: not yet
    html = await web.page("/")
    section = html[html.index('id="verzoeken-termijn"'):]
    section = section[:section.index("</section>")]
    assert "Verzoeken bij hun uiterste datum" in section
    assert f'href="{late}"' in section and "20-11-2026 (2 dagen te laat)" in section
    assert f'href="{near}"' in section and "27-11-2026 (nog 5 dagen)" in section
    assert "VZ-2026-0003" not in section and "Laat" not in section  # no requester names on the dashboard
    response = await web.post(f"{late}/afsluiten", {"outcome": "withdrawn", "decision_ref": ""}, late)
    assert response.status == 303
    assert f'href="{late}"' not in await web.page("/")
    await web.login("tl")  # not the team leader's business
    assert 'id="verzoeken-termijn"' not in await web.page("/")


async def test_request_page_links_redacted_versions_and_the_handover(web, template):
    ids = template[1]
    await web.login("fg")
    path = await register(web)
    html = await web.page(path)
    assert f'href="/opnames/{ids["a"]}/redigeren?verzoek=VZ-' in html  # the redaction editor, with the request
    assert "Er is nog geen geredigeerde kopie om over te dragen" in html and "/overdrachten/nieuw" not in html
    # A redacted derivative of a (appliance.redaction stores it with derived_from).
    web.box.catalog.db.execute("UPDATE recordings SET derived_from = ? WHERE id = ?", [ids["a"], ids["c"]])
    html = await web.page(path)
    row = html[html.index(f'href="/opnames/{ids["a"]}"'):]
    row = row[:row.index("</tr>")]
    assert f'href="/opnames/{ids["c"]}"' in row
    ref = ar.list_requests(web.box)[0]["ref"]
    link = (f'/overdrachten/nieuw?opname={ids["c"]}&case_ref={ref}&purpose=access_request'
            f'&protection=passphrase')
    assert f'href="{link.replace("&", "&amp;")}"' in html
    # The handover page takes the derivative, the case, the purpose and the protection from the link.
    handover = await web.page(link)
    assert ids["c"] in handover and f'value="{ref}"' in handover
    assert 'value="access_request" selected' in handover and 'value="passphrase" checked' in handover
    # Or the request's own button: a handover of the redacted version to the requester, with a passphrase,
    # awaiting a second person's approval.
    response = await web.post(f"{path}/overdragen", {}, path)
    assert response.status == 303 and response.headers["Location"].startswith("/overdrachten/OV-")
    (row,) = web.box.catalog.db.query("SELECT * FROM handovers")
    assert (row["case_ref"], row["purpose"], row["protection"], row["state"], row["prepared_by"]) == (
        ref, "access_request", "passphrase", "prepared", "fg")
    assert "P. de Boer" in row["receiver"] and "AVG art. 15" in row["basis"]
    items = [r["recording_id"] for r in web.box.catalog.db.query("SELECT recording_id FROM handover_items")]
    assert items == [ids["c"]]  # the redacted version only, never the original
    (entry,) = audit.entries(web.box.catalog, action="handover_prepare")
    assert (entry["actor"], entry["recording_id"], entry["case_ref"]) == ("fg", ids["c"], ref)


async def test_register_search_by_reference_or_name(web):
    await web.login("fg")
    await register(web, requester="Anna de Wit")
    await register(web, requester="Bram 100%_Zwart")
    html = await web.page("/verzoeken?zoek=wit")
    assert "Anna de Wit" in html and "Bram" not in html and "1 verzoek." in html
    html = await web.page("/verzoeken?zoek=VZ-2026-0002")
    assert "Bram 100%_Zwart" in html and "Anna" not in html
    # LIKE's wildcards are literal: '_' and '%' match only themselves
    assert "1 verzoek." in await web.page("/verzoeken?zoek=_") and "0 verzoeken." in await web.page("/verzoeken?zoek=%25x")
    assert "1 verzoek." in await web.page("/verzoeken?zoek=0%25_Z")


async def test_a_place_on_the_map_an_extension_and_the_letters(web, template, clock):
    """Issue 20, part 6, in the web UI: a map point narrows the search where recordings carry a location,
    the deadline is extended with a reason, and each letter is a PDF that is put on record."""
    ids = template[1]
    with web.box.catalog.transaction():  # recording b was made 20 km away (an Axis camera would say so)
        recording_places.add(web.box.catalog.db, ids["b"], [("trigger_on", 52.1561, 5.3878, None)])
    await web.login("fg")
    response = await web.post("/verzoeken", {**FORM, "place_at": "Oudegracht 12"}, "/verzoeken/nieuw")
    html = await response.text()
    assert response.status == 400 and "Geen plaats op de kaart: Oudegracht 12" in html
    path = await register(web, place_at="https://www.openstreetmap.org/#map=18/52.0907/5.1214", radius="500")
    html = await web.page(path)
    assert "1 opname gevonden" in html and "1 opname van dat moment is elders gemaakt" in html
    assert "punt 52.0907, 5.1214" in html and "500 m" in html
    assert f'href="/opnames/{ids["a"]}"' in html and f'href="/opnames/{ids["b"]}"' not in html
    assert retention.active_holds(web.box.catalog, ids["b"]) == []

    assert (await web.get(f"{path}/brief/extension"))[0] == 404  # not extended: no such letter
    response = await web.post(f"{path}/verlengen", {"months": "2", "reason": ""}, path)
    assert response.status == 400 and "Geef de reden" in await response.text()
    response = await web.post(f"{path}/verlengen", {"months": "2", "reason": "drie camera's, veel bewerking"}, path)
    assert response.status == 303
    html = await web.page(path)
    assert "21-01-2027" not in html and "21-02-2027" in html and "verlengd met 2 maand(en) vanaf 21-12-2026" in html
    assert 'id="verlengen"' not in html  # two months in all: no further extension offered

    response = await web.client.get(f"{path}/brief/extension")
    assert response.status == 200 and response.content_type == "application/pdf"
    text = " ".join(" ".join(page.extract_text().split()) for page in PdfReader(io.BytesIO(await response.read())).pages)
    assert "drie camera's, veel bewerking" in text and "21 februari 2027" in text
    assert [e["details"]["letter"] for e in audit.entries(web.box.catalog, action="request_letter")] == ["extension"]
    assert "Verlenging van de termijn" in await web.page(path)  # the letter is listed as made
