"""/verwerkingsregister over real HTTPS: the privacy officer's page with the two documents, each as PDF and
Markdown, made from the box's settings at the moment of the download and on record in the audit log."""

from __future__ import annotations

import io

import pypdf

from appliance import audit, config, roles
from appliance.purposes import PURPOSES


async def test_the_privacy_officer_downloads_both_documents_made_from_the_settings_now(web):
    await web.as_role(roles.PRIVACY_OFFICER)
    page = await web.page("/verwerkingsregister")
    for href in ("/verwerkingsregister.pdf", "/verwerkingsregister.md", "/verwerkingsregister/dpia.pdf",
                 "/verwerkingsregister/dpia.md"):
        assert f'href="{href}"' in page
    assert 'href="/verwerkingsregister"' in page  # in the navigation

    response = await web.client.get("/verwerkingsregister.pdf")
    assert response.status == 200 and response.content_type == "application/pdf"
    assert "attachment" in response.headers["Content-Disposition"]
    pdf = pypdf.PdfReader(io.BytesIO(await response.read()))
    text = " ".join(" ".join(p.extract_text() for p in pdf.pages).split())
    assert all(label.nl in text for label in PURPOSES.values()) and "28 dagen na het einde" in text

    # The web UI runs for months: a setting changed since it started is in the next download.
    config.change(web.box.data_dir, {"retention": {"default_days": 42}, "privacy": {"legal_basis": "art. 6 lid 1 e AVG"}})
    response = await web.client.get("/verwerkingsregister/dpia.md")
    assert response.status == 200 and response.content_type == "text/markdown"
    text = " ".join((await response.text()).split())
    assert "Feitenblad voor de DPIA" in text and "42 dagen na het einde" in text and "art. 6 lid 1 e AVG" in text

    made = audit.entries(web.box.catalog, action="register_export")
    assert [(e["actor"], e["details"]["document"], e["details"]["format"]) for e in made] == [
        ("fg", "register", "pdf"), ("fg", "dpia", "md")]
    assert all(e["client"].startswith("web ") for e in made)


async def test_other_roles_get_neither_page_nor_document(web):
    for role in (roles.KEEPER, roles.TEAM_LEADER, roles.OFFICER, roles.AUDITOR):
        await web.as_role(role)
        assert (await web.get("/verwerkingsregister"))[0] == 403
        assert (await web.get("/verwerkingsregister/dpia.pdf"))[0] == 403
        assert 'href="/verwerkingsregister"' not in await web.page("/")
    assert not audit.entries(web.box.catalog, action="register_export")


async def test_the_keeper_states_what_the_box_cannot_know_and_the_register_says_it(web):
    from tests.web_helpers import csrf_of

    await web.as_role(roles.KEEPER)
    page = await web.page("/instellingen")
    assert 'name="privacy.controller"' in page and 'name="audit.term_days"' in page
    refused = await web.client.post("/instellingen", data={"csrf": csrf_of(page), "audit.term_days": "30"})
    assert refused.status == 400 and "90" in await refused.text()  # below the audit log's shortest term
    form = {"csrf": csrf_of(page), "audit.term_days": "500",
            "privacy.controller": "College van B&W van Testdorp, Raadhuisplein 1",
            "privacy.dpo": "FG Testdorp, privacy@testdorp.example"}
    response = await web.client.post("/instellingen", data=form, allow_redirects=False)
    assert response.status == 303
    change = audit.entries(web.box.catalog, action="settings_change")[-1]
    assert change["details"]["audit.term_days"] == {"old": 730, "new": 500}

    await web.as_role(roles.PRIVACY_OFFICER)
    text = " ".join((await (await web.client.get("/verwerkingsregister.md")).text()).split())
    assert "College van B&W van Testdorp, Raadhuisplein 1" in text and "FG Testdorp, privacy@testdorp.example" in text
    assert "**Logboek**: 500 dagen" in text and "[privacy] legal_basis" in text  # the one still not stated
