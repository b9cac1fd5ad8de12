"""Dutch formats through one set of functions (webui/formats.py): decimal commas, month names, no ISO "T",
plurals; and what the pages write with them."""

from __future__ import annotations

from datetime import date, datetime, timezone

import jinja2
import pytest

from appliance.errors import KluisError
from appliance.redaction.plan import make_plan
from webui import i18n, labels
from webui.formats import Formats, jinja_filters, parse_moment

TZ = "Europe/Amsterdam"
MOMENT = datetime(2027, 1, 4, 13, 5, 30, tzinfo=timezone.utc)  # 14:05:30 in Amsterdam (winter time)


def test_dutch_numbers_sizes_and_moments():
    nl = Formats("nl", TZ)
    assert nl.number(1234.5) == "1.234,5" and nl.number(100000) == "100.000"
    assert nl.number(0.5, 2) == "0,50" and nl.number(1234, 0) == "1.234"
    assert nl.size(1536 * 2**20) == "1,5 GiB" and nl.size(512) == "512 B"
    assert nl.moment(MOMENT) == "4 januari 2027 om 14:05"
    assert nl.moment("2026-07-01T10:00:00Z") == "1 juli 2026 om 12:00"  # summer time
    assert nl.day("2027-03-15") == "15 maart 2027" and nl.day(date(2027, 10, 1)) == "1 oktober 2027"
    assert nl.time(MOMENT) == "04-01-2027 14:05:30" and nl.time(MOMENT, False) == "04-01-2027 14:05"
    assert "T" not in nl.moment(MOMENT) + nl.time(MOMENT)
    assert nl.moment(None) == nl.time("") == nl.number(None) == ""


def test_english_keeps_its_own_conventions():
    en = Formats("en", TZ)
    assert en.number(1234.5) == "1,234.5" and en.size(1536 * 2**20) == "1.5 GiB"
    assert en.moment(MOMENT) == "4 January 2027 at 14:05"


def test_the_template_filters_use_the_pages_language():
    env = jinja2.Environment(autoescape=True)
    env.filters.update(jinja_filters())
    template = env.from_string("{{ n|getal }} · {{ t|moment }} · {{ d|datum }} · {{ s|grootte }} · {{ t|tijd }}")
    values = {"n": 1234.5, "t": "2027-01-04T13:05:30+00:00", "d": "2027-01-04", "s": 2 * 2**20}
    assert template.render(fmt=Formats("nl", TZ), **values) == \
        "1.234,5 · 4 januari 2027 om 14:05 · 4 januari 2027 · 2,0 MiB · 04-01-2027 14:05:30"
    assert template.render(fmt=Formats("en", TZ), **values).startswith("1,234.5 · 4 January 2027 at 14:05")


def test_a_typed_moment_is_read_as_the_pages_write_it_and_as_a_browser_sends_it():
    assert parse_moment("04-01-2027 14:05", TZ) == datetime(2027, 1, 4, 13, 5, tzinfo=timezone.utc)
    assert parse_moment("2027-01-04T14:05", TZ) == datetime(2027, 1, 4, 13, 5, tzinfo=timezone.utc)
    assert parse_moment("04-01-2027", TZ) == datetime(2027, 1, 3, 23, 0, tzinfo=timezone.utc)
    with pytest.raises(KluisError):
        parse_moment("gisteren", TZ)


def test_plurals_in_dutch():
    nl = i18n.translations("nl")
    one, many = "%(n)s recording found.", "%(n)s recordings found."
    assert nl.ngettext(one, many, 1) % {"n": "1"} == "1 opname gevonden."
    assert nl.ngettext(one, many, 1234) % {"n": Formats("nl", TZ).number(1234)} == "1.234 opnames gevonden."
    day, days = "%(days)d day left", "%(days)d days left"
    assert nl.ngettext(day, days, 1) % {"days": 1} == "nog 1 dag"
    assert nl.ngettext(day, days, 3) % {"days": 3} == "nog 3 dagen"


def test_redaction_plan_mistakes_are_said_in_dutch():
    nl = i18n.translations("nl").gettext
    cases = {
        ("keep", "1,2,3"): "Geen gebied: 1,2,3. Geef X,Y,B,H in pixels, bijvoorbeeld 100,40,80,80.",
        ("box", "onzin"): "Geen kader: onzin. Geef T:X,Y,B,H of NAAM:T:X,Y,B,H.",
        ("mute", "5-2"): "Het tijdvak 5-2 eindigt voordat het begint.",
        ("mute", "a-b"): "Geen tijdvak: a-b. Geef BEGIN-EINDE in seconden, bijvoorbeeld 12-15,5.",
    }
    for (field, line), dutch in cases.items():
        with pytest.raises(KluisError) as caught:
            make_plan(**{{"keep": "keep", "box": "boxes", "mute": "mute"}[field]: [line]})
        assert labels.plan_error(nl, caught.value) == dutch


def test_sync_and_camera_words():
    nl = i18n.translations("nl").gettext
    assert labels.sync_skipped(nl, "outside the sync window 22:00-06:00") == "buiten het venster voor synchronisatie"
    assert labels.label(nl, labels.SYNC_COUNTS, "needs_rewrap") == "wacht op een sleutel"
    assert labels.camera_status(nl, "error: connection reset") == "fout"
    assert labels.recording_state(nl, {"state": "stored", "hold_purposes": ["complaint"]}) == "bewaard"
    assert labels.recording_state(nl, {"state": "stored", "hold_purposes": []}) == "opgeslagen"
    assert labels.recording_state(nl, {"state": "stored"}, held=True) == "bewaard"
    assert labels.recording_state(nl, {"state": "deleting"}, held=True) == "wordt verwijderd"
