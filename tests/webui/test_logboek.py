"""Logboek: filters, CSV export, chain verification that names a tampered entry; deletion report; stats."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from appliance import audit, sweep
from tests.web_helpers import csrf_of


async def test_log_filters_csv_and_chain_verification(web, rec_ids):
    await web.as_role("auditor")
    page = await (await web.client.get("/logboek", params={"action": "user_add"})).text()
    assert page.count("gebruiker toegevoegd <span") == 4 and "(ingest)" not in page
    export = await web.client.get("/logboek.csv", params={"action": "ingest"})
    rows = list(csv.DictReader(io.StringIO(await export.text())))
    assert len(rows) == 3 and {r["recording_id"] for r in rows} == set(rec_ids.values())
    assert "attachment" in export.headers["Content-Disposition"]
    token = csrf_of(page)
    ok = await (await web.client.post("/logboek/controleer", data={"csrf": token})).text()
    assert "De keten is intact" in ok
    # Someone with the file edits an entry (dropping the append-only trigger first): the check names it.
    web.box.catalog.db.execute("DROP TRIGGER audit_log_no_update")
    web.box.catalog.db.execute("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2")
    broken = await (await web.client.post("/logboek/controleer", data={"csrf": token})).text()
    assert "De keten is verbroken. Eerste foute regel: 2." in broken
    last = audit.entries(web.box.catalog, action="verify")[-1]
    assert last["actor"] == "audit" and last["details"]["ok"] is False


async def test_deletion_report_lists_what_the_sweep_shredded(web, rec_ids):
    later = web.box.clock() + timedelta(days=400)
    web.box.clock = lambda: later
    sweep.sweep(web.box)
    await web.as_role("privacy_officer")
    page = await (await web.client.get("/logboek/verwijderverslag")).text()
    assert all(rid in page for rid in rec_ids.values())
    report = await (await web.client.get("/logboek/verwijderverslag.csv")).text()
    assert len(list(csv.DictReader(io.StringIO(report)))) == 3


async def test_statistics_as_svg_and_csv(web, rec_ids):
    await web.as_role("team_leader")
    token = csrf_of(await (await web.client.get(f"/opnames/{rec_ids['noord']}")).text())
    await web.client.post(f"/opnames/{rec_ids['noord']}/reden", data={"reason": "aggression", "csrf": token})
    page = await (await web.client.get("/statistieken")).text()
    assert page.count("<svg") == 3 and "agressie" in page and "Noord" in page  # no holds yet: no chart
    table = list(csv.reader(io.StringIO(await (await web.client.get("/statistieken.csv")).text())))
    assert ["Opnames per team", "Noord", "2"] in table and ["Opnames per reden", "agressie", "1"] in table
