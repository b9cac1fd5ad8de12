"""Issue 20, part 6: an access request's deadline extended with reasons (AVG art. 12(3)), the search by
place where recordings carry a location, and the letters to the requester (Dutch PDF) for each step."""

from __future__ import annotations

import io
import re
from datetime import date, timedelta

import pytest
from pypdf import PdfReader

from appliance import access_requests as ar
from appliance import audit, recording_places, request_letters, retention
from appliance.box import Box
from appliance.errors import KluisError
from verzoeken_helpers import INCIDENT, store

BAKKERBRUG = (52.0907, 5.1214)
AMERSFOORT = (52.1561, 5.3878)  # about 20 km away


@pytest.fixture
def qbox(copied_box) -> Box:
    """The request tests' box: recordings a (14:04:30-14:05:30), b (14:10) and c (17:05) on the incident's day."""
    return copied_box


@pytest.fixture
def ids(template) -> dict:
    return template[1]


def text_of(pdf: bytes) -> str:
    return re.sub(r"\s+", " ", " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages))


def register(box: Box, kind: str = "inzage", received: date = date(2026, 11, 21), **kw) -> dict:
    return ar.register(box, requester="P. de Boer", kind=kind, received_on=received, given_time=INCIDENT,
                       actor="fg", **kw).request


# --- extension -------------------------------------------------------------------------------------------------
def test_a_deadline_is_extended_by_at_most_two_months_with_a_reason(qbox):
    req = register(qbox)
    assert req["deadline"] == "2026-12-21" and req["extension_months"] == 0
    once = ar.extend(qbox, req["ref"], 1, "veel opnamen van meerdere camera's", "fg")
    assert (once["original_deadline"], once["deadline"], once["extension_months"]) == ("2026-12-21", "2027-01-21", 1)
    twice = ar.extend(qbox, req["ref"], 1, "ook beelden van de politie opgevraagd", "fg")
    assert (twice["original_deadline"], twice["deadline"], twice["extension_months"]) == ("2026-12-21", "2027-02-21", 2)
    assert twice["extension_reason"] == "ook beelden van de politie opgevraagd"
    with pytest.raises(KluisError, match="at most 2"):
        ar.extend(qbox, req["ref"], 1, "nog meer", "fg")
    entries = audit.entries(qbox.catalog, action="request_extend")
    assert [(e["case_ref"], e["details"]["deadline"], e["details"]["months"]) for e in entries] == [
        (req["ref"], "2027-01-21", 1), (req["ref"], "2027-02-21", 1)]


def test_an_extension_counts_from_receipt_like_the_first_deadline(qbox, clock):
    clock.advance(days=80)  # 10 February 2027
    req = register(qbox, received=date(2027, 1, 31))
    assert req["deadline"] == "2027-02-28"
    assert ar.extend(qbox, req["id"], 2, "complex", "fg")["deadline"] == "2027-04-30"  # not 28 April


def test_no_extension_after_the_first_deadline_nor_for_a_complaint_nor_without_a_reason(qbox, clock):
    req = register(qbox)
    with pytest.raises(KluisError, match="reason"):
        ar.extend(qbox, req["id"], 1, "  ", "fg")
    with pytest.raises(KluisError, match="1 or 2"):
        ar.extend(qbox, req["id"], 0, "x", "fg")
    with pytest.raises(KluisError, match="not an AVG request"):
        ar.extend(qbox, register(qbox, kind="klacht")["id"], 1, "x", "fg")
    clock.advance(days=30)  # 22 December: the first deadline (21 December) has passed
    with pytest.raises(KluisError, match="has passed"):
        ar.extend(qbox, req["id"], 1, "te laat", "fg")
    assert ar.get(qbox, req["id"])["deadline"] == "2026-12-21"
    assert audit.entries(qbox.catalog, action="request_extend") == []


# --- the place -------------------------------------------------------------------------------------------------
def place(box: Box, recording_id: str, point: tuple[float, float]) -> None:
    with box.catalog.transaction():
        recording_places.add(box.catalog.db, recording_id, [("trigger_on", *point, None)])


def test_a_point_on_the_map_leaves_out_recordings_made_elsewhere_and_keeps_those_without_a_location(qbox, tmp_path, ids):
    there = store(qbox, tmp_path, INCIDENT - timedelta(seconds=10), camera="AXIS01")
    elsewhere = store(qbox, tmp_path, INCIDENT - timedelta(seconds=10), camera="AXIS02")
    place(qbox, there, (52.0912, 5.1220))   # about 70 m from the bridge
    place(qbox, elsewhere, AMERSFOORT)
    done = ar.register(qbox, requester="P. de Boer", kind="inzage", received_on=date(2026, 11, 21),
                       given_time=INCIDENT, actor="fg", place="Bakkerbrug",
                       place_at="https://www.openstreetmap.org/#map=18/52.0907/5.1214")
    assert {m["id"] for m in done.matches} == {there, ids["a"], ids["b"]}  # a and b carry no location
    assert [(m["id"], m["distance_m"] > 15_000) for m in done.elsewhere] == [(elsewhere, True)]
    assert next(m for m in done.matches if m["id"] == there)["distance_m"] < 100
    assert "1 recording(s)" in done.place_note and "2 recording(s) carry no location" in done.place_note
    assert (done.request["place_lat"], done.request["place_lon"], done.request["place_radius_m"]) == (*BAKKERBRUG, 250)
    [entry] = audit.entries(qbox.catalog, action="request_add")
    assert entry["details"]["left_out_by_place"] == [elsewhere]
    # A wide radius takes it in.
    wide = ar.register(qbox, requester="Q", kind="inzage", received_on=date(2026, 11, 21), given_time=INCIDENT,
                       actor="fg", place_at=BAKKERBRUG, radius_m=30_000)
    assert elsewhere in {m["id"] for m in wide.matches} and wide.elsewhere == []


@pytest.mark.parametrize("text, point", [
    ("52.0907, 5.1214", BAKKERBRUG), ("52.0907 5.1214", BAKKERBRUG), ("geo:52.0907,5.1214?z=19", BAKKERBRUG),
    ("https://www.openstreetmap.org/?mlat=52.0907&mlon=5.1214#map=19", BAKKERBRUG),
    ("https://maps.example/place/@52.0907,5.1214,17z", BAKKERBRUG), ("", None), (None, None)])
def test_places_are_read_as_people_type_or_paste_them(text, point):
    assert recording_places.parse_place(text) == point


@pytest.mark.parametrize("text", ["Oudegracht 12", "95.0, 5.0", "52.09, 190"])
def test_what_is_no_place_is_refused(text):
    with pytest.raises(KluisError, match="not a place"):
        recording_places.parse_place(text)


# --- letters ---------------------------------------------------------------------------------------------------
def test_letters_follow_the_register_and_are_on_record(qbox, clock):
    req = register(qbox, place="Oudegracht bij de Bakkerbrug")
    _, receipt = request_letters.make(qbox, req["ref"], "receipt", "fg", client="test")
    text = text_of(receipt)
    assert req["ref"] in text and "P. de Boer" in text and "21 november 2026" in text
    assert "2 opnames" in text and "21 december 2026" in text and "Oudegracht bij de Bakkerbrug" in text
    with pytest.raises(KluisError, match="not extended"):
        request_letters.make(qbox, req["ref"], "extension", "fg")
    with pytest.raises(KluisError, match="still open"):
        request_letters.make(qbox, req["ref"], "outcome", "fg")

    ar.extend(qbox, req["ref"], 2, "de beelden van drie camera's moeten worden bewerkt", "fg")
    text = text_of(request_letters.make(qbox, req["ref"], "extension", "fg")[1])
    assert "2 maanden" in text and "de beelden van drie camera's moeten worden bewerkt" in text
    assert "21 februari 2027" in text and "21 december 2026" in text and "12, derde lid" in text

    ar.close(qbox, req["ref"], "answered", "fg", decision_ref="B-2026-117")
    text = text_of(request_letters.make(qbox, req["ref"], "outcome", "fg")[1])
    assert "B-2026-117" in text and "2 opnames gevonden" in text and "bezwaar maken" in text

    assert [row["kind"] for row in request_letters.made(qbox, req["id"])] == ["receipt", "extension", "outcome"]
    entries = audit.entries(qbox.catalog, action="request_letter")
    assert [e["details"]["letter"] for e in entries] == ["receipt", "extension", "outcome"]
    assert all("de Boer" not in str(e) for e in entries)  # the requester's name stays in the register


def test_an_upheld_objection_letter_says_what_was_deleted_and_what_another_hold_keeps(qbox, ids):
    req = register(qbox, kind="bezwaar")
    retention.add_hold(qbox, ids["b"], "police_report", "PV-2026-1", "fg")
    ar.close(qbox, req["ref"], "upheld", "fg", decision_ref="B-9")
    text = text_of(request_letters.make(qbox, req["ref"], "outcome", "fg")[1])
    assert "bezwaar toe te kennen (besluit B-9)" in text
    assert "één opname verwijderd" in text and "Eén opname kunnen wij nog niet verwijderen" in text
    assert "PV-2026-1" not in text  # another case's reference is not the requester's business
