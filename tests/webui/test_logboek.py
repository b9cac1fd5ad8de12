"""Logboek: sentences per action with the raw entry behind a toggle, filters, keyset paging, CSV export as
Dutch Excel reads it, chain verification that names a tampered entry; deletion report; stats."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest

from appliance import audit, retention, sweep
from tests import dutch_csv
from tests.web_helpers import csrf_of


def _rows(page: str) -> list[str]:
    body = page.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return re.findall(r"<tr>.*?</tr>", body, re.DOTALL)


async def test_log_filters_csv_and_chain_verification(web, rec_ids):
    await web.as_role("auditor")
    page = await (await web.client.get("/logboek", params={"action": "user_add"})).text()
    rows = _rows(page)
    assert len(rows) == 4 and all("voegde gebruiker" in row for row in rows) and "sloeg opname" not in page
    assert '<option value="user_add" selected>' in page
    export = await web.client.get("/logboek.csv", params={"action": "ingest"})
    rows = dutch_csv.records(await export.read(), audit.COLUMNS)
    assert len(rows) == 3 and {r["recording_id"] for r in rows} == set(rec_ids.values())
    assert all(dutch_csv.LOCAL_TIME.match(r["time"]) and r["time"].endswith("+01:00") for r in rows)
    assert "attachment" in export.headers["Content-Disposition"] and export.headers["Content-Type"].startswith("text/csv")
    token = csrf_of(page)
    ok = await (await web.client.post("/logboek/controleer", data={"csrf": token})).text()
    assert "De keten is intact" in ok and "regels na het laatste controlepunt kloppen met hun eigen handtekening" in ok
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
    report = dutch_csv.records(await (await web.client.get("/logboek/verwijderverslag.csv")).read(),
                               retention.REPORT_COLUMNS)
    assert len(report) == 3 and all(dutch_csv.LOCAL_TIME.match(r["deleted_at"]) for r in report)
    assert {r["recording_id"] for r in report} == set(rec_ids.values()) and all(r["term_days"].isdigit() for r in report)


async def test_statistics_as_svg_and_csv(web, rec_ids):
    await web.as_role("team_leader")
    token = csrf_of(await (await web.client.get(f"/opnames/{rec_ids['noord']}")).text())
    await web.client.post(f"/opnames/{rec_ids['noord']}/reden", data={"reason": "aggression", "csrf": token})
    page = await (await web.client.get("/statistieken")).text()
    # month, team, reason, warning, category, camera model, way in; no views, holds or outcomes yet: no chart
    assert page.count("<svg") == 7 and "agressie" in page and "Noord" in page and 'id="h-hold_purpose"' not in page
    table = dutch_csv.table(await (await web.client.get("/statistieken.csv")).read())
    assert table[0] == ["Tabel", "Waarde", "Aantal"]
    assert ["Opnames per team", "Noord", "2"] in table and ["Opnames per reden", "agressie", "1"] in table


async def test_each_entry_is_a_sentence_with_labelled_fields_and_the_raw_entry_behind_a_toggle(web, rec_ids):
    reference = "K-2026-" + "1234567890" * 9 + "abc"  # 100 characters
    with web.box.catalog.transaction():
        audit.record(web.box.catalog, actor="fg", action="hold_add", recording_id=rec_ids["noord"], purpose="complaint",
                     case_ref=reference, client="web 10.0.0.9",
                     details={"hold": 9, "until": "2027-01-04T10:00:00.000Z", "review_at": None})
    await web.as_role("auditor")
    page = await (await web.client.get("/logboek")).text()
    row = next(row for row in _rows(page) if "hold_add" in row)
    text = html.unescape(re.sub(r"<[^>]+>", " ", row))
    assert f"fg plaatste een bewaring op opname {rec_ids['noord']} voor klacht (zaak {reference})" in " ".join(text.split())
    assert "<dt>Tot:</dt> <dd>04-01-2027 11:00:00</dd>" in row and "<dt>Toegang via:</dt>" in row
    toggle = re.search(r'<details class="raw"><summary>details<span class="visually-hidden"> #\d+</span></summary><pre lang="en">(.*?)</pre></details>', row, re.DOTALL)
    raw = html.unescape(toggle.group(1))
    assert '"action": "hold_add"' in raw and '"hash": "' in raw and '"until": "2027-01-04T10:00:00.000Z"' in raw
    # The English UI tells the same entry in English, from the same gettext ids.
    web.client.session.cookie_jar.update_cookies({"kluis_lang": "en"})
    english = next(row for row in _rows(await (await web.client.get("/logboek")).text()) if "hold_add" in row)
    assert f"fg placed a hold on recording {rec_ids['noord']}" in english and "for complaint" in english


async def test_paging_is_by_keyset_and_loses_no_entry(web, rec_ids):
    with web.box.catalog.transaction():
        for n in range(230):
            audit.record(web.box.catalog, actor="tl", action="login", client=f"web 10.0.0.{n % 250}")
    await web.as_role("auditor")
    seen: list[int] = []
    url = "/logboek?action=login&actor=tl"
    pages = 0
    while url:
        page = await (await web.client.get(url)).text()
        pages += 1
        seen += [int(n) for n in re.findall(r"<tr><td class=\"seq\">(\d+)</td>", page)]
        found = re.search(r'<a href="(/logboek\?[^"]+)" rel="next">', page)
        url = html.unescape(found.group(1)) if found else None
        assert pages < 10
    logins = [e["seq"] for e in audit.entries(web.box.catalog, action="login", actor="tl")]
    assert pages == 3 and sorted(seen, reverse=True) == seen and sorted(seen) == sorted(logins)
    assert 'href="/logboek?action=login&amp;actor=tl">Nieuwste regels</a>' in page  # back to the first, same filters


async def test_a_cell_a_spreadsheet_would_run_is_text(web):
    await web.client.post("/login", data={"username": "=HYPERLINK(\"http://x\")", "password": "x" * 12,
                                          "csrf": csrf_of(await (await web.client.get("/login")).text())})
    await web.as_role("privacy_officer")
    rows = dutch_csv.records(await (await web.client.get("/logboek.csv", params={"action": "login_failed"})).read(),
                             audit.COLUMNS)
    assert rows and rows[-1]["actor"].startswith("'=HYPERLINK")


@pytest.mark.parametrize("signed", [True, False], ids=["signed-entries", "entries-without-signature"])
async def test_chain_check_names_the_first_changed_entry_of_a_rehashed_rewrite(web, rec_ids, signed):
    """A log re-hashed from entry k on (a careful forger without the key): each entry's own signature names
    entry k exactly; in a log whose entries carry none (from before they were signed) the page names the
    entries between the last checkpoint it still matches and the first it does not, not "entry 1" (issue 19,
    defect 5)."""
    await web.as_role("auditor")
    db = web.box.catalog.db
    audit.checkpoint(web.box.catalog, web.box.signing_key(), force=True)
    anchored = audit.head(web.box.catalog)[0]
    for i in range(5):
        audit.record(web.box.catalog, actor="system", action="verify", details={"i": i})
    audit.checkpoint(web.box.catalog, web.box.signing_key(), force=True)
    changed = anchored + 2
    db.execute("DROP TRIGGER audit_log_no_update")
    rows = audit.entries(web.box.catalog, after_seq=changed - 1)
    prev = db.execute("SELECT hash FROM audit_log WHERE seq = ?", [changed - 1]).fetchone()[0]
    for row in rows:
        if row["seq"] == changed:
            row["actor"] = "mallory"
        row["details"] = audit.canonical(row["details"]).decode() if row["details"] is not None else None
        row["prev_hash"] = prev
        row["hash"] = prev = audit.entry_hash(row)
        db.execute("UPDATE audit_log SET actor = ?, prev_hash = ?, hash = ? WHERE seq = ?",
                   [row["actor"], row["prev_hash"], row["hash"], row["seq"]])
    if not signed:
        db.execute("DROP TRIGGER audit_log_sign_once")
        db.execute("UPDATE audit_log SET signature = NULL")
    token = csrf_of(await (await web.client.get("/logboek")).text())
    page = html.unescape(await (await web.client.post("/logboek/controleer", data={"csrf": token})).text())
    first, last = anchored + 1, anchored + 5
    if signed:
        assert f"De keten is verbroken. Eerste foute regel: {changed}. De eigen handtekening" in page, page
        assert audit.entries(web.box.catalog, action="verify")[-1]["details"]["first_bad"] == str(changed)
        return
    assert f"De eerste foute regel is een van de regels {first} tot en met {last}. Deze regels hebben geen" in page
    assert audit.entries(web.box.catalog, action="verify")[-1]["details"]["first_bad"] == f"{first}..{last}"


async def test_after_pruning_the_check_holds_and_says_so_and_the_deletion_report_is_whole(web, rec_ids):
    from appliance import audit_term

    later = web.box.clock() + timedelta(days=800)
    web.box.clock = lambda: later
    sweep.sweep(web.box)  # the recordings go after their term; then the log's own term passes too
    result = audit_term.prune(web.box, web.box.signing_key())
    assert result.pruned > 0 and not audit.entries(web.box.catalog, action="ingest")
    await web.as_role("privacy_officer")
    page = await (await web.client.get("/logboek")).text()
    ok = await (await web.client.post("/logboek/controleer", data={"csrf": csrf_of(page)})).text()
    assert "De keten is intact" in ok
    assert f"Regels 1 tot en met {result.pruned} waren ouder dan de bewaartermijn van het logboek" in ok
    assert "logboek opgeschoond" in page or "schoonde logboekregels" in page
    report = dutch_csv.records(await (await web.client.get("/logboek/verwijderverslag.csv")).read(),
                               retention.REPORT_COLUMNS)
    assert {r["recording_id"] for r in report} == set(rec_ids.values())
