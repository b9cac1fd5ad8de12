"""The officer's reason for a recording and its retention categories, over a real HTTPS server: "Mijn
opnames" (the officer's own recordings, no footage), the recording's page (the team leader), the audit
entries, and "Te doen" for recordings still without a reason after [reasons] todo_days."""

from __future__ import annotations

import re
import tomllib
from datetime import timedelta

from appliance import audit, config, recording_reasons
from appliance.clock import from_iso

from tests.browser_helpers import OUTPUT, browser_page, layout_problems, login, needs_chromium, shot, with_axe
from tests.webui.conftest import CHUNK, PASSWORD
from tests.webui.test_tedoen import count_of, task

SHOTS = OUTPUT / "webui"
FOOTAGE_ACTIONS = ("view", "range_read", "export", "view_played")


def configure(box, **sections) -> None:
    """kluis.toml as the test box's, plus these sections (as a keeper editing the file would)."""
    config.write_template(box.data_dir, {"security": {"kdf_profile": "interactive"}, "storage": {"chunk_size": CHUNK},
                                         **sections})


def row(box, recording_id: str) -> dict:
    return box.catalog.get_recording(recording_id)


def footage_entries(box) -> list[dict]:
    return [e for action in FOOTAGE_ACTIONS for e in audit.entries(box.catalog, action=action)]


def no_footage(html: str) -> None:
    assert "<video" not in html and "/video/" not in html and "<img" not in html and "/bekijken" not in html


async def test_an_officer_sets_the_reason_and_warnings_of_an_own_recording_and_not_of_another(web, rec_ids):
    box = web.box
    noord, zuid = rec_ids["noord"], rec_ids["zuid"]
    await web.login("jansen")
    html = await web.page("/mijn-opnames")
    no_footage(html)
    assert f'href="/mijn-opnames/{noord}"' in html and zuid not in html  # own recordings only
    assert "1 opname heeft nog geen reden." in html and "Mijn opnames" in html
    form = await web.page(f"/mijn-opnames/{noord}")
    no_footage(form)
    for label in ("agressie", "belediging", "bedreiging", "onveilig gevoel", "anders"):
        assert f">{label}</option>" in form

    response = await web.post(f"/mijn-opnames/{noord}/reden",
                              {"reason": "threat", "warning_given": "yes", "warnings": "2"}, f"/mijn-opnames/{noord}")
    assert response.status == 303 and response.headers["Location"] == "/mijn-opnames"
    stored = row(box, noord)
    assert (stored["reason"], stored["warnings"], stored["warning_given"], stored["reason_text"]) == ("threat", 2, 1, None)
    html = await web.page("/mijn-opnames")
    assert "bedreiging" in html and "ja, 2 keer" in html and "Elke opname heeft een reden." in html
    [entry] = audit.entries(box.catalog, action="reason_set")
    assert entry["actor"] == "jansen" and entry["recording_id"] == noord
    assert entry["details"]["warnings"] == 2 and entry["details"]["before"] is None
    assert footage_entries(box) == []  # information about the recording, not a purpose to view it

    # "anders" asks for a text; a number of warnings that is none is refused at its field
    response = await web.post(f"/mijn-opnames/{noord}/reden", {"reason": "other", "warning_given": "no"},
                              f"/mijn-opnames/{noord}")
    text = await response.text()
    assert response.status == 400 and 'id="reason_text-error"' in text and 'aria-invalid="true"' in text
    response = await web.post(f"/mijn-opnames/{noord}/reden",
                              {"reason": "threat", "warning_given": "yes", "warnings": "twee"}, f"/mijn-opnames/{noord}")
    assert response.status == 400 and 'id="warnings-error"' in await response.text()
    assert row(box, noord)["warnings"] == 2  # nothing changed by a refused form
    response = await web.post(f"/mijn-opnames/{noord}/reden",
                              {"reason": "other", "reason_text": "  fietser   op de stoep ", "warning_given": "no"},
                              f"/mijn-opnames/{noord}")
    assert response.status == 303
    stored = row(box, noord)
    assert (stored["reason"], stored["reason_text"], stored["warnings"], stored["warning_given"]) == \
        ("other", "fietser op de stoep", 0, 0)

    # another officer's recording: not found, on either page, and nothing written
    for path in (f"/mijn-opnames/{zuid}/reden", f"/opnames/{zuid}/reden"):
        response = await web.post(path, {"reason": "insult", "warning_given": "no"}, "/mijn-opnames")
        assert response.status == 404, path
    assert (await web.get(f"/mijn-opnames/{zuid}"))[0] == 404
    assert row(box, zuid)["reason"] is None
    assert {e["recording_id"] for e in audit.entries(box.catalog, action="reason_set")} == {noord}
    assert footage_entries(box) == []


async def test_the_team_leader_sets_the_reason_on_the_recording_page_without_viewing(web, rec_ids):
    box = web.box
    noord = rec_ids["noord"]
    await web.login("tl")
    assert (await web.get("/mijn-opnames"))[0] == 403  # an officer's page
    response = await web.post(f"/opnames/{noord}/reden", {"reason": "aggression", "warning_given": "yes"},
                              f"/opnames/{noord}")
    assert response.status == 303
    stored = row(box, noord)
    assert (stored["reason"], stored["warnings"], stored["warning_given"]) == ("aggression", 1, 1)
    html = await web.page(f"/opnames/{noord}")
    assert "agressie" in html and "ja, 1 keer" in html
    assert footage_entries(box) == []
    [entry] = audit.entries(box.catalog, action="reason_set")
    assert entry["actor"] == "tl"


async def test_te_doen_lists_recordings_without_a_reason_after_n_days(web, rec_ids):
    box = web.box
    noord, zuid, recent = rec_ids["noord"], rec_ids["zuid"], rec_ids["hostile"]
    # the box's clock is two days after noord ended, one day (less two seconds) after the recent one
    assert box.clock() - from_iso(row(box, recent)["end_time"]) < timedelta(days=1)
    configure(box, reasons={"todo_days": 1})

    await web.login("tl")
    item = task(await web.page("/"), "reason_missing")
    assert item and "Opnames zonder reden" in item and count_of(item) == 1
    assert f'href="/opnames/{noord}#reden"' in item and zuid not in item and recent not in item  # own team, old enough
    listed = await web.page("/opnames?reason=none")
    assert f"/opnames/{noord}" in listed and f"/opnames/{zuid}" not in listed

    await web.login("jansen")
    item = task(await web.page("/"), "reason_missing")
    assert item and count_of(item) == 1 and f'href="/mijn-opnames/{noord}"' in item
    await web.post(f"/mijn-opnames/{noord}/reden", {"reason": "insult", "warning_given": "no"}, f"/mijn-opnames/{noord}")
    assert task(await web.page("/"), "reason_missing") is None
    await web.login("tl")
    assert task(await web.page("/"), "reason_missing") is None

    for name in ("fg", "admin", "audit"):  # not theirs to fill in
        await web.login(name)
        assert task(await web.page("/"), "reason_missing") is None

    configure(box, reasons={"todo_days": 3})  # not yet due for anyone
    box.catalog.db.execute("UPDATE recordings SET reason = NULL")
    box.catalog.db.conn.commit()
    await web.login("tl")
    assert task(await web.page("/"), "reason_missing") is None


async def test_categories_set_on_the_pages_change_the_deletion_date_and_are_audited(web, rec_ids):
    box = web.box
    noord = rec_ids["noord"]
    configure(box, retention={"categories": {"incident": 90, "evenement": 60}})
    end = from_iso(row(box, noord)["end_time"])

    await web.login("jansen")
    response = await web.post(f"/mijn-opnames/{noord}/categorie", {"add": "evenement"}, f"/mijn-opnames/{noord}")
    assert response.status == 303
    html = await web.page(f"/mijn-opnames/{noord}")
    no_footage(html)
    assert "evenement" in html and (end + timedelta(days=60)).astimezone().strftime("%Y") in html

    await web.login("tl")
    assert (await web.post(f"/opnames/{noord}/categorie", {"add": "incident"}, f"/opnames/{noord}")).status == 303
    assert (await web.post(f"/opnames/{noord}/categorie", {"add": "onzin"}, f"/opnames/{noord}")).status == 400
    html = await web.page(f"/opnames/{noord}")
    section = html[html.index('id="categorieen"'):html.index("</section>", html.index('id="categorieen"'))]
    assert "incident" in section and "evenement" in section and "90 dagen" in section
    deletion = re.search(r'id="verwijderdatum">(.*?)</p>', section, re.DOTALL).group(1)
    assert "90 dagen" in deletion  # the longest term of the two

    await web.login("jansen")  # an officer takes off only what they put on
    response = await web.post(f"/mijn-opnames/{noord}/categorie", {"remove": "incident"}, f"/mijn-opnames/{noord}")
    assert response.status == 400 and "teamleider" in await response.text()
    response = await web.post(f"/mijn-opnames/{noord}/categorie", {"remove": "evenement"}, f"/mijn-opnames/{noord}")
    assert response.status == 303

    entries = audit.entries(box.catalog, action="category_change")
    assert [(e["actor"], e["details"]["added"], e["details"]["removed"]) for e in entries] == [
        ("jansen", ["evenement"], []), ("tl", ["incident"], []), ("jansen", [], ["evenement"])]
    assert [e["details"]["term_days"] for e in entries] == [60, 90, 90]
    assert entries[1]["details"]["delete_after"].startswith((end + timedelta(days=90)).date().isoformat())
    assert footage_entries(box) == []
    await web.login("fg")
    logboek = await web.page(f"/logboek?recording={noord}")
    assert "wijzigde de bewaarcategorieën van opname" in logboek


@needs_chromium
async def test_in_chromium_an_officer_fills_in_the_reason_after_the_shift(web_box, rec_ids):
    """From "Te doen" to the recording on "Mijn opnames", the reason and two warnings, back to the list."""
    noord = rec_ids["noord"]
    configure(web_box, reasons={"todo_days": 1}, retention={"categories": {"incident": 90}})
    async with browser_page(web_box, SHOTS) as page:
        await with_axe(page.context)
        await login(page, "jansen", PASSWORD)
        await page.locator("#todo-reason_missing").get_by_role("link", name=re.compile("20-11-2026")).click()
        await page.wait_for_url(f"**/mijn-opnames/{noord}")
        assert await page.locator("video, img").count() == 0
        await page.get_by_label("Reden", exact=True).select_option("threat")
        await page.get_by_label("ja").check()
        await page.get_by_label("Hoe vaak").fill("2")
        await shot(page, SHOTS, "mijn-opname-reden")
        await page.get_by_role("button", name="Opslaan").click()
        await page.wait_for_url("**/mijn-opnames")
        assert "Reden voor opname opgeslagen" in await page.content() or "opgeslagen" in await page.content()
        cells = page.locator(f'tr:has(a[href="/mijn-opnames/{noord}"]) td')
        assert "bedreiging" in await cells.nth(3).inner_text() and "2 keer" in await cells.nth(4).inner_text()
        await shot(page, SHOTS, "mijn-opnames")
        assert (await layout_problems(page))[1] == []

        # a category, on a phone: the deletion date follows the category's term
        await page.set_viewport_size({"width": 390, "height": 844})
        await page.goto(f"/mijn-opnames/{noord}")
        await page.get_by_label("Categorie toevoegen").select_option("incident")
        await page.get_by_role("button", name="Toevoegen").click()
        await page.wait_for_url(f"**/mijn-opnames/{noord}#categorieen")
        assert "90 dagen na het einde" in await page.locator("#verwijderdatum").inner_text()
        assert (await layout_problems(page))[1] == []
        await shot(page, SHOTS, "mijn-opname-categorie")
        await page.get_by_role("button", name="Categorie incident weghalen").click()
        await page.wait_for_url(f"**/mijn-opnames/{noord}#categorieen")
        assert "28 dagen na het einde" in await page.locator("#verwijderdatum").inner_text()
    stored = web_box.catalog.get_recording(noord)
    assert (stored["reason"], stored["warnings"], stored["category"]) == ("threat", 2, None)
    assert footage_entries(web_box) == []


async def test_the_keeper_sets_the_days_before_a_missing_reason_is_listed(web):
    await web.as_role("keeper")
    page = await web.page("/instellingen")
    assert 'id="reasons.todo_days"' in page and "Reden van de opname ontbreekt na (dagen)" in page
    response = await web.post("/instellingen", {"reasons.todo_days": "5"}, "/instellingen")
    assert response.status == 303
    assert recording_reasons.current(web.box).todo_days == 5
    assert tomllib.loads((web.box.data_dir / config.FILENAME).read_text())["reasons"]["todo_days"] == 5
    change = audit.entries(web.box.catalog, action="settings_change")[-1]
    assert change["details"]["reasons.todo_days"] == {"old": 3, "new": 5}
    refused = await web.post("/instellingen", {"reasons.todo_days": "0"}, "/instellingen")
    assert refused.status == 400 and recording_reasons.current(web.box).todo_days == 5
