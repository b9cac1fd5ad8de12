"""appliance.spreadsheet: the one writer of CSV files, as Dutch Excel opens them."""

from __future__ import annotations

import io
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from appliance import spreadsheet
from tests import dutch_csv

AMS = ZoneInfo("Europe/Amsterdam")


def test_cells_are_dutch():
    assert spreadsheet.cell(1.5, AMS) == "1,5" and spreadsheet.cell(2.0, AMS) == "2" and spreadsheet.cell(12, AMS) == "12"
    assert spreadsheet.cell(True, AMS) == "ja" and spreadsheet.cell(None, AMS) == ""
    # winter and summer time: the offset says which
    assert spreadsheet.cell("2026-12-07T16:05:00.000Z", AMS) == "2026-12-07 17:05:00+01:00"
    assert spreadsheet.cell("2026-07-07T16:05:00.250Z", AMS) == "2026-07-07 18:05:00,250+02:00"
    assert spreadsheet.cell(datetime(2026, 10, 25, 0, 30, tzinfo=timezone.utc), AMS) == "2026-10-25 02:30:00+02:00"
    assert spreadsheet.cell(datetime(2026, 10, 25, 1, 30, tzinfo=timezone.utc), AMS) == "2026-10-25 02:30:00+01:00"
    assert spreadsheet.cell({"b": 1, "a": "é"}, AMS) == '{"a": "é", "b": 1}'
    for formula in ("=1+1", "+31", "-2", "@SUM(A1)"):
        assert spreadsheet.cell(formula, AMS) == "'" + formula
    assert spreadsheet.cell(-2, AMS) == "-2"  # a number is no formula


def test_a_file_reads_back_as_dutch_excel_reads_it():
    out = io.StringIO(newline="")
    count = spreadsheet.write(out, ["naam", "tijd", "duur"], [("Zoë; de \"Vries\"", "2026-12-07T16:05:00.000Z", 2.25),
                                                              ("€", None, 3)], "Europe/Amsterdam")
    data = out.getvalue().encode("utf-8")
    assert count == 2 and data.startswith(b"\xef\xbb\xbf") and data.count(b"\xef\xbb\xbf") == 1
    assert dutch_csv.table(data) == [["naam", "tijd", "duur"], ['Zoë; de "Vries"', "2026-12-07 17:05:00+01:00", "2,25"],
                                     ["€", "", "3"]]
    assert spreadsheet.to_bytes(["naam", "tijd", "duur"], [("Zoë; de \"Vries\"", "2026-12-07T16:05:00.000Z", 2.25),
                                                           ("€", None, 3)], AMS) == data


def test_a_streamed_file_is_the_same_file():
    rows = [(n, f"naam {n}", n / 4) for n in range(5001)]
    pieces = list(spreadsheet.chunks(["n", "naam", "kwart"], rows, AMS, every=2000))
    assert len(pieces) == 3 and pieces[0].startswith(b"\xef\xbb\xbf")  # rows to 2000, to 4000, the last 1001
    whole = b"".join(pieces)
    assert whole == spreadsheet.to_bytes(["n", "naam", "kwart"], rows, AMS)
    table = dutch_csv.table(whole)
    assert len(table) == 5002 and table[3] == ["2", "naam 2", "0,5"]
