"""Who may do what: the one role -> permission table that both the CLI and the web UI check.

Roles (Dutch name in the UI):
- keeper (beheerder): users and roles, cameras and pairing, settings, storage. Views no footage: the
  role keeps the keeper from it, not the absence of a key slot (the keeper needs one to enrol others).
- team_leader (teamleider): recordings of the own team: list, view with a purpose, holds.
- privacy_officer (privacybeheerder, FG): all recordings, exports, the audit log, the deletion report.
- officer (handhaver): own recordings; may view one for training at own request.
- auditor: the audit log, the deletion report, the handover register and the statistics (to check the
  pilot's figures), with the report to the council.
"""

from __future__ import annotations

from .errors import KluisError, NotFound

KEEPER = "keeper"
TEAM_LEADER = "team_leader"
PRIVACY_OFFICER = "privacy_officer"
OFFICER = "officer"
AUDITOR = "auditor"
ROLES = (KEEPER, TEAM_LEADER, PRIVACY_OFFICER, OFFICER, AUDITOR)

# Permissions. A page or command names exactly one; "overview" is what every logged-in user may see.
OVERVIEW = "overview"
RECORDINGS_LIST = "recordings.list"      # list and open the metadata page (within the role's scope)
RECORDINGS_VIEW = "recordings.view"      # play footage, with a purpose the role may use
RECORDINGS_ANNOTATE = "recordings.annotate"  # set the reason for recording, the warnings given (no footage)
RECORDINGS_CATEGORIZE = "recordings.categorize"  # put a recording in retention categories, take it out
OWN_RECORDINGS = "recordings.own"        # "Mijn opnames": the officer's own recordings, metadata only
HOLDS_MANAGE = "holds.manage"            # place and release holds
RECORDINGS_EXPORT = "recordings.export"
CAMERAS_MANAGE = "cameras.manage"
USERS_MANAGE = "users.manage"
AUDIT_READ = "audit.read"
DELETION_REPORT = "deletion_report.read"
STATS_READ = "stats.read"
STATS_REPORT = "stats.report"            # the report to the council (appliance/council_report.py)
SETTINGS_MANAGE = "settings.manage"
# Handovers to police and prosecutor (appliance/handover.py), four eyes: one person prepares, a second
# approves. A team leader may prepare a handover of the own team's recordings; only the privacy officer
# approves (and so produces the package). The register is read by those and by the auditor.
HANDOVER_PREPARE = "handover.prepare"
HANDOVER_APPROVE = "handover.approve"
HANDOVER_READ = "handover.read"
# Requests of people who were filmed (appliance/access_requests.py): register, search-and-hold, close.
REQUESTS_MANAGE = "requests.manage"
# Redacted derivatives (appliance/redaction/): blur bystanders' faces, mute audio, for a request.
RECORDINGS_REDACT = "recordings.redact"
# The processing register entry and the DPIA's fact sheet (appliance/register.py): no personal data of
# anyone in particular, but the privacy officer's documents to keep.
REGISTER_READ = "register.read"
# Cases (appliance/cases.py, appliance/case_file.py): read a case's file (its recordings within the
# reader's scope), and open, close (releasing its holds) and reopen one.
CASES_READ = "cases.read"
CASES_MANAGE = "cases.manage"

PERMISSIONS: dict[str, frozenset[str]] = {
    KEEPER: frozenset({OVERVIEW, CAMERAS_MANAGE, USERS_MANAGE, SETTINGS_MANAGE, STATS_READ}),
    TEAM_LEADER: frozenset({OVERVIEW, RECORDINGS_LIST, RECORDINGS_VIEW, RECORDINGS_ANNOTATE, HOLDS_MANAGE,
                            STATS_READ, RECORDINGS_CATEGORIZE,
                            HANDOVER_PREPARE, HANDOVER_READ, CASES_READ, CASES_MANAGE}),
    PRIVACY_OFFICER: frozenset({OVERVIEW, RECORDINGS_LIST, RECORDINGS_VIEW, HOLDS_MANAGE, RECORDINGS_EXPORT,
                                AUDIT_READ, DELETION_REPORT, STATS_READ, STATS_REPORT,
                                HANDOVER_PREPARE, HANDOVER_APPROVE, HANDOVER_READ,
                                REQUESTS_MANAGE, RECORDINGS_CATEGORIZE,
                                RECORDINGS_REDACT, REGISTER_READ, CASES_READ, CASES_MANAGE}),
    OFFICER: frozenset({OVERVIEW, RECORDINGS_LIST, RECORDINGS_VIEW, RECORDINGS_ANNOTATE, RECORDINGS_CATEGORIZE,
                        OWN_RECORDINGS}),
    AUDITOR: frozenset({OVERVIEW, AUDIT_READ, DELETION_REPORT, HANDOVER_READ, STATS_READ, STATS_REPORT, CASES_READ}),
}

# Which recordings a role sees: every one, those of the user's team, or the user's own.
SCOPE_ALL, SCOPE_TEAM, SCOPE_OWN = "all", "team", "own"
SCOPES: dict[str, str | None] = {
    KEEPER: None, TEAM_LEADER: SCOPE_TEAM, PRIVACY_OFFICER: SCOPE_ALL, OFFICER: SCOPE_OWN, AUDITOR: None,
}

# The purposes (appliance.purposes codes) a role may name to view footage; None: every purpose.
VIEW_PURPOSES: dict[str, frozenset[str] | None] = {
    TEAM_LEADER: None,
    PRIVACY_OFFICER: None,
    OFFICER: frozenset({"training"}),
}

# Roles whose users hold a key slot (the box's private key wrapped under their password): those who
# read footage, and the keeper, who wraps the key for users they enrol.
SLOT_ROLES = frozenset({KEEPER, TEAM_LEADER, PRIVACY_OFFICER, OFFICER})


# Roles that may take a recording out of only the categories they put it in themselves: an officer cannot
# shorten the life of their own footage past what a bookmark, a profile or their team leader decided.
CATEGORIZE_OWN_ONLY = frozenset({OFFICER})


class Forbidden(KluisError):
    """The acting user's role does not allow this."""


def check_role(role: str) -> str:
    if role not in PERMISSIONS:
        raise KluisError(f"unknown role {role!r} (choose {', '.join(ROLES)})")
    return role


def allowed(role: str, permission: str) -> bool:
    return permission in PERMISSIONS.get(role, frozenset())


def require(role: str, permission: str, who: str = "this user") -> None:
    if not allowed(role, permission):
        raise Forbidden(f"{who} (role {role}) may not do this ({permission})")


def may_view_purpose(role: str, purpose: str) -> bool:
    if not allowed(role, RECORDINGS_VIEW):
        return False
    purposes = VIEW_PURPOSES.get(role)
    return purposes is None or purpose in purposes


def in_scope(user: dict, recording: dict, officer_team: str | None = None) -> bool:
    """Whether a user (row with role, name, team) may see this recording at all. A recording without a
    team of its own (its officer had no Kluis user with a team when it was stored: appliance/teams.py)
    belongs to its officer's team: `officer_team`, the team of the user named as its officer."""
    scope = SCOPES.get(user["role"])
    if scope == SCOPE_ALL:
        return True
    if scope == SCOPE_TEAM:
        team = recording.get("team") or officer_team
        return bool(user.get("team")) and team == user["team"]
    if scope == SCOPE_OWN:
        return recording.get("officer") == user["name"]
    return False


def recording_in_scope(catalog, user: dict, recording: dict) -> bool:
    """in_scope, with the officer's team looked up in the catalog (appliance.catalog.Catalog) for a
    recording without a team of its own. The web UI and the CLI both ask this."""
    officer_team = None
    if recording.get("team") is None and recording.get("officer"):
        row = catalog.db.execute("SELECT team FROM users WHERE name = ?", [recording["officer"]]).fetchone()
        officer_team = row[0] if row else None
    return in_scope(user, recording, officer_team)


def recording_for(catalog, user: dict, recording_id: str) -> dict:
    """The recording, if it is in the user's scope; NotFound otherwise, as for one that does not exist:
    someone outside the scope is not even told that it exists."""
    recording = catalog.get_recording(recording_id)
    if not recording_in_scope(catalog, user, recording):
        raise NotFound("not in scope")
    return recording


def scope_sql(user: dict) -> tuple[str, list]:
    """A WHERE fragment (over table alias r) limiting recordings to a user's scope."""
    scope = SCOPES.get(user["role"])
    if scope == SCOPE_ALL:
        return "1", []
    if scope == SCOPE_TEAM and user.get("team"):
        # The team's own rows, plus rows without a team (appliance/teams.py: the officer was unknown then)
        # whose officer is in the team now. The unary + keeps the planner from answering the OR with two index
        # lookups and a sort: walking the time index and testing each row is faster for a page.
        return ("(+r.team = ? OR (+r.team IS NULL AND +r.officer IN (SELECT u.name FROM users u WHERE u.team = ?)))",
                [user["team"], user["team"]])
    if scope == SCOPE_OWN:
        return "r.officer = ?", [user["name"]]
    return "0", []
