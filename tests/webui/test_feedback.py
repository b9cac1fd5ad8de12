"""What a person hears back from the box: a confirmation after each action (shown once, role=status), a
second identical hold flagged at its field, over-long input refused with a message (never cut), errors at
their field with aria-invalid and aria-describedby; and one displayed state per recording."""

from __future__ import annotations

import re

from appliance import retention

LONG_REF = "Z" * 101  # the case reference field takes 100 characters


def flash_of(html: str) -> list[str]:
    box = re.search(r'<div class="flash" role="status">(.*?)</div>', html, re.S)
    return re.findall(r'<p class="notice">(.*?)</p>', box.group(1)) if box else []


async def hold(web, rid: str, **fields) -> tuple[int, str, str | None]:
    data = {"purpose": "complaint", "case_ref": "KL-2026-12", "until": "", **fields}
    response = await web.post(f"/opnames/{rid}/bewaren", data, csrf_from=f"/opnames/{rid}")
    return response.status, await response.text(), response.headers.get("Location")


async def test_a_hold_is_confirmed_once_on_the_page_it_leads_to(web, rec_ids):
    rid = rec_ids["noord"]
    await web.as_role("team_leader")
    status, _body, location = await hold(web, rid)
    assert status == 303 and location == f"/opnames/{rid}#bewaringen"
    page = await web.page(f"/opnames/{rid}")
    assert flash_of(page) == ["Bewaring geplaatst voor zaak KL-2026-12."]
    assert flash_of(await web.page(f"/opnames/{rid}")) == []  # said once, not on every later page


async def test_each_recording_and_request_action_confirms(web, rec_ids):
    rid = rec_ids["noord"]
    await web.as_role("team_leader")
    response = await web.post(f"/opnames/{rid}/reden", {"reason": "threat", "warning_given": "yes"},
                              csrf_from=f"/opnames/{rid}")
    assert response.status == 303
    assert flash_of(await web.page(f"/opnames/{rid}")) == ["Reden van de opname opgeslagen."]
    await hold(web, rid)
    await web.page(f"/opnames/{rid}")
    hold_id = retention.list_holds(web.box.catalog, rid)[0]["id"]
    response = await web.post(f"/opnames/{rid}/vrijgeven", {"hold": str(hold_id), "reason": "zaak gesloten"},
                              csrf_from=f"/opnames/{rid}")
    assert response.status == 303
    assert flash_of(await web.page(f"/opnames/{rid}")) == ["Bewaring vrijgegeven; de gewone bewaartermijn geldt weer."]

    await web.as_role("privacy_officer")
    response = await web.post("/verzoeken", {"requester": "Anna de Wit", "kind": "objection",
                                             "received_on": "2026-11-21", "given_time": "2026-11-20T14:06",
                                             "camera": "CAM001"}, csrf_from="/verzoeken/nieuw")
    assert response.status == 303
    request_page = response.headers["Location"].split("?")[0]
    other = rec_ids["zuid"]
    response = await web.post(f"{request_page}/koppelen", {"recording": other}, csrf_from=request_page)
    assert response.status == 303
    assert flash_of(await web.page(request_page)) == [
        f"Opname {other} is aan het verzoek gekoppeld en wordt ervoor bewaard."]
    response = await web.post(f"{request_page}/afsluiten", {"outcome": "withdrawn"}, csrf_from=request_page)
    assert response.status == 303
    assert flash_of(await web.page(request_page)) == ["Verzoek afgesloten."]


async def test_a_second_identical_hold_is_flagged_at_its_field_and_not_placed(web, rec_ids):
    rid = rec_ids["noord"]
    await web.as_role("privacy_officer")
    assert (await hold(web, rid))[0] == 303
    status, page, _ = await hold(web, rid, case_ref="  kl-2026-12 ")  # the same case, typed differently
    assert status == 400
    assert len(retention.list_holds(web.box.catalog, rid)) == 1
    field = re.search(r'<input id="hold_case_ref"[^>]*>', page).group(0)
    assert 'aria-invalid="true"' in field and 'aria-describedby="hold_case_ref-error"' in field
    message = re.search(r'<span id="hold_case_ref-error" class="error field-error">(.*?)</span>', page).group(1)
    assert message.startswith("Deze opname heeft al een lopende bewaring voor dit doel en zaaknummer (geplaatst op ")
    assert "door fg" in message and "T" not in message.split("geplaatst op ")[1].split(" door")[0]
    # another purpose for the same case is a hold of its own
    assert (await hold(web, rid, purpose="police_report"))[0] == 303


async def test_errors_sit_at_their_fields(web, rec_ids):
    rid = rec_ids["noord"]
    await web.as_role("team_leader")
    status, page, _ = await hold(web, rid, purpose="", case_ref="", until="gisteren")
    assert status == 400
    assert "De bewaring is niet geplaatst: zie de gemarkeerde velden." in page
    for field, tag in (("hold_purpose", "select"), ("hold_case_ref", "input"), ("hold_until", "input")):
        element = re.search(rf'<{tag} id="{field}"[^>]*>', page).group(0)
        assert 'aria-invalid="true"' in element, field
        described = re.search(r'aria-describedby="([^"]+)"', element).group(1).split()
        assert f"{field}-error" in described, field
        assert f'<span id="{field}-error" class="error field-error">' in page, field
    assert "hold_until_hint" in re.search(r'<input id="hold_until"[^>]*>', page).group(0)  # the hint stays
    assert "Geen datum en tijd: gisteren (bijvoorbeeld 20-11-2026 14:30)" in page
    ok = re.search(r'<input id="hold_case_ref"[^>]*>', await web.page(f"/opnames/{rid}")).group(0)
    assert "aria-invalid" not in ok


async def test_over_long_input_is_refused_with_a_message_not_cut(web, rec_ids):
    rid = rec_ids["noord"]
    await web.as_role("team_leader")
    status, page, _ = await hold(web, rid, case_ref=LONG_REF)
    assert status == 400
    assert "“Zaaknummer” bevat 101 tekens; er mogen er hoogstens 100 in. Er is niets opgeslagen" in page
    assert retention.list_holds(web.box.catalog, rid) == []  # not placed with a cut reference
    # a filter is not cut either: the over-long value finds nothing, and the page says why
    listing = await web.page("/opnames?camera=" + "C" * 101)
    assert "0 opnames gevonden." in listing
    assert "Een filterwaarde is langer dan 100 tekens: geen opname voldoet eraan." in listing


async def test_a_held_recording_is_held_everywhere_and_its_deletion_is_in_the_future_tense(web, rec_ids):
    rid = rec_ids["noord"]
    await web.as_role("team_leader")
    page = await web.page(f"/opnames/{rid}")
    assert "<dt>Status</dt><dd>opgeslagen</dd>" in page
    deletion = re.search(r"<dt>Verwijdering</dt><dd>(.*?)</dd>", page).group(1)
    assert deletion.startswith("gepland op 18 december 2026 om ")  # 28 days after 20 November, month in words
    assert "Verwijderd" not in page
    await hold(web, rid)
    page = await web.page(f"/opnames/{rid}")
    assert "<dt>Status</dt><dd>bewaard</dd>" in page
    assert "<dt>Verwijdering</dt><dd>niet zolang er een bewaring loopt</dd>" in page
    held = await web.page("/opnames?state=held")
    assert rid in held and "<td>bewaard</td>" in held and "<td>opgeslagen</td>" not in held
    stored = await web.page("/opnames?state=stored")  # "opgeslagen" finds what the list calls opgeslagen
    assert rid not in stored and "<td>bewaard</td>" not in stored


async def test_over_long_fields_of_other_forms_are_refused_by_name(web, rec_ids):
    await web.as_role("privacy_officer")
    response = await web.post("/overdrachten/nieuw", {"recording_ids": rec_ids["noord"], "receiver_org": "P" * 2001,
                                                      "receiver_name": "J. Jansen"}, csrf_from="/overdrachten/nieuw")
    assert response.status == 400
    assert "“Organisatie” bevat 2001 tekens; er mogen er hoogstens 2000 in." in await response.text()
    rid = rec_ids["noord"]
    response = await web.post(f"/opnames/{rid}/bewaren", {"purpose": "complaint", "case_ref": "KL-1",
                                                          "until": "x" * 41}, csrf_from=f"/opnames/{rid}")
    assert response.status == 400 and "bevat 41 tekens; er mogen er hoogstens 40 in" in await response.text()


async def test_the_request_form_marks_each_wrong_field(web):
    await web.as_role("privacy_officer")
    response = await web.post("/verzoeken", {"requester": "", "kind": "", "received_on": "morgen",
                                             "given_time": "2026-11-20T14:06", "window": "9999"},
                              csrf_from="/verzoeken/nieuw")
    assert response.status == 400
    page = await response.text()
    for field, tag in (("requester", "input"), ("kind", "select"), ("received_on", "input"), ("window", "input")):
        element = re.search(rf'<{tag} id="{field}"[^>]*>', page).group(0)
        assert 'aria-invalid="true"' in element and f"{field}-error" in element, field
    assert 'aria-invalid' not in re.search(r'<input id="given_time"[^>]*>', page).group(0)  # that one was right
    assert '<span id="received_on-error" class="error field-error">Geen datum: morgen (bijvoorbeeld 21-11-2026)' in page
    assert "received_hint" in re.search(r'<input id="received_on"[^>]*>', page).group(0)


async def test_a_domain_refusal_is_said_in_dutch_with_the_english_folded_beside_it(web):
    web.box.catalog.db["devices"].insert({"serial": "CAM-POOL", "paired": 1, "online": 1, "mode": "pooled",
                                          "status": "idle"})
    web.box.catalog.db.conn.commit()
    await web.as_role("keeper")
    shift = {"officer": "jansen", "starts": "22-11-2026 08:00", "ends": "22-11-2026 16:00"}
    assert (await web.post("/cameras/CAM-POOL/dienst", shift, csrf_from="/cameras")).status == 303
    backwards = await web.post("/cameras/CAM-POOL/dienst", {**shift, "ends": "22-11-2026 07:00"}, csrf_from="/cameras")
    assert backwards.status == 400
    assert "een dienst moet na zijn begin eindigen" in await backwards.text()  # known: translated
    clash = await web.post("/cameras/CAM-POOL/dienst", {**shift, "officer": "de Vries"}, csrf_from="/cameras")
    assert clash.status == 400
    page = await clash.text()
    assert '<p class="error" role="alert">De kluis weigerde dit; de technische details zeggen waarom.</p>' in page
    detail = re.search(r'<details class="technical"><summary>technische details</summary><span lang="en">(.*?)</span>',
                       page).group(1)
    assert detail.startswith("camera CAM-POOL is already assigned to jansen")


async def test_settings_do_not_say_no_archive_while_the_box_is_enrolled(web):
    import json

    web.box.catalog.set_meta("sync_archive", json.dumps({
        "url": "https://archief.gemeente.example", "archive_id": "A1", "archive_name": "Archief gemeente",
        "box_id": "B1", "cert_sha256": "00" * 32, "enrolled_at": "2026-11-22T13:05:00.000Z"}))
    web.box.catalog.db.conn.commit()
    await web.as_role("keeper")
    page = await web.page("/instellingen")
    assert "leeg: geen archief" not in page
    assert "leeg: het adres waarbij deze kluis is aangemeld (https://archief.gemeente.example)" in page
    assert "Archief gemeente (https://archief.gemeente.example)" in page


async def test_the_password_form_marks_the_field_it_is_about(web):
    await web.as_role("officer")
    wrong = await web.post("/account/wachtwoord", {"password": "not my password", "new_password": "a new long password",
                                                   "new_password_again": "a new long password"}, csrf_from="/account")
    page = await wrong.text()
    assert wrong.status == 400
    assert 'aria-invalid="true" aria-describedby="password-error"' in re.search(r'<input id="password"[^>]*>', page).group(0)
    assert "aria-invalid" not in re.search(r'<input id="new_password"[^>]*>', page).group(0)
    differ = await web.post("/account/wachtwoord", {"password": "x", "new_password": "a new long password",
                                                    "new_password_again": "another long password"}, csrf_from="/account")
    element = re.search(r'<input id="new_password_again"[^>]*>', await differ.text()).group(0)
    assert 'aria-invalid="true"' in element and "new_password_again-error" in element
