"""`kluis register`: the processing register entry and the DPIA's fact sheet, made by the real CLI from the
box's own configuration, as Markdown and as PDF (read back with pypdf). Every configured purpose and term is
named, and a changed configuration changes the document; nothing is claimed the box does not have."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pypdf
import pytest

from appliance import audit, config, roles
from appliance.box import Box
from appliance.purposes import PURPOSES
from tests.conftest import add_role_users


def make(kluis, data: Path, out: Path, *extra, user: str = "fg", check: bool = True):
    return kluis("register", "--data", data, "--out", out, "--user", user, "--password-file",
                 data.parent / "password.txt", *extra, check=check)


def words(text: str) -> str:
    return " ".join(text.split())


def pdf_text(path: Path) -> str:
    return words(" ".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(path.read_bytes())).pages))


@pytest.fixture
def data(box_dir, privacy_officer) -> Path:
    return box_dir[0]


def test_the_register_names_every_purpose_and_term_and_follows_the_configuration(data, kluis, tmp_path):
    md, pdf = tmp_path / "register.md", tmp_path / "register.pdf"
    make(kluis, data, md)
    make(kluis, data, pdf)
    for text in (words(md.read_text()), pdf_text(pdf)):
        assert "Verwerkingsregister" in text
        for label in PURPOSES.values():
            assert label.nl in text
        assert "28 dagen na het einde van de opname" in text
        assert "730 dagen" in text  # the audit log's own term
        assert "Categorie" not in text  # no category configured: none named
        assert "voor geen enkele rol verplicht" in text and "verplicht voor" not in text
        assert "niet bij een archief ingeschreven" in text
        assert "[privacy] controller" in text  # not stated: said so, not made up

    config.change(data, {"retention": {"default_days": 35, "grace_days": 9, "categories": {"incident": 90,
                                                                                         "klacht_lang": 180}},
                         "audit": {"term_days": 400},
                         "security": {"totp_required": ["keeper"]},
                         "privacy": {"controller": "College van B&W van Testdorp", "dpo": "FG Testdorp"},
                         "handover": {"single_approval": True}})
    make(kluis, data, md)
    make(kluis, data, pdf)
    for text in (words(md.read_text()), pdf_text(pdf)):
        assert "35 dagen na het einde van de opname" in text and "28 dagen" not in text
        assert "Categorie incident 90 dagen" in text.replace("**", "").replace(":", "")
        assert "Categorie klacht_lang 180 dagen" in text.replace("**", "").replace(":", "")
        assert "minstens 9 dagen" in text
        assert "400 dagen" in text and "730 dagen" not in text
        assert "verplicht voor beheerder; ingesteld door 0 van 1 beheerder" in text
        assert "College van B&W van Testdorp" in text and "FG Testdorp" in text
        assert "enkelvoudige goedkeuring staat aan" in text

    with Box(data) as box:
        made = audit.entries(box.catalog, action="register_export")
    assert [(e["actor"], e["client"], e["details"]["format"]) for e in made] == [("fg", "cli", "md"), ("fg", "cli", "pdf")] * 2


def test_the_dpia_fact_sheet_counts_and_names_what_needs_a_decision(data, kluis, tmp_path):
    add_role_users(data, "tl", "hh")
    out = tmp_path / "dpia.md"
    make(kluis, data, out, "--dpia")
    text = words(out.read_text())
    assert "Feitenblad voor de DPIA" in text and "Aandachtspunten" in text
    assert "1 beheerder, 1 teamleider, 1 privacybeheerder en 1 handhaver" in text
    assert "[privacy] dpo is niet ingesteld" in text
    assert "Gegevensstromen naar de box" in text and "**Axis-systeem**: uit ([axis] listen)" in text
    assert "Rollen die beelden bekijken zonder verplichte tweede factor: teamleider, privacybeheerder en handhaver" \
           in text
    config.change(data, {"privacy": {"dpo": "FG Testdorp"}, "security": {"totp_required": ["team_leader"]},
                         "axis": {"listen": "0.0.0.0:8444"}})
    make(kluis, data, out, "--dpia")
    text = words(out.read_text())
    assert "**Axis-systeem**: content destination op 0.0.0.0:8444" in text
    assert "[privacy] dpo is niet ingesteld" not in text
    assert "zonder verplichte tweede factor: privacybeheerder en handhaver" in text
    assert "1 teamleider heeft/hebben de verplichte tweede factor nog niet ingesteld" in text


def test_only_the_privacy_officer_makes_it_and_a_wrong_suffix_is_refused_first(data, kluis, tmp_path):
    refused = make(kluis, data, tmp_path / "r.md", user="admin", check=False)
    assert refused.returncode != 0 and "register.read" in refused.stderr.decode()
    assert not (tmp_path / "r.md").exists()
    wrong = make(kluis, data, tmp_path / "r.docx", check=False)
    assert wrong.returncode != 0 and ".pdf or .md" in wrong.stderr.decode()
    with Box(data) as box:
        assert [e["details"]["command"] for e in audit.entries(box.catalog, action="command_refused")] == ["register"]
        assert not audit.entries(box.catalog, action="register_export")
        assert not [e for e in audit.entries(box.catalog, action="login") if e["actor"] == "fg"]
    assert roles.allowed(roles.PRIVACY_OFFICER, roles.REGISTER_READ)


def test_every_role_and_its_viewing_purposes_are_in_the_table(data, kluis, tmp_path):
    out = tmp_path / "register.md"
    make(kluis, data, out)
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| (\w+) \| \d+ \|.*$", out.read_text(), re.M)}
    assert set(rows) == {"beheerder", "teamleider", "privacybeheerder", "handhaver", "auditor"}
    assert "| eigen opnames | training op verzoek van de handhaver |" in rows["handhaver"]
    assert "| alle opnames | alle doelen |" in rows["privacybeheerder"]
    assert "| geen opnames | — |" in rows["beheerder"]
