"""After the approval: the handover's page keeps offering the package to its approver (a reload, logging in
again), every download on record; a handover waiting for approval is shown to whoever can approve it and
approved from its own page; the transfer form is printed from the box at any time (no footage), naming
the municipality and people by full name and function; the CLI's and the web's register agree."""

from __future__ import annotations

import io
import json
import re
import zipfile

from pypdf import PdfReader

from appliance import audit, handover, users
from tests.conftest import PASSWORD, run_kluis
from tests.handover_ui.test_overdracht_web import CASE, approve, download_link, prepare
from tests.web_helpers import WebClient, https_client
from webui.site import create_app

MUNICIPALITY = "Gemeente Noorderveld"


def pdf_text(data: bytes) -> str:
    assert data.startswith(b"%PDF-")
    return re.sub(r"\s+", " ", "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages))


def name_people(box) -> None:
    users.set_person(box, "admin", "fg", "Anna Bakker", "privacybeheerder")
    users.set_person(box, "admin", "fg2", "Carel de Wit", "functionaris gegevensbescherming")
    users.set_person(box, "admin", "hh", "Jan Jansen", "handhaver")


async def test_the_download_survives_a_reload_and_each_download_is_on_record(web, ids):
    await web.login("fg")
    handover_id = await prepare(web, [ids["noord"], ids["zuid"]])
    await web.login("fg2")
    done = await approve(web, handover_id)
    page = await done.text()
    assert done.status == 200, page
    passphrase = re.search(r'id="passphrase"><code>([^<]+)</code>', page).group(1)
    link = download_link(page)

    # A reload (a plain GET of the handover's page) still offers the same package, not the passphrase.
    status, again = await web.get(f"/overdrachten/{handover_id}")
    assert status == 200 and download_link(again) == link
    assert "Download het pakket" in again and passphrase not in again and "staat tot" in again
    first = await web.client.get(link)
    assert first.status == 200 and (await first.read()).startswith(b"age-encryption.org/v1\n")

    # Logged out and in again: still offered to the approver, for the hour.
    await web.login("fg2")
    status, later = await web.get(f"/overdrachten/{handover_id}")
    assert download_link(later) == link
    second = await web.client.get(link)
    assert second.status == 200

    downloads = audit.entries(web.box.catalog, action="handover_download")
    assert len(downloads) == 4  # two downloads, one entry per recording each
    assert {(e["actor"], e["recording_id"], e["details"]["download"]) for e in downloads} == {
        ("fg2", ids[k], n) for k in ("noord", "zuid") for n in (1, 2)}
    package_sha = handover.get(web.box, handover_id)["package_sha256"]
    assert all(e["details"]["package_sha256"] == package_sha and e["case_ref"] == CASE for e in downloads)

    # Not to anyone else: the preparer's page has no link, and the link itself is refused and not recorded.
    await web.login("fg")
    status, theirs = await web.get(f"/overdrachten/{handover_id}")
    assert status == 200 and "/pakket/" not in theirs
    assert (await web.client.get(link)).status == 404
    assert len(audit.entries(web.box.catalog, action="handover_download")) == 4


async def test_a_waiting_handover_is_shown_to_who_may_approve_it_and_approved_from_its_page(web, ids):
    await web.login("tl")
    handover_id = await prepare(web, [ids["noord"]])
    status, own = await web.get("/overdrachten")
    assert handover_id in own and "Wacht op uw goedkeuring" not in own  # the team leader approves nothing

    for who in ("fg", "fg2"):  # both privacy officers may approve a team leader's handover
        await web.login(who)
        status, register = await web.get("/overdrachten")
        waiting = register.split('id="wachtend"')[1].split("</section>")[0]
        assert "Wacht op uw goedkeuring" in register and f"/overdrachten/{handover_id}#goedkeuren" in waiting

    await web.login("au")  # the auditor reads the register but approves nothing
    status, register = await web.get("/overdrachten")
    assert handover_id in register and 'id="wachtend"' not in register

    await web.login("fg")  # the preparer of a handover is not asked to approve their own
    mine = await prepare(web, [ids["zuid"]])
    status, register = await web.get("/overdrachten")
    assert f"/overdrachten/{mine}#goedkeuren" not in register and f"/overdrachten/{handover_id}#goedkeuren" in register

    await web.login("fg2")
    status, detail = await web.get(f"/overdrachten/{handover_id}")
    assert "Deze overdracht wacht op uw goedkeuring." in detail and "/goedkeuren" in detail
    done = await approve(web, handover_id)
    assert done.status == 200 and handover.get(web.box, handover_id)["state"] == handover.APPROVED
    status, register = await web.get("/overdrachten")
    assert f"/overdrachten/{handover_id}#goedkeuren" not in register and f"/overdrachten/{mine}#goedkeuren" in register


async def test_the_transfer_form_is_printed_from_the_box_with_municipality_and_people(web, ids):
    web.box.settings.box.municipality = MUNICIPALITY
    name_people(web.box)
    await web.login("fg")
    handover_id = await prepare(web, [ids["noord"]])
    status, detail = await web.get(f"/overdrachten/{handover_id}")
    assert f'href="/overdrachten/{handover_id}/formulier"' in detail
    assert "Anna Bakker (privacybeheerder)" in detail and "Jan Jansen (handhaver)" in detail  # not "fg", "hh"

    # Before approval: a draft, naming the preparer; no footage was opened for it.
    draft = await web.client.get(f"/overdrachten/{handover_id}/formulier")
    assert draft.status == 200 and draft.headers["Content-Type"] == "application/pdf"
    text = pdf_text(await draft.read())
    assert "Ontwerp" in text and CASE in text and MUNICIPALITY in text
    assert "Anna Bakker, privacybeheerder (gebruiker fg)" in text and "Jan Jansen, handhaver" in text
    assert "Verstrekkende gemeente " + MUNICIPALITY in text and "Kluis" not in text.replace("kluis export", "")
    assert not audit.entries(web.box.catalog, action="view") and not audit.entries(web.box.catalog, action="export")

    await web.login("fg2")
    assert (await approve(web, handover_id)).status == 200
    printed = await web.client.get(f"/overdrachten/{handover_id}/formulier")
    text = pdf_text(await printed.read())
    assert "Ontwerp" not in text
    assert "Carel de Wit, functionaris gegevensbescherming (gebruiker fg2)" in text
    assert "Namens de verstrekkende gemeente " + MUNICIPALITY in text
    # The approver's name and function are filled in on the municipality's side of the signatures.
    signatures = text.split("6. Ondertekening")[1]
    assert "Carel de Wit" in signatures and "functionaris gegevensbescherming" in signatures
    [export] = audit.entries(web.box.catalog, action="export")
    assert export["details"]["sha256"] in text  # the exported file's hash, from the record of the export

    # Both prints on record, one entry per recording each, and no footage in them.
    prints = audit.entries(web.box.catalog, action="handover_form")
    assert [(e["actor"], e["details"]["state"], e["details"]["footage"]) for e in prints] == [
        ("fg", "prepared", False), ("fg2", "approved", False)]

    # The auditor may print it; someone outside the handover's scope may not even see it.
    await web.login("au")
    assert (await web.client.get(f"/overdrachten/{handover_id}/formulier")).status == 200
    await web.login("fg")
    other = await prepare(web, [ids["zuid"]])
    await web.login("tl")
    assert (await web.client.get(f"/overdrachten/{other}/formulier")).status == 404
    assert len(audit.entries(web.box.catalog, action="handover_form")) == 3
    # A refused handover's form says that nothing was handed over.
    handover.refuse(web.box, other, "fg2", "geen vordering")
    await web.login("fg")
    text = pdf_text(await (await web.client.get(f"/overdrachten/{other}/formulier")).read())
    assert "Niet verstrekt: deze overdracht is geweigerd" in text and "Ontwerp" not in text


async def test_the_package_form_names_the_municipality_and_full_names(web, ids, tmp_path):
    web.box.settings.box.municipality = MUNICIPALITY
    web.box.settings.handover.single_approval = True
    name_people(web.box)
    await web.login("fg")
    handover_id = await prepare(web, [ids["noord"]], protection="none", unencrypted_ok="yes")
    done = await approve(web, handover_id, unencrypted_ok="yes")
    package = await (await web.client.get(download_link(await done.text()))).read()
    with zipfile.ZipFile(io.BytesIO(package)) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        text = pdf_text(zf.read("overdrachtsformulier.pdf"))
    assert manifest["box"]["municipality"] == MUNICIPALITY
    assert manifest["approved_by_person"] == {"login": "fg", "full_name": "Anna Bakker", "function": "privacybeheerder"}
    assert manifest["files"][0]["officer_person"]["full_name"] == "Jan Jansen"
    assert MUNICIPALITY in text and "Anna Bakker, privacybeheerder (gebruiker fg)" in text


async def test_cli_and_web_register_agree_for_a_team_leader(web, ids, tmp_path):
    await web.login("fg")
    theirs = await prepare(web, [ids["noord"]])   # the team leader's team (Noord)
    other = await prepare(web, [ids["zuid"]])     # another team only
    both = await prepare(web, [ids["noord"], ids["zuid"]])  # one of the own team's recordings among others
    await web.login("tl")
    own = await prepare(web, [ids["noord"]])
    status, register = await web.get("/overdrachten")
    on_web = set(re.findall(r'href="/overdrachten/(OV-\d{4}-\d{4})"', register))
    assert on_web == {theirs, both, own} and other not in on_web

    password_file = tmp_path / "pw"
    password_file.write_text(PASSWORD + "\n")
    out = run_kluis("export", "list", "--data", web.box.data_dir, "--json", "--user", "tl",
                    "--password-file", password_file).stdout
    assert {row["id"] for row in json.loads(out)} == on_web
    # The same domain function answers both.
    assert {h["id"] for h in handover.visible_handovers(web.box, web.box.catalog.get_user("tl"))} == on_web


async def test_a_restarted_server_still_offers_the_encrypted_package(web, ids):
    await web.login("fg")
    handover_id = await prepare(web, [ids["zuid"]])
    await web.login("fg2")
    page = await (await approve(web, handover_id)).text()
    first = await (await web.client.get(download_link(page))).read()

    # A new web UI on the same box (as after a restart): its Downloads start empty and read the records.
    async with https_client(web.box, create_app(web.box)) as client:
        restarted = WebClient(web.box, client)
        await restarted.login("fg2")
        status, again = await restarted.get(f"/overdrachten/{handover_id}")
        assert status == 200 and "Download het pakket" in again
        assert await (await client.get(download_link(again))).read() == first
    assert len(audit.entries(web.box.catalog, action="handover_download")) == 2


async def test_the_keeper_sets_the_municipality_of_an_existing_box_on_the_settings_page(web, ids):
    await web.login("admin")
    status, page = await web.get("/instellingen")
    assert status == 200 and 'name="box.municipality"' in page and "Naam van de gemeente" in page
    too_long = await web.post("/instellingen", {"box.municipality": "G" * 201}, csrf_from="/instellingen")
    assert too_long.status == 400 and "Hoogstens 200 tekens." in await too_long.text()
    saved = await web.post("/instellingen", {"box.municipality": MUNICIPALITY}, csrf_from="/instellingen")
    assert saved.status == 303 and web.box.settings.box.municipality == MUNICIPALITY
    assert "municipality = " in (web.box.data_dir / "kluis.toml").read_text()
    [change] = audit.entries(web.box.catalog, action="settings_change")
    assert change["details"] == {"box.municipality": {"old": "", "new": MUNICIPALITY}}
    await web.login("fg")
    handover_id = await prepare(web, [ids["noord"]])
    text = pdf_text(await (await web.client.get(f"/overdrachten/{handover_id}/formulier")).read())
    assert "Namens de verstrekkende gemeente " + MUNICIPALITY in text
