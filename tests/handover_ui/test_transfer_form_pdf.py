"""The transfer form (overdrachtsformulier): a Dutch PDF whose extracted text (pypdf) holds the case
reference, both parties, every hash, and the single-approval line when it was used; hostile text does not
break it."""

from __future__ import annotations

import copy
import hashlib
import io
import re

import pytest
from pypdf import PdfReader

from appliance import pdf_document
from appliance.transfer_form import render_transfer_form


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


MANIFEST = {
    "format": "kluis-handover/1",
    "handover_id": "ov-3f9a1c",
    "box": {"name": "Gemeente Utrecht, Stadskantoor", "signing_key": sha("signing key")},
    "prepared_by": "fg", "prepared_at": "2026-11-22T13:05:00Z",
    "approved_by": "fg2", "approved_at": "2026-11-22T13:20:00Z",
    "single_approval": False,
    "receiver": {"organisation": "Politie Midden-Nederland", "unit": "District Utrecht-Stad",
                 "name": "R. de Boer", "official_number": "AB1234"},
    "basis": {"kind": "vordering", "article": "126nd Sv"},
    "case_ref": "PL0900-2026123456",
    "purpose": "opsporing mishandeling handhaver",
    "protection": "age",
    "files": [
        {"name": f"opname-{n}.mp4", "recording_id": f"rec{n:013d}", "camera": f"CAM00{n}", "officer": "J. Jansen",
         "camera_start": "2026-11-20T13:05:00Z", "camera_end": "2026-11-20T13:05:20Z",
         "corrected_start": "2026-11-20T13:05:02Z", "corrected_end": "2026-11-20T13:05:22Z",
         "pre_record_s": 30, "post_record_s": 30, "clip": {"from_s": 5.0, "to_s": 12.0} if n == 1 else None,
         "size": 1000 + n, "sha256": sha(f"file {n}"),
         "chain": {"ciphertext_sha256": sha(f"cipher {n}"), "ciphertext_size": 2000 + n, "ciphertext_verified": True,
                   "plaintext_sha256": sha(f"plain {n}"), "plaintext_size": 1500 + n,
                   "exported": "clip: remuxed from the keyframe at or before the start, not re-encoded" if n == 1
                   else "whole recording: the decrypted plaintext, byte for byte", "exported_sha256": sha(f"file {n}")}}
        for n in (1, 2, 3)
    ],
    "audit_excerpt": {"name": "logboek.jsonl", "sha256": sha("audit")},
}


def text_of(pdf: bytes) -> str:
    assert pdf.startswith(b"%PDF-")
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def every_hash(manifest: dict) -> list[str]:
    hashes = [manifest["box"]["signing_key"], manifest["audit_excerpt"]["sha256"]]
    for f in manifest["files"]:
        hashes += [f["sha256"], *(v for k, v in f["chain"].items() if k.endswith("sha256"))]
    return hashes


def test_form_holds_case_parties_and_every_hash():
    text = text_of(render_transfer_form(MANIFEST))
    assert "Overdrachtsformulier" in text
    assert "PL0900-2026123456" in text
    # Both parties: the issuing municipality and every part of the receiver.
    assert "Gemeente Utrecht, Stadskantoor" in text
    for part in MANIFEST["receiver"].values():
        assert part in text
    assert "Vordering (artikel 126nd Sv)" in flat(text)
    assert "opsporing mishandeling handhaver" in text
    for digest in every_hash(MANIFEST):
        assert digest in text, digest  # whole, on one line: a reader can compare it with sha256sum
    for f in MANIFEST["files"]:
        assert f["recording_id"] in text and f["camera"] in text
    assert "Fragment van 5 s tot 12 s" in flat(text) and "Volledige opname" in text
    assert "30 s / 30 s" in text
    assert "Fragment: geknipt vanaf het sleutelbeeld" in flat(text) and "byte voor byte" in text
    # Signature fields for both parties.
    assert text.count("Handtekening") >= 2 and "Namens de ontvangende partij" in text
    assert "Namens de verstrekkende gemeente" in text
    assert "Enkelvoudige goedkeuring" not in text
    assert "fg2" in text and "22-11-2026" in text
    assert text.count(MANIFEST["files"][1]["sha256"]) == 2  # the file's table and its chain, once each


def test_a_missing_end_time_is_not_a_dangling_dash():
    manifest = copy.deepcopy(MANIFEST)
    manifest["files"][0]["camera_end"] = None
    text = flat(text_of(render_transfer_form(manifest)))
    assert "Cameratijd vanaf 20-11-2026 13:05:00 UTC" in text


def test_single_approval_is_stated_and_voluntary_basis_named():
    manifest = copy.deepcopy(MANIFEST)
    manifest.update(single_approval=True, approved_by="fg", basis="vrijwillige verstrekking",
                    protection="passphrase")
    text = flat(text_of(render_transfer_form(manifest)))
    assert "Enkelvoudige goedkeuring" in text and "instelling van de gemeente" in text
    assert "Vrijwillige verstrekking" in text
    assert "wachtwoordzin" in text


def test_times_in_the_box_timezone():
    text = text_of(render_transfer_form(MANIFEST, timezone="Europe/Amsterdam"))
    assert "20-11-2026 14:05:00 CET" in text  # 13:05 UTC


def hostile_manifest() -> dict:
    manifest = copy.deepcopy(MANIFEST)
    long_word = "Ø" * 400
    manifest["receiver"] = {"organisation": "<script>alert('x')</script>", "unit": "’s-Hertogenbosch “Zuid”",
                            "name": long_word, "official_number": "\x00\x07\u202e123\ufffe"}
    manifest["box"]["name"] = "Gemeente Ærø – 東京 \U0001f4f9" + " lang" * 3000
    manifest["case_ref"] = "PV-’26-Ø1"
    manifest["purpose"] = "x" * 20000
    manifest["files"][0]["officer"] = "<b>" + "ß" * 1000
    manifest["files"][1]["clip"] = {"from_s": float("inf"), "to_s": "x"}
    manifest["files"][1]["pre_record_s"] = float("nan")
    manifest["files"][2].pop("chain")
    return manifest


def test_hostile_text_does_not_break_it():
    manifest = hostile_manifest()
    pdf = render_transfer_form(manifest)
    text = text_of(pdf)
    assert "<script>alert('x')</script>" in text  # text, as given
    assert "PV-’26-Ø1" in text
    assert "’s-Hertogenbosch" in text
    for digest in every_hash(MANIFEST)[:2] + [f["sha256"] for f in MANIFEST["files"]]:
        assert digest in text
    assert len(PdfReader(io.BytesIO(pdf)).pages) < 40  # bounded, however long the input


def test_without_a_unicode_font_it_still_renders(monkeypatch):
    """The core-font fallback (no DejaVu installed): Latin-1 only, unknown characters replaced."""
    monkeypatch.setattr(pdf_document, "FONT_DIRS", ())
    text = text_of(render_transfer_form(hostile_manifest()))
    assert "PV-'26-O1" in text
    assert MANIFEST["files"][0]["sha256"] in text


@pytest.mark.parametrize("manifest", [{}, {"handover_id": "x", "files": [{}], "receiver": "Politie, J. Smit",
                                            "box": None, "audit_excerpt": None, "basis": None}])
def test_missing_keys_are_left_blank(manifest):
    text = text_of(render_transfer_form(manifest))
    assert "Overdrachtsformulier" in text and "Handtekening" in text
    if manifest:
        assert "Politie, J. Smit" in text


def test_the_municipality_issues_and_people_are_named_by_full_name_and_function():
    manifest = copy.deepcopy(MANIFEST)
    manifest["box"].update(name="Kluis", municipality="Gemeente Noorderveld")  # the office left at its default
    manifest["prepared_by_person"] = {"login": "fg", "full_name": "Anna Bakker", "function": "privacybeheerder"}
    manifest["approved_by_person"] = {"login": "fg2", "full_name": "Carel de Wit", "function": "FG"}
    manifest["files"][0]["officer_person"] = {"login": "hh", "full_name": None, "function": None}
    text = flat(text_of(render_transfer_form(manifest)))
    assert "Verstrekkende gemeente Gemeente Noorderveld" in text
    assert "Namens de verstrekkende gemeente Gemeente Noorderveld" in text
    assert "Kluis" not in text.replace("kluis export", "")  # not the product's name as the issuing party
    assert "Anna Bakker, privacybeheerder (gebruiker fg)" in text and "Carel de Wit, FG (gebruiker fg2)" in text
    assert "Handhaver hh" in text  # no full name given: the login name stands in
    assert text.split("6. Ondertekening")[1].count("Carel de Wit") == 1  # filled in on the municipality's side
