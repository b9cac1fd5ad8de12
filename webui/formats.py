"""How the web UI writes times, dates, numbers, sizes and counted things in the user's language: one set of
functions, given to every template as filters (webui/app.py), so that no page formats a date or a number
by hand.

Dutch conventions (Babel's CLDR data): a decimal comma and a dot between thousands (1.234,5), month names
in words in sentences ("4 januari 2027 om 14:05"), day-month-year in tables (04-01-2027 14:05), never the
ISO "T" a machine writes. Times are shown on the box's clock (its time zone)."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime
from babel.numbers import format_decimal

from appliance.clock import from_iso

LOCALES = {"nl": "nl_NL", "en": "en_GB"}  # en_GB: day before month, as the Dutch forms do


class Formats:
    """The formatters for one language and time zone."""

    def __init__(self, lang: str, timezone: str):
        self.lang = lang
        self.locale = LOCALES.get(lang, "nl_NL")
        self.tz = ZoneInfo(timezone)

    def _moment(self, value: str | datetime | None) -> datetime | None:
        if value is None or value == "":
            return None
        moment = from_iso(value) if isinstance(value, str) else value
        return moment.astimezone(self.tz)

    def time(self, value: str | datetime | None, seconds: bool = True) -> str:
        """A moment in a table: 20-11-2026 14:05:00 (both languages: day first)."""
        moment = self._moment(value)
        if moment is None:
            return ""
        return moment.strftime("%d-%m-%Y %H:%M:%S" if seconds else "%d-%m-%Y %H:%M")

    def moment(self, value: str | datetime | None) -> str:
        """A moment in a sentence: '4 januari 2027 om 14:05' / '4 January 2027 at 14:05'."""
        moment = self._moment(value)
        if moment is None:
            return ""
        pattern = "d MMMM y 'om' HH:mm" if self.lang == "nl" else "d MMMM y 'at' HH:mm"
        return format_datetime(moment, pattern, locale=self.locale)

    def day(self, value: str | date | datetime | None) -> str:
        """A date in a sentence: '4 januari 2027'. A date-only text ('2027-01-04') is a calendar day, not
        a moment: it is not moved into the time zone."""
        if value is None or value == "":
            return ""
        if isinstance(value, str):
            value = date.fromisoformat(value) if len(value) == 10 else from_iso(value).astimezone(self.tz)
        elif isinstance(value, datetime):
            value = value.astimezone(self.tz)
        return format_date(value, "d MMMM y", locale=self.locale)

    def number(self, value: float | int | None, places: int | None = None) -> str:
        """1.234,5 in Dutch, 1,234.5 in English; `places`: exactly that many decimals."""
        if value is None:
            return ""
        if places is not None:
            pattern = "#,##0" + ("." + "0" * places if places else "")
            return format_decimal(value, format=pattern, locale=self.locale)
        return format_decimal(value, locale=self.locale)

    def size(self, n: int | None) -> str:
        """Bytes as the largest binary unit that fits, one decimal: '1,5 GiB'."""
        if n is None:
            return ""
        for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
            if n >= scale:
                return f"{self.number(n / scale, 1)} {unit}"
        return f"{n} B"


def jinja_filters() -> dict:
    """The filters for the templates' environment: each uses the formatter of the page being rendered
    (render() puts it in the context as `fmt`), so one environment serves every language."""
    import jinja2

    def bind(name: str):
        @jinja2.pass_context
        def apply(context, value, *args):
            return getattr(context["fmt"], name)(value, *args)
        return apply

    return {"tijd": bind("time"), "moment": bind("moment"), "datum": bind("day"), "getal": bind("number"),
            "grootte": bind("size")}


DUTCH_MOMENTS = ("%d-%m-%Y %H:%M:%S", "%d-%m-%Y %H:%M", "%d-%m-%Y")


def parse_moment(text: str, timezone: str) -> datetime:
    """A moment typed in a form or filter: as the pages write it (20-11-2026 14:30) or as a browser's
    date-time field sends it (2026-11-20T14:30); read on the box's clock. KluisError if it is neither."""
    from appliance.clock import parse_time

    text = text.strip()
    for pattern in DUTCH_MOMENTS:
        try:
            return datetime.strptime(text, pattern).replace(tzinfo=ZoneInfo(timezone)).astimezone(ZoneInfo("UTC"))
        except ValueError:
            continue
    return parse_time(text, timezone)


def parse_day(text: str) -> date:
    """A calendar day typed in a form: 21-11-2026 (as the pages write it) or 2026-11-21 (a browser's date
    field). ValueError if it is neither."""
    text = text.strip()
    try:
        return datetime.strptime(text, "%d-%m-%Y").date()
    except ValueError:
        return date.fromisoformat(text)
