"""Why a recording was made: the officer's reason, given after the shift ("Mijn opnames"), or the team
leader's; whether and how often the officer warned first (Den Haag's officers switch on after two warnings).

The reasons come from `[reasons]` in kluis.toml (appliance.config_models.ReasonsSettings, re-read so that
an edit takes effect without a restart); one of them ("anders") asks for a text. The reason is information
about the recording, not a purpose to view it: nothing here reads footage, and setting it writes a
'reason_set' entry, never a 'view' (appliance.recordings.set_reason, the one place that changes it).

This module checks what is given, and lists what the officer and the team leader still have to fill in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from . import config as config_mod
from . import roles
from .box import Box
from .clock import to_iso
from .config_models import ReasonsSettings
from .errors import KluisError

MAX_WARNINGS = 20   # more is a typing error, not a count
MAX_TEXT = 200      # the free text of "anders": a few words, not a report
OWN_SHOWN = 200     # recordings "Mijn opnames" lists (newest first); the count says how many there are


class ReasonError(KluisError):
    """What is wrong with a reason given; `field` names the form's field (reason, reason_text, warnings)."""

    def __init__(self, message: str, field: str):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Given:
    """A reason as it is stored: the code, its text (only for a reason that asks for one), the warnings
    (None: not said) and warning_given derived from them."""
    reason: str
    text: str | None
    warnings: int | None

    @property
    def warning_given(self) -> int | None:
        return None if self.warnings is None else int(self.warnings > 0)


def current(box: Box) -> ReasonsSettings:
    """The reasons in kluis.toml now."""
    return config_mod.load(box.data_dir).reasons


def check(settings: ReasonsSettings, reason: str, text: str | None, warnings: int | bool | None) -> Given:
    """The reason as it will be stored, or ReasonError naming the field that is wrong."""
    reason = (reason or "").strip()
    offered = settings.offered()
    if reason not in offered:
        raise ReasonError(f"unknown reason {reason!r} (choose {', '.join(offered)})", "reason")
    text = " ".join((text or "").split()) or None
    if reason in settings.free_text:
        if not text:
            raise ReasonError(f"the reason {offered[reason]!r} needs a short text", "reason_text")
        if len(text) > MAX_TEXT:
            raise ReasonError(f"the text holds {len(text)} characters; at most {MAX_TEXT}", "reason_text")
    else:
        text = None  # a text belongs to the reason that asked for it
    if isinstance(warnings, bool):
        warnings = int(warnings)
    if warnings is not None and not 0 <= warnings <= MAX_WARNINGS:
        raise ReasonError(f"warnings must be between 0 and {MAX_WARNINGS}", "warnings")
    return Given(reason, text, warnings)


def parse_warnings(given: str, times: str) -> int | None:
    """The warnings from the form: given 'no' -> 0, 'yes' with a number of times (empty: once), '' -> not said.
    ReasonError for a number that is not one."""
    if given == "no":
        return 0
    if given != "yes":
        return None
    times = (times or "").strip()
    if not times:
        return 1
    if not times.isdigit() or not 1 <= int(times) <= MAX_WARNINGS:
        raise ReasonError(f"the number of warnings must be a whole number from 1 to {MAX_WARNINGS}", "warnings")
    return int(times)


def label(settings: ReasonsSettings, code: str | None) -> str:
    """A reason's label as configured ('' for none; the code itself for one no longer configured)."""
    if not code:
        return ""
    return settings.offered().get(code, code)


# What is still to be filled in ------------------------------------------------------------------------

_OPEN = ("r.state = 'stored' AND r.reason IS NULL AND r.derived_from IS NULL")


def missing(box: Box, user: dict, limit: int) -> tuple[int, list[dict]]:
    """Recordings in the user's scope without a reason `todo_days` after they ended (a redacted copy
    takes its original's): how many, and the oldest `limit`."""
    scope, params = roles.scope_sql(user)
    cutoff = to_iso(box.clock() - timedelta(days=current(box).todo_days))
    where = f"{_OPEN} AND r.end_time <= ? AND {scope}"
    params = [cutoff, *params]
    db = box.catalog.db
    count = db.execute(f"SELECT count(*) FROM recordings r WHERE {where}", params).fetchone()[0]
    rows = list(db.query(f"SELECT r.id, r.officer, r.camera_serial, r.start_time, r.end_time FROM recordings r "
                         f"WHERE {where} ORDER BY r.end_time, r.id LIMIT ?", [*params, limit]))
    return count, rows


def own(box: Box, user: dict, *, only_missing: bool = False) -> tuple[int, list[dict]]:
    """"Mijn opnames": the user's own recordings (officer = the user's name; not redacted copies), newest
    first, with their reason, warnings and categories; metadata only. (count, the first OWN_SHOWN)."""
    where = "r.officer = ? AND r.state = 'stored' AND r.derived_from IS NULL"
    if only_missing:
        where += " AND r.reason IS NULL"
    params = [user["name"]]
    db = box.catalog.db
    count = db.execute(f"SELECT count(*) FROM recordings r WHERE {where}", params).fetchone()[0]
    rows = list(db.query(
        "SELECT r.id, r.camera_serial, r.start_time, r.end_time, r.reason, r.reason_text, r.warnings, "
        "r.warning_given, (SELECT group_concat(c.category, ',') FROM recording_categories c "
        f"WHERE c.recording_id = r.id) AS categories FROM recordings r WHERE {where} "
        "ORDER BY r.start_time DESC, r.id LIMIT ?", [*params, OWN_SHOWN]))
    for row in rows:
        row["categories"] = sorted(row["categories"].split(",")) if row["categories"] else []
    return count, rows
