"""The report to the council through the real `kluis stats report` in a real process: its PDF's text (read
with pypdf) holds the figures of the known data set (stats_helpers), its CSV the tables; it is on record in
the audit log; and only the privacy officer and the auditor may make it (every refusal on record)."""

from __future__ import annotations

import re
import subprocess

import pypdf

from appliance import audit
from appliance.app.commands import refusals
from appliance.box import Box
from tests import dutch_csv
from tests.conftest import KLUIS

from stats_helpers import known_data_set


def run(*args) -> subprocess.CompletedProcess:
    return subprocess.run(KLUIS + [str(a) for a in args], stdin=subprocess.DEVNULL, capture_output=True, timeout=120)


def pdf_text(path) -> str:
    return " ".join(" ".join(page.extract_text() for page in pypdf.PdfReader(path).pages).split())


def test_the_council_report_holds_the_figures_of_a_known_data_set(sbox, tmp_path, password_file):
    known_data_set(sbox, tmp_path)
    data = sbox.data_dir
    out, table = tmp_path / "raad.pdf", tmp_path / "raad.csv"
    result = run("stats", "report", "--data", data, "--from", "2026-03-01", "--to", "2026-04-30", "--out", out,
                 "--csv", table, "--user", "au", "--password-file", password_file)
    assert result.returncode == 0, result.stderr.decode()
    text = pdf_text(out)
    assert "Periode: maart 2026 t/m april 2026" in text
    assert ("In deze periode maakten handhavers 7 opnames met hun bodycam. Daarvan langer bewaard voor een aangifte, "
            "klacht, verzoek of vordering: 3; verstrekt aan politie of Openbaar Ministerie: 1; na de bewaartermijn "
            "verwijderd: 0.") in text
    assert "De drukste maand was maart 2026 met 4 opnames." in text
    assert "Voor 4 van de 7 opnames (57%) is een reden vastgelegd. De meest genoemde reden is agressie (2 keer)." in text
    assert "Bij 2 opnames (29%) is vooraf gewaarschuwd dat de camera zou worden aangezet, bij 1 niet; bij 4 is het niet vastgelegd." in text
    assert "1 opname staat onder 'onbekend'" in text
    assert "Van de 7 opnames zijn er 0 na afloop van de bewaartermijn verwijderd en 1 eerder, na een besluit; 6 staan nog" in text
    # The chart's rows: label and count as the table under each bar says them.
    for label, count in (("maart 2026", 4), ("april 2026", 3), ("Noord", 5), ("Zuid", 1), ("agressie", 2),
                         ("bedreiging", 1), ("belediging", 1), ("klacht", 2), ("aangifte", 1), ("incident", 1),
                         ("verstrekt aan politie of OM", None), ("eerder verwijderd, na een besluit", None)):
        if count is not None:
            assert re.search(rf"{re.escape(label)} {count}\b", text), (label, count, text)
    assert "Aantal" in text and "geen persoonsgegevens" in text

    rows = dutch_csv.table(table.read_bytes())
    assert rows[0] == ["Tabel", "Waarde", "Aantal"]
    for row in (["Opnames per maand", "maart 2026", "4"], ["Opnames per team", "onbekend", "1"],
                ["Opnames per reden", "agressie", "2"], ["Keren bekeken, per doel", "klacht", "3"],
                ["Wat er met de opnames gebeurde", "eerder verwijderd, na een besluit", "1"],
                ["Wat er met de opnames gebeurde", "verstrekt aan politie of OM", "1"]):
        assert row in rows, (row, rows)

    with Box(data) as box:
        [entry] = audit.entries(box.catalog, action="stats_report")
    assert entry["actor"] == "au" and entry["client"] == "cli"
    assert entry["details"]["first"] == "2026-03" and entry["details"]["last"] == "2026-04"
    assert entry["details"]["formats"] == ["pdf", "csv"]


def test_the_period_narrows_the_report(sbox, tmp_path, password_file):
    known_data_set(sbox, tmp_path)
    out = tmp_path / "april.pdf"
    result = run("stats", "report", "--data", sbox.data_dir, "--from", "2026-04", "--out", out,
                 "--user", "fg", "--password-file", password_file)
    assert result.returncode == 0, result.stderr.decode()
    text = pdf_text(out)
    assert "Periode: vanaf april 2026" in text and "In deze periode zijn 3 opnames gemaakt, in 1 maand." in text
    assert "maart 2026" not in text


def test_other_roles_are_refused_and_on_record(box_dir, password_file, tmp_path):
    from tests.conftest import add_role_users

    data = box_dir[0]
    add_role_users(data, "tl", "hh")
    for user in ("admin", "tl", "hh"):
        out = tmp_path / f"{user}.pdf"
        result = run("stats", "report", "--data", data, "--out", out, "--user", user, "--password-file", password_file)
        assert result.returncode != 0 and b"Traceback" not in result.stderr
        assert b"stats.report" in result.stderr and not out.exists()
    with Box(data) as box:
        refused = audit.entries(box.catalog, action="command_refused")
        assert {(e["actor"], e["details"]["command"], e["details"]["reason"]) for e in refused} == {
            (user, "stats report", refusals.ROLE) for user in ("admin", "tl", "hh")}
        assert audit.entries(box.catalog, action="stats_report") == []


def test_a_period_that_is_no_month_is_refused_before_a_password_is_asked(box_dir, tmp_path):
    result = run("stats", "report", "--data", box_dir[0], "--from", "2026-13", "--out", tmp_path / "x.pdf",
                 "--user", "admin")
    assert result.returncode != 0 and b"not a date" in result.stderr and b"Password" not in result.stderr
