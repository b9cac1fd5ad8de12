"""A recording's team on the web UI: the Team column and field, the team filter on /opnames, and
/statistieken counting what the viewer may list (a team leader their team's recordings and holds; the
privacy officer and the keeper every one). The box of tests/webui/conftest.py: team leader 'tl' of Noord,
recordings 'noord' and 'hostile' of team Noord, 'zuid' of team Zuid."""

from __future__ import annotations

import csv
import html
import io
import re

from appliance import retention, statistics


def cells(page: str, key: str) -> dict[str, str]:
    """The rows of one statistics table on the page (section of chart `key`): label -> count."""
    section = page.split(f'id="h-{key}"', 1)[1].split("</section>", 1)[0]
    rows = re.findall(r"<tr><td>(.*?)</td><td>(.*?)</td></tr>", section, re.S)
    return {html.unescape(label): count for label, count in rows}


def csv_rows(text: str) -> list[list[str]]:
    """The CSV as a spreadsheet reads it, whatever its separator (comma, or a Dutch Excel semicolon)."""
    text = text.lstrip("\ufeff")
    return list(csv.reader(io.StringIO(text), csv.Sniffer().sniff(text.splitlines()[0], delimiters=",;")))


async def test_statistics_count_the_team_leaders_team_and_everything_for_the_privacy_officer(web, rec_ids):
    retention.add_hold(web.box, rec_ids["zuid"], "complaint", "K-1", "fg")
    retention.add_hold(web.box, rec_ids["noord"], "police_report", "PV-1", "fg")

    await web.as_role("team_leader")
    page = await web.page("/statistieken")
    assert "Geteld: de opnames van uw team, Noord." in page
    assert cells(page, "per_team") == {"Noord": "2"}
    assert sum(map(int, cells(page, "per_month").values())) == 2
    assert set(cells(page, "hold_purpose")) == {"aangifte"}
    table = csv_rows(await (await web.client.get("/statistieken.csv")).text())
    assert ["Opnames per team", "Noord", "2"] in table
    assert not [row for row in table if "Zuid" in row]

    for role in ("privacy_officer", "keeper"):
        await web.as_role(role)
        page = await web.page("/statistieken")
        assert "Geteld: alle opnames op deze kluis." in page
        assert cells(page, "per_team") == {"Noord": "2", "Zuid": "1"}
        assert set(cells(page, "hold_purpose")) == {"aangifte", "klacht"}
        table = csv_rows(await (await web.client.get("/statistieken.csv")).text())
        assert ["Opnames per team", "Zuid", "1"] in table


async def test_a_recording_whose_officer_is_unknown_counts_and_shows_as_onbekend(web, rec_ids):
    web.box.catalog.db.execute("UPDATE recordings SET team = NULL WHERE id = ?", [rec_ids["zuid"]])
    statistics.refresh(web.box.catalog, rec_ids["zuid"])  # counted as if stored without a team
    await web.as_role("privacy_officer")
    assert cells(await web.page("/statistieken"), "per_team") == {"Noord": "2", "onbekend": "1"}
    row = (await web.page("/opnames?camera=CAM002")).split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    assert rec_ids["zuid"] in row and "<td>onbekend</td>" in row
    assert re.search(r"<dt>Team</dt><dd>onbekend</dd>", await web.page(f"/opnames/{rec_ids['zuid']}"))
    # A team leader neither lists nor counts it.
    await web.as_role("team_leader")
    assert rec_ids["zuid"] not in await web.page("/opnames")
    assert cells(await web.page("/statistieken"), "per_team") == {"Noord": "2"}


async def test_the_team_filter_finds_the_teams_recordings_within_the_viewers_scope(web, rec_ids):
    def found(page: str) -> set[str]:
        """The recordings the list shows; an empty list must say so (a page without the list is no answer)."""
        count = re.search(r'<p role="status">(\d+) opnames? gevonden\.</p>', page)
        assert count, "the list's count is missing"
        body = page.split("<tbody>", 1)[1].split("</tbody>", 1)[0] if "<tbody>" in page else ""
        shown = {key for key, rid in rec_ids.items() if rid in body}
        assert int(count.group(1)) == len(shown), (count.group(0), shown)
        return shown

    await web.as_role("privacy_officer")
    assert found(await web.page("/opnames?team=Zuid")) == {"zuid"}
    assert found(await web.page("/opnames?team=Noord")) == {"noord", "hostile"}
    page = await web.page("/opnames")
    assert re.search(r'<datalist id="teams">.*<option value="Noord">.*<option value="Zuid">', page, re.S)
    assert '<td>Zuid</td>' in page
    await web.as_role("team_leader")
    assert found(await web.page("/opnames?team=Noord")) == {"noord", "hostile"}
    assert found(await web.page("/opnames?team=Zuid")) == set()  # another team's: outside the scope
