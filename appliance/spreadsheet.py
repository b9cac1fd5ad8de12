"""CSV as a Dutch spreadsheet opens it: every CSV file Kluis writes (logboek, verwijderverslag, statistieken,
overdrachtsregister, the audit excerpt in a handover package, and the CLI's --csv) goes through here.

Dutch Excel splits a CSV on the list separator of the Dutch locale, ';' (a comma is its decimal sign), and
reads a file without a byte-order mark as Windows-1252, mangling "ë" and "€". So: ';' between cells, UTF-8
with a BOM, CRLF line ends, a decimal comma in numbers with decimals, and times in the box's own zone with
their UTC offset (2026-12-07 17:05:00+01:00), so that a reader neither has to convert UTC nor guess which
hour a time in the autumn's double hour was. A text cell that a spreadsheet would run as a formula (it
starts with =, +, - or @: a login name typed at the login page ends up in the audit log) gets a leading
apostrophe, which Excel shows as text and does not display.
"""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import datetime
from typing import Any, Iterable, Iterator, Sequence, TextIO
from zoneinfo import ZoneInfo

from .clock import from_iso

BOM = "\ufeff"
DELIMITER = ";"
MEDIA_TYPE = "text/csv"
_ISO_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$")
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def local_time(moment: datetime | str, tz: ZoneInfo) -> str:
    """A moment in the zone `tz` with its offset, to the second (milliseconds only when there are any,
    after a comma as ISO 8601 allows: the audit log keeps them and its export loses nothing)."""
    if isinstance(moment, str):
        moment = from_iso(moment)
    local = moment.astimezone(tz)
    text = local.strftime("%Y-%m-%d %H:%M:%S")
    if local.microsecond:
        text += f",{local.microsecond // 1000:03d}"
    offset = local.strftime("%z")  # +0100
    return f"{text}{offset[:3]}:{offset[3:]}"


def cell(value: Any, tz: ZoneInfo) -> str:
    """One value as the text of its cell."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "ja" if value else "nee"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return (str(int(value)) if value.is_integer() else repr(value)).replace(".", ",")
    if isinstance(value, datetime):
        return local_time(value, tz)
    if isinstance(value, (dict, list)):
        value = json.dumps(value, sort_keys=True, ensure_ascii=False)
    text = str(value)
    if _ISO_TIME.match(text):
        return local_time(text, tz)
    if text.startswith(_FORMULA):
        return "'" + text
    return text


def write(out: TextIO, header: Sequence[str], rows: Iterable[Sequence[Any]], tz: ZoneInfo | str) -> int:
    """Write the BOM, the header and the rows to a text stream opened with newline=""; returns the number
    of rows."""
    counted = _Counted(rows)
    for text in _texts(header, counted, tz):
        out.write(text)
    return counted.count


def chunks(header: Sequence[str], rows: Iterable[Sequence[Any]], tz: ZoneInfo | str,
           every: int = 2000) -> Iterator[bytes]:
    """The file as UTF-8 pieces of about `every` rows (the first with the BOM and the header), for a
    download streamed while it is read."""
    for text in _texts(header, rows, tz, every):
        yield text.encode("utf-8")


def to_bytes(header: Sequence[str], rows: Iterable[Sequence[Any]], tz: ZoneInfo | str) -> bytes:
    """The whole file as UTF-8 bytes (BOM included), for a download."""
    return b"".join(chunks(header, rows, tz))


def _texts(header: Sequence[str], rows: Iterable[Sequence[Any]], tz: ZoneInfo | str,
           every: int = 2000) -> Iterator[str]:
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    out = io.StringIO(newline="")
    out.write(BOM)
    writer = csv.writer(out, delimiter=DELIMITER, lineterminator="\r\n")
    writer.writerow(header)
    for number, row in enumerate(rows, start=1):
        writer.writerow([cell(value, zone) for value in row])
        if number % every == 0:
            yield out.getvalue()
            out.seek(0)
            out.truncate()
    yield out.getvalue()


class _Counted:
    def __init__(self, rows: Iterable[Sequence[Any]]):
        self.rows, self.count = rows, 0

    def __iter__(self) -> Iterator[Sequence[Any]]:
        for row in self.rows:
            self.count += 1
            yield row
