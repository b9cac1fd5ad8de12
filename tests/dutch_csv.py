"""Read a CSV file as Dutch Excel does: it must start with the UTF-8 byte-order mark (else Excel reads
Windows-1252) and be split on ';' (the list separator of the Dutch locale; ',' is the decimal sign)."""

from __future__ import annotations

import csv
import io
import re

BOM = b"\xef\xbb\xbf"
LOCAL_TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(,\d{3})?[+-]\d{2}:\d{2}$")


def table(data: bytes | str) -> list[list[str]]:
    """The rows of the file (header first); fails unless it is a Dutch-Excel CSV."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    assert raw.startswith(BOM), f"no UTF-8 byte-order mark: {raw[:20]!r}"
    text = raw[len(BOM):].decode("utf-8")
    assert "\r\n" in text or not text.strip(), "Excel expects CRLF line ends"
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=";"))
    assert rows and len(rows[0]) > 1, f"not split on ';': {rows[:1]}"
    assert all(len(row) == len(rows[0]) for row in rows), "rows of unequal width"
    return rows


def records(data: bytes | str, columns: tuple[str, ...] | None = None, lang: str = "nl") -> list[dict[str, str]]:
    """The rows as dicts keyed by the heading; with `columns` (the writer's column codes) the heading row
    must be their headings in `lang` (appliance.csv_columns), and the rows are keyed by the codes."""
    header, *rows = table(data)
    if columns is not None:
        from appliance.csv_columns import headings

        assert header == headings(columns, lang), header
        header = list(columns)
    return [dict(zip(header, row)) for row in rows]
