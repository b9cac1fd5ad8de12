"""/statistieken for a period (a month, a quarter, a year, from-to), scoped to the viewer's team for a team
leader, with its CSV, and the report to the council as PDF from the web UI (read with pypdf), on record.
The box of tests/webui/conftest.py (November 2026: 'noord' and 'hostile' of Noord, 'zuid' of Zuid), plus a
recording of Noord in October made here through the box's own import."""

from __future__ import annotations

import io
import re
from datetime import datetime, timezone

import pypdf

from appliance import audit, recordings
from appliance.dock.footage import make_mp4
from tests import dutch_csv
from test_team_scope import cells


def october(web, tmp_path) -> str:
    start = datetime(2026, 10, 5, 9, 0, tzinfo=timezone.utc)
    clip = make_mp4(tmp_path / "oct.mp4", 2, start, "CAM001")
    return recordings.import_file(web.box, clip, camera="CAM001", officer="jansen", start=start).recording_id


def total(page: str) -> int:
    return sum(int(n) for n in cells(page, "per_month").values()) if 'id="h-per_month"' in page else 0


async def test_the_period_filter_counts_a_month_a_quarter_a_year_and_from_to(web, rec_ids, tmp_path):
    october(web, tmp_path)
    await web.as_role("privacy_officer")
    page = await web.page("/statistieken")
    assert total(page) == 4
    assert re.search(r'<option value="2026">2026</option><option value="2026-K4">4e kwartaal 2026</option>'
                     r'<option value="2026-11">november 2026</option><option value="2026-10">oktober 2026</option>', page)
    oct_page = await web.page("/statistieken?periode=2026-10")
    assert cells(oct_page, "per_month") == {"oktober 2026": "1"} and cells(oct_page, "per_team") == {"Noord": "1"}
    assert "Getoonde periode: oktober 2026." in oct_page
    assert 'href="/statistieken.csv?periode=2026-10"' in oct_page
    assert 'href="/statistieken/raadsrapportage.pdf?periode=2026-10"' in oct_page
    assert total(await web.page("/statistieken?periode=2026-K4")) == 4
    assert total(await web.page("/statistieken?periode=2026")) == 4
    assert total(await web.page("/statistieken?periode=2026-K3")) == 0
    from_to = await web.page("/statistieken?van=2026-11&tot=2026-12")
    assert total(from_to) == 3 and "Getoonde periode: november 2026 t/m december 2026." in from_to
    assert total(await web.page("/statistieken?van=2026-10-15")) == 4  # a date stands for its month
    table = dutch_csv.table(await (await web.client.get("/statistieken.csv?periode=2026-10")).read())
    assert table[0] == ["Tabel", "Waarde", "Aantal"] and ["Opnames per maand", "oktober 2026", "1"] in table
    assert not [row for row in table if "november 2026" in row]

    response = await web.client.get("/statistieken?periode=volgend jaar")
    assert response.status == 400 and "De periode is niet duidelijk." in await response.text()
    assert (await web.client.get("/statistieken.csv?van=2026-13")).status == 400


async def test_a_team_leader_counts_the_own_team_in_any_period_and_makes_no_council_report(web, rec_ids, tmp_path):
    october(web, tmp_path)
    await web.as_role("team_leader")
    page = await web.page("/statistieken?periode=2026-11")
    assert cells(page, "per_team") == {"Noord": "2"} and "raadsrapportage" not in page
    assert cells(await web.page("/statistieken?periode=2026-K4"), "per_team") == {"Noord": "3"}
    table = dutch_csv.table(await (await web.client.get("/statistieken.csv?periode=2026")).read())
    assert not [row for row in table if "Zuid" in row]
    assert (await web.client.get("/statistieken/raadsrapportage.pdf")).status == 403


async def test_the_council_report_from_the_web_ui_is_a_dutch_pdf_on_record(web, rec_ids, tmp_path):
    october(web, tmp_path)
    await web.as_role("auditor")
    response = await web.client.get("/statistieken/raadsrapportage.pdf?periode=2026-11")
    assert response.status == 200 and response.content_type == "application/pdf"
    reader = pypdf.PdfReader(io.BytesIO(await response.read()))
    text = " ".join(" ".join(page.extract_text() for page in reader.pages).split())
    assert "Periode: november 2026" in text
    assert "In deze periode maakten handhavers 3 opnames met hun bodycam." in text
    assert re.search(r"Noord 2\b", text) and re.search(r"Zuid 1\b", text) and "oktober" not in text
    [entry] = audit.entries(web.box.catalog, action="stats_report")
    assert entry["actor"] == "audit" and entry["client"].startswith("web")
    assert entry["details"]["first"] == entry["details"]["last"] == "2026-11"
