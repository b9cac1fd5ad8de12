"""Every form confirms the same way and marks a refused field at the field (issue 18, item 8):

- a change that succeeds says so once, on the page its redirect leads to (flash, role=status), and a
  reload of that page says nothing (no ?ok= in the address that would repeat it);
- a refused field carries aria-invalid="true" and aria-describedby naming the element that holds its
  message (next to the field), besides the one-line summary at the top.
Real server, real SQLite, real forms (tests/webui/conftest.py)."""

from __future__ import annotations

import re

from appliance import handover, maintenance, update
from appliance.dock import devices
from tests.webui.test_feedback import flash_of

NEW_PASSWORD = "een nieuw lang wachtwoord"


async def confirmed_once(web, response, path: str) -> str:
    """The redirect of a successful POST leads to `path` (no query), whose page shows exactly one
    confirmation; a reload shows none. Returns the confirmation."""
    assert response.status == 303, await response.text()
    location = response.headers["Location"]
    assert location.split("#")[0] == path, location
    said = flash_of(await web.page(path))
    assert len(said) == 1, said
    assert flash_of(await web.page(path)) == [], "a reload repeats the confirmation"
    return said[0]


def marked(page: str, field: str, tag: str = "input") -> str:
    """The field `field` (an element with that id) is marked invalid and described by its message; returns
    the message."""
    element = re.search(rf'<{tag} id="{re.escape(field)}"[^>]*>', page)
    assert element, f"no <{tag} id={field}>"
    element = element.group(0)
    assert 'aria-invalid="true"' in element, element
    described = re.search(r'aria-describedby="([^"]+)"', element)
    assert described and f"{field}-error" in described.group(1).split(), element
    message = re.search(rf'<span id="{re.escape(field)}-error" class="error field-error">(.*?)</span>', page, re.S)
    assert message and message.group(1).strip(), f"no message for {field}"
    return message.group(1)


def marked_group(page: str, name: str) -> str:
    """Every radio button of group `name` is marked invalid and described by the group's message."""
    radios = re.findall(rf'<input type="radio" name="{name}"[^>]*>', page)
    assert radios and all('aria-invalid="true"' in r and f'aria-describedby="{name}-error"' in r for r in radios), radios
    return re.search(rf'<span id="{name}-error" class="error field-error">(.*?)</span>', page, re.S).group(1)


def not_marked(page: str, field: str, tag: str = "input") -> None:
    element = re.search(rf'<{tag} id="{re.escape(field)}"[^>]*>', page).group(0)
    assert "aria-invalid" not in element, element


def row_index(page: str, user: str) -> int:
    """The number the users page gives `user`'s row (its fields are role-N, team-N, pw-N, ...)."""
    summaries = re.findall(r"<summary>(.*?) wijzigen</summary>", page)
    return summaries.index(user) + 1


# Confirmations ---------------------------------------------------------------------------------------

async def test_user_changes_are_each_confirmed_once(web):
    await web.as_role("keeper")
    added = await web.post("/gebruikers", {"name": "pietersen", "role": "officer", "team": "Noord",
                                           "password": NEW_PASSWORD}, csrf_from="/gebruikers")
    assert await confirmed_once(web, added, "/gebruikers") == "Gebruiker pietersen toegevoegd."
    steps = [
        ("/gebruikers/pietersen/persoon", {"full_name": "P. Pietersen", "function": "handhaver"},
         "Naam en functie van pietersen opgeslagen."),
        ("/gebruikers/pietersen/rol", {"role": "officer", "team": "Zuid"},
         "Rol en team van pietersen opgeslagen; ze gelden vanaf de volgende keer inloggen."),
        ("/gebruikers/pietersen/wachtwoord", {"password": NEW_PASSWORD + "!"},
         "Wachtwoord van pietersen opnieuw ingesteld."),
        ("/gebruikers/pietersen/uitschakelen", {"disabled": "1"},
         "Account pietersen uitgeschakeld; de sessies ervan zijn beëindigd."),
        ("/gebruikers/pietersen/uitschakelen", {"disabled": "0"}, "Account pietersen ingeschakeld."),
    ]
    for path, data, said in steps:
        response = await web.post(path, data, csrf_from="/gebruikers")
        assert await confirmed_once(web, response, "/gebruikers") == said, path


async def test_camera_changes_and_read_alerts_are_confirmed_once(web):
    web.box.catalog.db["devices"].insert({"serial": "CAM-POOL", "paired": 1, "online": 1, "mode": "pooled",
                                          "status": "idle"})
    web.box.catalog.db.conn.commit()
    devices.alert(web.box, "pair_refused", "pairing CAM-X refused: wrong code", serial="CAM-X")
    await web.as_role("keeper")
    shift = {"officer": "jansen", "starts": "22-11-2026 08:00", "ends": "22-11-2026 16:00"}
    response = await web.post("/cameras/CAM-POOL/dienst", shift, csrf_from="/cameras")
    assert await confirmed_once(web, response, "/cameras") == \
        "Camera CAM-POOL is voor de dienst toegewezen aan jansen."
    response = await web.post("/cameras/CAM-POOL/toewijzen", {"mode": "pooled", "pre_record_s": "20",
                                                              "post_record_s": "10"}, csrf_from="/cameras")
    assert await confirmed_once(web, response, "/cameras") == \
        "Wijzigingen voor camera CAM-POOL opgeslagen. De camera krijgt ze bij de volgende keer in het dock."
    page = await web.page("/cameras")
    up_to = re.search(r'name="up_to" value="(\d+)"', page).group(1)
    response = await web.post("/cameras/meldingen/gelezen", {"up_to": up_to}, csrf_from="/cameras")
    assert await confirmed_once(web, response, "/cameras") == "Meldingen als gelezen gemarkeerd."


async def test_settings_and_a_backup_are_confirmed_once(web, tmp_path):
    await web.as_role("keeper")
    page = await web.page("/instellingen")
    form = {name: value for name, value in re.findall(r'<input id="[^"]+" name="([^"]+)" type="(?!checkbox)[^"]+" value="([^"]*)"',
                                                       page)}
    response = await web.post("/instellingen", {**form, "retention.default_days": "35"}, csrf_from="/instellingen")
    assert await confirmed_once(web, response, "/instellingen") == "Instellingen opgeslagen."
    response = await web.post("/instellingen", {**form, "retention.default_days": "35"}, csrf_from="/instellingen")
    assert await confirmed_once(web, response, "/instellingen") == "Er is niets gewijzigd."

    usb = tmp_path / "usb"
    usb.mkdir()
    response = await web.post("/onderhoud/backup", {"target": str(usb)}, csrf_from="/onderhoud")
    assert await confirmed_once(web, response, "/onderhoud") == f"Back-up gemaakt in {usb}."


async def prepare(web, rid: str, **changes):
    form = {"recording_ids": rid, "receiver_org": "Politie Midden-Nederland", "receiver_name": "J. Jansen",
            "basis_kind": "vrijwillig", "case_ref": "PL0900-2026-1", "purpose": "police_report",
            "protection": "passphrase", "action": "prepare", **changes}
    return await web.post("/overdrachten/nieuw", form, csrf_from="/overdrachten/nieuw")


async def test_a_handover_prepared_refused_or_cancelled_is_confirmed_once(web, rec_ids):
    await web.as_role("team_leader")
    response = await prepare(web, rec_ids["noord"])
    handover_id = response.headers["Location"].rsplit("/", 1)[1]
    path = f"/overdrachten/{handover_id}"
    assert await confirmed_once(web, response, path) == \
        f"Overdracht {handover_id} is vastgelegd. Nu moet een tweede persoon haar goedkeuren."
    response = await web.post(f"{path}/intrekken", {"reason": "verkeerde opname"}, csrf_from=path)
    assert await confirmed_once(web, response, path) == "De overdracht is ingetrokken."
    assert handover.get(web.box, handover_id)["state"] == handover.CANCELLED

    second = (await prepare(web, rec_ids["noord"])).headers["Location"]
    await web.as_role("privacy_officer")
    response = await web.post(f"{second}/weigeren", {"reason": "geen grondslag"}, csrf_from=second)
    assert await confirmed_once(web, response, second) == "De overdracht is geweigerd."


async def test_a_registered_request_is_confirmed_once_on_its_page(web):
    await web.as_role("privacy_officer")
    response = await web.post("/verzoeken", {"requester": "Anna de Wit", "kind": "objection",
                                             "received_on": "2026-11-21", "given_time": "2026-11-20T14:06",
                                             "camera": "CAM001"}, csrf_from="/verzoeken/nieuw")
    path = response.headers["Location"]
    assert "?" not in path
    said = await confirmed_once(web, response, path)
    assert re.fullmatch(r"Geregistreerd\. \d+ opnames? gevonden en bewaard voor dit verzoek\.", said), said


# Field errors ----------------------------------------------------------------------------------------

async def test_the_user_forms_mark_the_refused_field(web):
    await web.as_role("keeper")
    response = await web.post("/gebruikers", {"name": "kort", "role": "officer", "password": "kort"},
                              csrf_from="/gebruikers")
    page = await response.text()
    assert response.status == 400
    assert '<p class="error" role="alert">Er is niets opgeslagen: zie het gemarkeerde veld.</p>' in page
    assert "minstens 10 tekens" in marked(page, "new-password")
    not_marked(page, "new-name")
    assert 'value="kort"' in re.search(r'<input id="new-name"[^>]*>', page).group(0)  # the form is kept

    response = await web.post("/gebruikers", {"name": "tl2", "role": "team_leader", "password": NEW_PASSWORD},
                              csrf_from="/gebruikers")
    page = await response.text()
    assert "teamleider heeft een team nodig" in marked(page, "new-team").lower()
    # the hint of the person fields stays described while the field is fine
    assert 'aria-describedby="new-person-hint"' in re.search(r'<input id="new-full-name"[^>]*>', page).group(0)

    # a row's own form: the row opens and its field is marked, no other row's
    response = await web.post("/gebruikers/jansen/rol", {"role": "team_leader", "team": ""}, csrf_from="/gebruikers")
    page = await response.text()
    n = row_index(page, "jansen")
    marked(page, f"team-{n}")
    assert "<details open><summary>jansen wijzigen</summary>" in page
    assert page.count('aria-invalid="true"') == 1
    response = await web.post("/gebruikers/jansen/wachtwoord", {"password": "kort"}, csrf_from="/gebruikers")
    page = await response.text()
    assert "minstens 10 tekens" in marked(page, f"pw-{row_index(page, 'jansen')}")


async def test_the_pairing_form_marks_serial_and_code(web):
    await web.as_role("keeper")
    response = await web.post("/cameras/koppelen", {"serial": "", "code": ""}, csrf_from="/cameras")
    page = await response.text()
    assert response.status == 400
    assert "De camera is niet gekoppeld: zie de gemarkeerde velden." in page
    assert marked(page, "pair-serial") == "Vul het serienummer van de camera in."
    assert marked(page, "pair-code") == "Vul de code in die op het scherm van de camera staat."
    response = await web.post("/cameras/koppelen", {"serial": "CAM-9", "code": "12"}, csrf_from="/cameras")
    page = await response.text()
    assert response.status == 400
    marked(page, "pair-code")  # a code that is not 8 digits is about the code
    not_marked(page, "pair-serial")
    assert 'value="CAM-9"' in re.search(r'<input id="pair-serial"[^>]*>', page).group(0)


async def test_the_handover_form_marks_each_wrong_field(web, rec_ids):
    rid = rec_ids["noord"]
    await web.as_role("team_leader")
    response = await prepare(web, rid, receiver_org="", receiver_name="J. Jansen", basis_kind="", case_ref="",
                             purpose="", protection="", **{f"from_{rid}": "morgen", f"to_{rid}": ""})
    page = await response.text()
    assert response.status == 400
    marked(page, "receiver_org")
    not_marked(page, "receiver_name")
    assert "grondslag" in marked_group(page, "basis_kind")
    marked(page, "case_ref")
    marked(page, "purpose", "select")
    marked_group(page, "protection")
    assert "geen tijd" in marked(page, f"from_{rid}")
    assert "window_hint" in re.search(rf'<input id="from_{rid}"[^>]*>', page).group(0)  # the hint stays
    not_marked(page, f"to_{rid}")

    response = await prepare(web, rid, **{f"from_{rid}": "15", f"to_{rid}": "5"})
    marked(await response.text(), f"to_{rid}")  # the end before the start: the end is wrong
    response = await prepare(web, rid, protection="age-recipient", age_recipient="geen sleutel")
    marked(await response.text(), "age_recipient")


async def test_the_handover_page_marks_the_reason_and_the_password(web, rec_ids):
    await web.as_role("team_leader")
    path = (await prepare(web, rec_ids["noord"])).headers["Location"]
    response = await web.post(f"{path}/intrekken", {"reason": ""}, csrf_from=path)
    assert response.status == 400
    assert marked(await response.text(), "reason") == "Geef een reden."
    await web.as_role("privacy_officer")
    response = await web.post(f"{path}/goedkeuren", {"password": "niet mijn wachtwoord"}, csrf_from=path)
    page = await response.text()
    assert response.status == 400
    assert "password-hint" in re.search(r'<input id="password"[^>]*>', page).group(0)
    marked(page, "password")


async def test_the_redaction_form_marks_the_advanced_field_and_the_purpose(web, rec_ids):
    rid = rec_ids["noord"]
    await web.as_role("privacy_officer")
    form = {"purpose": "access_request", "case_ref": "", "request_ref": "", "reason": "", "keep": "",
            "boxes": "dit is geen box", "mute": "", "faces": "1", "bekijk": "", "t": "0"}
    response = await web.post(f"/opnames/{rid}/redigeren", form, csrf_from=f"/opnames/{rid}/redigeren")
    page = await response.text()
    assert response.status == 400
    assert "Er is niets gestart: zie het gemarkeerde veld." in page
    marked(page, "boxes", "textarea")
    not_marked(page, "keep", "textarea")
    assert '<details id="geavanceerd" open>' in page  # the marked field is not hidden in a closed toggle
    response = await web.post(f"/opnames/{rid}/redigeren/voorbeeld", {**form, "mute": "tien tot twaalf", "boxes": ""},
                              csrf_from=f"/opnames/{rid}/redigeren")
    page = await response.text()
    assert response.status == 400 and "Not understood" not in page
    marked(page, "mute", "textarea")
    response = await web.post(f"/opnames/{rid}/redigeren", {**form, "purpose": "", "boxes": ""},
                              csrf_from=f"/opnames/{rid}/redigeren")
    marked(await response.text(), "purpose", "select")


async def test_settings_and_maintenance_mark_their_fields(web):
    await web.as_role("keeper")
    page = await web.page("/instellingen")
    form = {name: value for name, value in re.findall(r'<input id="[^"]+" name="([^"]+)" type="[^"]+" value="([^"]*)"',
                                                       page)}
    response = await web.post("/instellingen", {**form, "retention.default_days": "veertig"}, csrf_from="/instellingen")
    page = await response.text()
    assert response.status == 400
    marked(page, "retention.default_days")
    assert "retention.default_days-hint" in re.search(r'<input id="retention.default_days"[^>]*>', page).group(0)
    not_marked(page, "retention.review_days")

    response = await web.post("/onderhoud/backup", {"target": "usb"}, csrf_from="/onderhoud")
    page = await response.text()
    assert response.status == 400 and "Er is niets gedaan: zie het gemarkeerde veld." in page
    assert "volledige pad" in marked(page, "target")


async def test_an_update_that_no_longer_checks_out_is_said_in_dutch(web):
    staged = maintenance.update_dir(web.box) / update.STAGED
    staged.write_bytes(b"not a signed bundle")
    await web.as_role("keeper")
    page = await web.page("/onderhoud")
    assert "De klaargezette update klopt niet meer (de handtekening of de inhoud is veranderd" in page
    english = re.search(r'<details class="technical"><summary>technische details</summary><span lang="en">(.*?)</span>',
                        page, re.S)
    assert english and english.group(1).strip()
    error = re.search(r'<p class="error" role="alert">(.*?)</p>', page, re.S).group(1)
    assert english.group(1) not in error  # the English is only under the toggle


async def test_rewrapping_for_the_archive_is_confirmed_once(web):
    await web.as_role("keeper")
    response = await web.post("/instellingen/herverpakken", {}, csrf_from="/instellingen")
    assert await confirmed_once(web, response, "/instellingen") == \
        "Geen opname in de wachtrij hoefde opnieuw verpakt te worden."  # not enrolled: nothing queued


async def test_the_recording_page_marks_its_forms_fields(web, rec_ids):
    rid = rec_ids["noord"]
    page_path = f"/opnames/{rid}"
    await web.as_role("team_leader")
    response = await web.post(f"{page_path}/bekijken", {"purpose": "complaint", "case_ref": ""}, csrf_from=page_path)
    page = await response.text()
    assert response.status == 400
    assert "zaaknummer" in marked(page, "case_ref").lower()
    assert "case_ref_hint" in re.search(r'<input id="case_ref"[^>]*>', page).group(0)
    not_marked(page, "purpose", "select")
    response = await web.post(f"{page_path}/bekijken", {"purpose": "", "case_ref": ""}, csrf_from=page_path)
    marked(await response.text(), "purpose", "select")
    response = await web.post(f"{page_path}/reden", {"reason": ""}, csrf_from=page_path)
    assert response.status == 400
    marked(await response.text(), "reason", "select")

    await web.as_role("privacy_officer")
    response = await web.post(f"{page_path}/exporteren", {"purpose": "complaint", "case_ref": ""}, csrf_from=page_path)
    assert response.status == 400
    marked(await response.text(), "export_case_ref")
    await web.post(f"{page_path}/bewaren", {"purpose": "complaint", "case_ref": "KL-1", "until": ""},
                   csrf_from=page_path)
    hold_id = re.search(r'name="hold" value="(\d+)"', await web.page(page_path)).group(1)
    response = await web.post(f"{page_path}/vrijgeven", {"hold": hold_id, "reason": ""}, csrf_from=page_path)
    assert response.status == 400
    assert marked(await response.text(), f"release-{hold_id}") == "Geef de reden om de bewaring vrij te geven."


async def test_the_request_page_marks_its_forms_fields(web, rec_ids):
    await web.as_role("privacy_officer")
    response = await web.post("/verzoeken", {"requester": "Anna de Wit", "kind": "objection",
                                             "received_on": "2026-11-21", "given_time": "2026-11-20T14:06",
                                             "camera": "CAM001"}, csrf_from="/verzoeken/nieuw")
    path = response.headers["Location"]
    await web.page(path)  # the confirmation is read
    response = await web.post(f"{path}/koppelen", {"recording": "NIET-1"}, csrf_from=path)
    page = await response.text()
    assert response.status == 400 and marked(page, "link_recording") == "Er is geen opname NIET-1."
    assert 'value="NIET-1"' in re.search(r'<input id="link_recording"[^>]*>', page).group(0)
    response = await web.post(f"{path}/afsluiten", {"outcome": ""}, csrf_from=path)
    marked(await response.text(), "outcome", "select")
    response = await web.post(f"{path}/afsluiten", {"outcome": "upheld", "decision_ref": ""}, csrf_from=path)
    page = await response.text()
    marked(page, "decision_ref")
    assert "decision_hint" in re.search(r'<input id="decision_ref"[^>]*>', page).group(0)
    linked = re.search(r'<input type="hidden" name="recording" value="([^"]+)">', page)  # the search found noord
    assert linked and linked.group(1) == rec_ids["noord"]
    response = await web.post(f"{path}/ontkoppelen", {"recording": linked.group(1), "reason": ""}, csrf_from=path)
    page = await response.text()
    assert response.status == 400 and page.count('aria-invalid="true"') == 1  # that row's reason, no other field
    assert re.search(r'<input id="unlink-\d+" name="reason" required maxlength="500" aria-invalid="true" '
                     r'aria-describedby="unlink-\d+-error">', page)


async def test_the_camera_forms_mark_their_fields(web):
    web.box.catalog.db["devices"].insert({"serial": "CAM-POOL", "paired": 1, "online": 1, "mode": "pooled",
                                          "status": "idle"})
    web.box.catalog.db.conn.commit()
    await web.as_role("keeper")
    shift = {"officer": "jansen", "starts": "22-11-2026 08:00", "ends": "22-11-2026 07:00"}
    response = await web.post("/cameras/CAM-POOL/dienst", shift, csrf_from="/cameras")
    page = await response.text()
    assert response.status == 400
    n = re.findall(r"<summary>(.*?) wijzigen</summary>", page).index("CAM-POOL") + 1
    assert "na zijn begin eindigen" in marked(page, f"shift-to-{n}")
    not_marked(page, f"shift-from-{n}")
    assert "<details open><summary>CAM-POOL wijzigen</summary>" in page
    response = await web.post("/cameras/CAM-POOL/dienst", {**shift, "starts": "morgen"}, csrf_from="/cameras")
    marked(await response.text(), f"shift-from-{n}")
    response = await web.post("/cameras/CAM-POOL/toewijzen", {"mode": "pooled", "pre_record_s": "veel",
                                                              "post_record_s": "10"}, csrf_from="/cameras")
    page = await response.text()
    assert response.status == 400
    assert "hele seconden" in marked(page, f"pre-{n}")

    response = await web.post("/cameras/axis/verbindingsbestand", {"site": "", "url": ""}, csrf_from="/cameras")
    page = await response.text()
    assert response.status == 400
    marked(page, "axis-site")
    assert "axis-site-hint" in re.search(r'<input id="axis-site"[^>]*>', page).group(0)
