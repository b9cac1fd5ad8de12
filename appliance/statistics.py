"""Counts for the pilot evaluation and the report to the council (the Statistieken page and its CSV).

What a viewer counts follows what they may list: a team leader counts the recordings of their own team
(the same rows /opnames shows them, appliance.roles.scope_sql), and the holds on those; every other role
that may read statistics (privacy officer, keeper) counts every recording. Counts name no footage, so a
keeper, who may not list recordings, still sees the box's totals."""

from __future__ import annotations

from . import roles
from .catalog import Catalog


def counts_everything(user: dict) -> bool:
    """Whether `user` counts every recording (else those of their team, or their own)."""
    return roles.SCOPES.get(user["role"]) not in (roles.SCOPE_TEAM, roles.SCOPE_OWN)


def scope(user: dict) -> tuple[str, list]:
    """A WHERE fragment (over alias r) of the recordings `user` counts."""
    return ("1", []) if counts_everything(user) else roles.scope_sql(user)


def statistics(catalog: Catalog, user: dict) -> dict[str, list[tuple[str, int]]]:
    """Recordings per month, per team, per reason; holds per purpose, within what `user` counts (see the
    module's docstring). Months are UTC months (a recording near midnight on the last day may count in
    the next month). A team of '' is a recording whose officer the box did not know (appliance.teams)."""
    db = catalog.db
    where, params = scope(user)

    def grouped(expression: str, source: str = "recordings r") -> list[tuple[str, int]]:
        return [tuple(row) for row in db.execute(
            f"SELECT {expression}, count(*) FROM {source} WHERE {where} GROUP BY 1 ORDER BY 2 DESC, 1", params)]

    per_month = [tuple(row) for row in db.execute(
        f"SELECT substr(r.start_time, 1, 7), count(*) FROM recordings r WHERE {where} GROUP BY 1 ORDER BY 1", params)]
    return {
        "per_month": per_month,
        "per_team": grouped("coalesce(r.team, '')"),
        "per_reason": grouped("coalesce(r.reason, '')"),
        "holds_per_purpose": grouped("h.purpose", "holds h LEFT JOIN recordings r ON r.id = h.recording_id"),
    }
