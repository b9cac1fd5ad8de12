"""Reading the statistics (appliance/statistics.py keeps them): a period, what a viewer counts, the tables.

What a viewer counts follows what they may list: a team leader counts the recordings of their own team
(nothing when no team is set for them); every other role that may read statistics (privacy officer,
auditor, keeper) counts every recording, also those whose team the box never knew. Counts name no
footage, so a keeper or an auditor, who may not list recordings, still sees the box's totals.

A period is a run of whole months (the statistics keep no finer time): a month, a quarter, a year, or
from one month to another; a date stands for its month."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

from . import roles, statistics
from .catalog import Catalog
from .errors import KluisError

# The tables, in the order the page, the CSV and the council report show them: key -> the fact it counts.
# 'per_month' and 'per_team' count recordings by month and by team.
TABLES = ("per_month", "per_team", statistics.REASON, statistics.WARNING, statistics.WARNINGS,
          statistics.CATEGORY, statistics.CAMERA_MODEL, statistics.SOURCE, statistics.VIEWED, statistics.VIEWS,
          statistics.HOLD_PURPOSE, statistics.OUTCOME)

_MONTH = re.compile(r"(\d{4})-(\d{2})")
_DAY = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_QUARTER = re.compile(r"(\d{4})-?[QqKk]([1-4])")
_YEAR = re.compile(r"\d{4}")
DUTCH_MONTHS = ("januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus", "september",
                "oktober", "november", "december")


@dataclass(frozen=True)
class Period:
    """Whole months from `first` to `last` (YYYY-MM, both included); None: no bound."""
    first: str | None = None
    last: str | None = None

    def __post_init__(self) -> None:
        if self.first and self.last and self.first > self.last:
            raise KluisError(f"the period ends ({self.last}) before it starts ({self.first})")

    @property
    def everything(self) -> bool:
        return self.first is None and self.last is None

    def dutch(self) -> str:
        """The period as a Dutch heading says it: 'november 2026', 'oktober 2026 t/m december 2026'."""
        if self.everything:
            return "alle maanden"
        first, last = (month_dutch(m) if m else None for m in (self.first, self.last))
        if self.first == self.last:
            return str(first)
        if self.first and self.last:
            year_first, year_last = self.first[:4], self.last[:4]
            if year_first == year_last and self.first[5:] == "01" and self.last[5:] == "12":
                return f"het jaar {year_first}"
            return f"{first} t/m {last}"
        return f"vanaf {first}" if first else f"tot en met {last}"

    def as_dict(self) -> dict:
        return {"first": self.first, "last": self.last}


def month_dutch(month: str) -> str:
    return f"{DUTCH_MONTHS[int(month[5:7]) - 1]} {month[:4]}"


def _month(text: str, what: str) -> str:
    text = text.strip()
    match = _DAY.fullmatch(text) or _MONTH.fullmatch(text)
    if not match:
        raise KluisError(f"{what} {text!r} is not a month (YYYY-MM) or a date (YYYY-MM-DD)")
    year, month = int(match.group(1)), int(match.group(2))
    try:
        date(year, month, int(match.group(3)) if match.re is _DAY else 1)
    except ValueError:
        raise KluisError(f"{what} {text!r} is not a date") from None
    return f"{year:04d}-{month:02d}"


def between(start: str | None, end: str | None) -> Period:
    """From the month of `start` to the month of `end`, both included (either may be open)."""
    return Period(_month(start, "the start") if start else None, _month(end, "the end") if end else None)


def parse_period(text: str | None) -> Period:
    """A month (2026-11), a quarter (2026-Q4, 2026-K4), a year (2026), or nothing: every month."""
    text = (text or "").strip()
    if not text:
        return Period()
    if _YEAR.fullmatch(text):
        return Period(f"{text}-01", f"{text}-12")
    if match := _QUARTER.fullmatch(text):
        year, quarter = match.group(1), int(match.group(2))
        return Period(f"{year}-{3 * quarter - 2:02d}", f"{year}-{3 * quarter:02d}")
    month = _month(text, "the period")
    return Period(month, month)


def counts_everything(user: dict | None) -> bool:
    """Whether `user` counts every recording (else those of their team). None: a report made on the
    break-glass path, or by the box itself."""
    return user is None or roles.SCOPES.get(user["role"]) not in (roles.SCOPE_TEAM, roles.SCOPE_OWN)


@dataclass
class Report:
    period: Period
    everything: bool                   # every recording counted, or a team's only
    team: str | None                   # the team counted (a team leader's)
    tables: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    months: list[str] = field(default_factory=list)  # the months with data, box-wide in the viewer's scope

    def total(self, key: str = "per_month") -> int:
        return sum(n for _, n in self.tables.get(key, []))

    def count(self, key: str, value: str) -> int:
        return dict(self.tables.get(key, [])).get(value, 0)


def _scope(user: dict | None) -> tuple[str, list]:
    if counts_everything(user):
        return "1", []
    assert user is not None
    if roles.SCOPES.get(user["role"]) == roles.SCOPE_TEAM and user.get("team"):
        return "team = ?", [user["team"]]
    return "0", []


def report(catalog: Catalog, user: dict | None, period: Period = Period()) -> Report:
    """Every table for the period, within what `user` counts (see the module's docstring). One pass over
    the table (it has no index on the month: appliance/schema/statistics.py says why), grouped here."""
    db = catalog.db
    scope, params = _scope(user)
    where, when = [scope], list(params)
    if period.first:
        where.append("month >= ?")
        when.append(period.first)
    if period.last:
        where.append("month <= ?")
        when.append(period.last)
    result = Report(period, counts_everything(user), None if counts_everything(user) else (user or {}).get("team"))
    per_month: dict[str, int] = {}
    per_team: dict[str, int] = {}
    facts: dict[str, dict[str, int]] = {key: {} for key in TABLES[2:]}
    for fact, value, month, team, n in db.execute(
            "SELECT fact, value, month, team, sum(n) FROM statistics WHERE " + " AND ".join(where)
            + " GROUP BY fact, value, month, team", when):
        if fact == statistics.RECORDINGS:
            per_month[month] = per_month.get(month, 0) + n
            per_team[team] = per_team.get(team, 0) + n
        elif fact in facts:
            facts[fact][value] = facts[fact].get(value, 0) + n
    result.tables["per_month"] = sorted(per_month.items())
    result.tables["per_team"] = sorted(per_team.items(), key=lambda kv: (-kv[1], kv[0]))
    for fact, counts in facts.items():
        result.tables[fact] = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    if period.everything:
        result.months = sorted(per_month, reverse=True)
    else:
        result.months = [r[0] for r in db.execute(
            f"SELECT DISTINCT month FROM statistics WHERE fact = ? AND {scope} ORDER BY month DESC",
            [statistics.RECORDINGS, *params])]
    return result


def period_choices(months: list[str]) -> list[tuple[str, str]]:
    """The periods a viewer may pick: (value for parse_period, kind: year, quarter or month), for every
    year, quarter and month with data, newest first."""
    choices: list[tuple[str, str]] = []
    for year in sorted({m[:4] for m in months}, reverse=True):
        choices.append((year, "year"))
        in_year = [m for m in months if m.startswith(year)]
        for quarter in range(4, 0, -1):
            if {f"{year}-{3 * quarter - k:02d}" for k in range(3)} & set(in_year):
                choices.append((f"{year}-K{quarter}", "quarter"))
        choices += [(m, "month") for m in sorted(in_year, reverse=True)]
    return choices
