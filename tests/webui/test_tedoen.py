"""The overview's "Te doen" block per role (appliance/todo.py), the cameras only this box's for non-keepers
and the keeper's "Gevonden" list, over a real HTTPS server. Failing sync: tests/sync/test_sync_todo.py."""

from __future__ import annotations

import re
from datetime import timedelta

from appliance import handover, retention
from appliance.clock import to_iso
from appliance.dock import devices

from tests.browser_helpers import OUTPUT, browser_page, login, needs_chromium, press, shot
from tests.webui.conftest import NOW, PASSWORD

SHOTS = OUTPUT / "webui"

FORM = {"requester": "P. de Boer", "kind": "access_request", "received_on": "2026-11-21",
        "given_time": "2026-11-20T14:05", "place": "Oudegracht", "camera": "", "officer": "", "window": "15",
        "contact": "", "notes": ""}


def todo_block(html: str) -> str:
    start = html.index('id="te-doen"')
    return html[start:html.index("</section>", start)]


def task(html: str, kind: str) -> str | None:
    """The one task's <li> in the block (None when the block does not list that kind)."""
    block = todo_block(html)
    match = re.search(rf'<li id="todo-{kind}".*?</ul>', block, re.DOTALL)
    return match.group(0) if match else None


def count_of(item: str) -> int:
    return int(re.search(r'<strong class="count">(\d+)</strong>', item).group(1))


async def test_handovers_waiting_are_shown_to_the_approver_and_to_the_own_team_only(web, rec_ids):
    box = web.box
    noord = handover.prepare(box, "tl", [rec_ids["noord"]], "Politie Utrecht", "art. 126nd Sv", "PV-NOORD-1",
                             "police_report", "none")
    zuid = handover.prepare(box, "fg", [rec_ids["zuid"]], "Politie Utrecht", "art. 126nd Sv", "PV-ZUID-2",
                            "police_report", "none")

    await web.login("tl")
    item = task(await web.page("/"), "handover_waiting")
    assert item and "Overdrachten van uw team die op goedkeuring wachten" in item and count_of(item) == 1
    assert f'href="/overdrachten/{noord}"' in item and "PV-NOORD-1" in item and "voorbereid door tl" in item
    assert zuid not in item and "PV-ZUID-2" not in item  # another team's handover
    assert task(await web.page("/"), "handover_approve") is None  # a team leader approves nothing

    await web.login("fg")
    item = task(await web.page("/"), "handover_approve")
    assert item and "Overdrachten die op uw goedkeuring wachten" in item and count_of(item) == 1
    assert f'href="/overdrachten/{noord}"' in item
    assert zuid not in item  # four eyes: fg prepared it, someone else approves it

    handover.cancel(box, noord, "tl", "not needed after all")
    assert task(await web.page("/"), "handover_approve") is None
    await web.login("tl")
    assert task(await web.page("/"), "handover_waiting") is None

    for name in ("admin", "jansen", "audit"):  # none of their business
        await web.login(name)
        html = await web.page("/")
        assert "PV-NOORD-1" not in todo_block(html) and "PV-ZUID-2" not in todo_block(html)


async def test_privacy_officer_sees_requests_near_and_past_their_deadline(web):
    await web.login("fg")
    paths = {}
    for key, received in (("late", "2026-10-20"), ("near", "2026-10-27"), ("later", "2026-11-21")):
        response = await web.post("/verzoeken", {**FORM, "received_on": received}, "/verzoeken/nieuw")
        assert response.status == 303, await response.text()
        paths[key] = response.headers["Location"].split("?")[0]
    html = await web.page("/")
    overdue, near = task(html, "request_overdue"), task(html, "request_due")
    assert overdue and "Verzoeken over hun uiterste datum" in overdue and count_of(overdue) == 1
    assert f'href="{paths["late"]}"' in overdue and "(2 dagen te laat)" in overdue and 'class="error"' in overdue
    assert near and "Verzoeken bij hun uiterste datum" in near and count_of(near) == 1
    assert f'href="{paths["near"]}"' in near and "(nog 5 dagen)" in near
    assert paths["later"] not in todo_block(html)  # a month left: not yet
    assert "P. de Boer" not in todo_block(html)  # no requester's name on the overview
    await web.login("tl")
    assert task(await web.page("/"), "request_due") is None


async def test_holds_due_for_review_within_the_viewers_scope(web, rec_ids):
    box = web.box
    retention.add_hold(box, rec_ids["noord"], "complaint", "KL-NOORD", "tl", review_at=NOW + timedelta(days=2))
    retention.add_hold(box, rec_ids["zuid"], "complaint", "KL-ZUID", "fg", review_at=NOW - timedelta(days=1))
    retention.add_hold(box, rec_ids["hostile"], "complaint", "KL-LATER", "fg", review_at=NOW + timedelta(days=30))
    await web.login("tl")
    item = task(await web.page("/"), "review_due")
    assert item and "Bewaringen die herzien moeten worden" in item and count_of(item) == 1
    assert f'href="/opnames/{rec_ids["noord"]}"' in item and "KL-NOORD" in item and "klacht" in item
    assert "KL-ZUID" not in item  # team Zuid's recording
    await web.login("fg")
    item = task(await web.page("/"), "review_due")
    assert item and count_of(item) == 2 and "KL-NOORD" in item and "KL-ZUID" in item and "KL-LATER" not in item
    assert item.index("KL-ZUID") < item.index("KL-NOORD")  # the overdue one first
    await web.login("jansen")  # an officer places no holds: nothing to review
    assert task(await web.page("/"), "review_due") is None


async def test_keeper_reads_alerts_and_they_stop_being_unread(web):
    box = web.box
    devices.alert(box, "pair_refused", "pairing code wrong three times", serial="CAM-X", address="10.0.0.9")
    devices.alert(box, "bad_manifest", "manifest signature does not verify", serial="CAM-Y")
    await web.login("admin")
    item = task(await web.page("/"), "alerts_unread")
    assert item and "Ongelezen meldingen" in item and count_of(item) == 2 and 'href="/cameras#meldingen"' in item
    page = await web.page("/cameras")
    alerts = page[page.index('id="meldingen"'):]
    assert "Ongelezen: 2" in alerts and alerts.count('class="unread"') == 2
    up_to = re.search(r'name="up_to" value="(\d+)"', alerts).group(1)
    # an alert that comes in after the page was drawn is not marked with the ones the keeper saw
    devices.alert(box, "pair_refused", "pairing code wrong again", serial="CAM-Z")
    response = await web.client.post("/cameras/meldingen/gelezen", data={"csrf": await web.csrf("/cameras"),
                                                                         "up_to": up_to}, allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/cameras#meldingen"
    assert "Meldingen als gelezen gemarkeerd." in await web.page("/cameras")
    item = task(await web.page("/"), "alerts_unread")
    assert item and count_of(item) == 1 and "CAM-Z" in item and "CAM-X" not in item
    # read per user: another keeper still has all three unread (each keeper answers for what they saw)
    response = await web.client.post("/cameras/meldingen/gelezen", data={"up_to": "999"}, allow_redirects=False)
    assert response.status == 403  # no CSRF token: refused, nothing marked
    item = task(await web.page("/"), "alerts_unread")
    assert item and count_of(item) == 1
    for name in ("tl", "fg"):
        await web.login(name)
        assert task(await web.page("/"), "alerts_unread") is None
        assert (await web.client.post("/cameras/meldingen/gelezen", data={"csrf": await web.csrf(), "up_to": "9"},
                                      allow_redirects=False)).status == 403


async def test_only_paired_cameras_for_non_keepers_and_the_keepers_gevonden_list(web):
    box = web.box
    box.catalog.db["devices"].insert({"serial": "CAM-MINE", "paired": 1, "online": 1, "mode": "personal",
                                      "last_seen": to_iso(NOW - timedelta(hours=1))})
    devices.seen(box, devices.Advert(serial="CAM-STRANGER", address="10.0.0.77", port=8443, model="BC-9",
                                     firmware="2.1", proto="kluis-dock/1", fp="ab" * 32, paired=False,
                                     service_name="CAM-STRANGER._kluis._tcp.local.", txt={}))
    for name in ("tl", "fg", "jansen", "audit"):
        await web.login(name)
        html = await web.page("/")
        assert 'data-serial="CAM-MINE"' in html, name
        assert "CAM-STRANGER" not in html, name  # a device the box only saw is nobody's business but the keeper's
        assert task(html, "cameras_found") is None
        assert (await web.client.get("/cameras")).status == 403

    await web.login("admin")
    html = await web.page("/")
    assert 'data-serial="CAM-STRANGER"' not in html  # not among this box's cameras on the overview either
    item = task(html, "cameras_found")
    assert item and "Gevonden camera&#39;s, niet gekoppeld" in item and count_of(item) == 1
    assert 'href="/cameras#gevonden"' in item and "CAM-STRANGER" in item

    page = await web.page("/cameras")
    found = page[page.index('id="gevonden"'):page.index('id="pair"')]
    assert "CAM-STRANGER" in found and "10.0.0.77:8443" in found and "BC-9" in found
    assert "CAM-MINE" not in found
    assert "CAM-STRANGER" not in page[:page.index('id="gevonden"')]  # not in the table of paired cameras
    assert "?serial=CAM-STRANGER#pair" in found
    prefilled = await web.page("/cameras?serial=CAM-STRANGER")
    assert 'id="pair-serial" name="serial" required maxlength="64" value="CAM-STRANGER"' in prefilled


async def test_nothing_to_do(web):
    await web.login("jansen")
    block = todo_block(await web.page("/"))
    assert "Te doen" in block and "Er is nu niets te doen." in block


@needs_chromium
async def test_in_chromium_a_task_leads_to_where_it_is_done(web_box, rec_ids):
    """The privacy officer follows "Te doen" to the handover that waits for them; the keeper to the alerts,
    marks them read, and the task is gone."""
    noord = handover.prepare(web_box, "tl", [rec_ids["noord"]], "Politie Utrecht", "art. 126nd Sv", "PV-NOORD-1",
                             "police_report", "none")
    devices.alert(web_box, "pair_refused", "pairing code wrong three times", serial="CAM-X")
    async with browser_page(web_box, SHOTS) as page:
        await login(page, "fg", PASSWORD)
        block = page.locator("#te-doen")
        await shot(page, SHOTS, "te-doen-privacybeheerder")
        await block.get_by_role("link", name=noord).click()
        await page.wait_for_url(f"**/overdrachten/{noord}")
        assert "PV-NOORD-1" in await page.content()
        await press(page, "Uitloggen", "**/login")

        await login(page, "admin", PASSWORD)
        await shot(page, SHOTS, "te-doen-beheerder")
        await page.locator("#todo-alerts_unread").get_by_role("link", name="Ongelezen meldingen").click()
        await page.wait_for_url("**/cameras#meldingen")
        await press(page, "Deze meldingen als gelezen markeren", "**/cameras#meldingen")
        await page.goto("/")
        assert await page.locator("#todo-alerts_unread").count() == 0
