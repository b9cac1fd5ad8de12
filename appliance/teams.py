"""Which team a recording belongs to: the one rule every ingest path, the users' changes and the
statistics follow.

A recording belongs to the team of its officer at the time it was catalogued: the team of the Kluis user
the officer is. The officer is who every ingest path already names (the camera's personal officer or the
shift of a pooled camera for the dock and USB cameras, `--officer` for `kluis import`, the Axis user for
an Axis W800). That user is

- the Kluis user whose name is the officer, or
- for an Axis recording, also the Kluis user whose name is the Axis user's UserID (the W800 names its users
  "Name (UserID)", and a municipality gives its Kluis users their personnel number as often as their name).

The team is fixed when the row is written, so a later move of the officer to another team does not move
their older recordings (a team leader keeps seeing the recordings made in their team). When the officer
is not a Kluis user, or has no team, the team stays empty: "onbekend" in the UI. Such a recording is
listed by the privacy officer (and by a handhaver user of the officer's name, as any recording), by no
team leader, and is counted under "onbekend" in the statistics of those who count every recording. When the keeper later gives that officer a team (a new user, or a role
change), the officer's recordings without a team get it in the same transaction (`adopt_recordings`):
the box did not know better at the time, and that team is what `roles.scope_sql` would show them to
anyway. A team already recorded never changes.

The migration step `teams.backfill` (appliance/schema/teams.py) filled the rows catalogued before this
rule with the same lookup, in SQL.
"""

from __future__ import annotations

from . import statistics
from .catalog import Catalog

UNKNOWN = None  # the team of a recording whose officer the box does not know

# The Axis recordings whose W800 user has UserID = ? (the container name starts with the user's UUID and
# an underscore: <UUID>_<BWCSerialNumber>_<TriggerOnTime>).
_AXIS_RECORDINGS_OF_USER_ID = (
    "SELECT o.recording_id FROM axis_objects o JOIN axis_users a ON a.account = o.account "
    "AND substr(o.container, 1, length(a.uuid) + 1) = a.uuid || '_' "
    "WHERE a.user_id = ? AND o.kind = 'clip' AND o.recording_id IS NOT NULL"
)


def officer_team(catalog: Catalog, officer: str | None, *, axis_user_id: str | None = None) -> str | None:
    """The team a new recording of `officer` belongs to (see the module's docstring), or None: unknown.
    `axis_user_id`: the UserID of the Axis user who recorded it, for an Axis recording."""
    for name in (officer, axis_user_id):
        name = (name or "").strip()
        if not name:
            continue
        row = catalog.db.execute("SELECT team FROM users WHERE name = ?", [name]).fetchone()
        if row and row[0]:
            return row[0]
    return UNKNOWN


def with_team(catalog: Catalog, fields: dict) -> dict:
    """The catalog fields of a new recording with its team: the fields' own when they name one, also an
    empty one (a redacted copy keeps its original's; the Axis path looked its team up already, with the
    W800's UserID), else its officer's."""
    if "team" in fields:
        return fields
    return {**fields, "team": officer_team(catalog, fields.get("officer"))}


def adopt_recordings(catalog: Catalog, name: str, team: str | None) -> int:
    """Give the recordings of officer `name` that have no team yet `team` (the user just got it); returns
    how many. Runs inside the caller's transaction."""
    if not team:
        return 0
    cursor = catalog.db.execute(
        "UPDATE recordings SET team = ? WHERE team IS NULL AND (officer = ? "
        f"OR id IN ({_AXIS_RECORDINGS_OF_USER_ID}) OR derived_from IN ({_AXIS_RECORDINGS_OF_USER_ID}))",
        [team, name, name, name])
    statistics.adopt_team(catalog, team)
    return cursor.rowcount
