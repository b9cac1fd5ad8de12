"""A case's file (zaakdossier): what a case (appliance/cases.py) holds, closing it, and handing it over whole.

Its recordings are those its holds, its handovers' items, its requests' links and its audit entries name
(a recording that was deleted since is listed from the deletion report, without footage). Who sees what is
the recordings list's rule (appliance/roles.py): a team leader the recordings of the own team, the privacy
officer all; the auditor, who reads the audit log and the custody report, the recordings' metadata as the
custody report shows it. A team leader sees a case that has a recording of the own team, or that they opened.

Closing a case releases its active holds (reason "case closed", each audited as hold_release) and records
`case_close`; a request's case is closed by closing the request (its outcome decides what happens to the
footage). The case-level handover prepares one handover (appliance/handover.prepare: four eyes, holds)
of every stored recording of the case in the preparer's scope, under the case's reference and kind.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import audit, cases, handover, retention, roles
from .box import Box
from .errors import KluisError, NotFound

CLOSED_REASON = "case closed"
SOURCES = ("hold", "handover", "request", "audit")


def _ids(box: Box, case: dict) -> dict[str, set[str]]:
    """recording id -> which of SOURCES name it under this case."""
    db, ref = box.catalog.db, case["reference"]
    found: dict[str, set[str]] = {}
    queries = (
        ("hold", "SELECT recording_id FROM holds WHERE case_ref = ? COLLATE NOCASE", [ref]),
        ("handover", "SELECT i.recording_id FROM handover_items i JOIN handovers h ON h.id = i.handover_id "
                     "WHERE h.case_ref = ? COLLATE NOCASE", [ref]),
        ("request", "SELECT l.recording_id FROM request_recordings l JOIN requests r ON r.id = l.request_id "
                    "WHERE r.ref = ? COLLATE NOCASE", [ref]),
        ("audit", "SELECT DISTINCT recording_id FROM audit_log WHERE case_ref = ? COLLATE NOCASE "
                  "AND recording_id IS NOT NULL", [ref]),
    )
    for source, sql, params in queries:
        for (recording_id,) in db.execute(sql, params):
            found.setdefault(recording_id, set()).add(source)
    return found


def recordings(box: Box, case: dict) -> list[dict]:
    """Every recording the case names, by start time: the catalog row (or, once deleted, what the deletion
    report keeps, with state 'deleted'), with `sources` (the kinds of thing that name it)."""
    db = box.catalog.db
    rows = []
    for recording_id, sources in _ids(box, case).items():
        found = list(db.query("SELECT id, camera_serial, officer, team, start_time, end_time, state, source, "
                              "derived_from FROM recordings WHERE id = ?", [recording_id]))
        if found:
            row = found[0]
        else:
            gone = list(db.query("SELECT recording_id AS id, start_time, end_time, deleted_at FROM deletions "
                                 "WHERE recording_id = ?", [recording_id]))
            if not gone:
                continue  # an id an audit entry names that never was a recording here (a refused attempt)
            row = {**gone[0], "camera_serial": None, "officer": None, "team": None, "state": "deleted",
                   "source": None, "derived_from": None}
        row["sources"] = sorted(sources, key=SOURCES.index)
        rows.append(row)
    return sorted(rows, key=lambda r: (r["start_time"], r["id"]))


def sees_all(user: dict | None) -> bool:
    """Whether `user` sees every recording of a case: no user (the recovery key), the privacy officer, and
    the auditor (audit.read, as in the custody report)."""
    if user is None:
        return True
    return roles.SCOPES.get(user["role"]) == roles.SCOPE_ALL or (
        roles.SCOPES.get(user["role"]) is None and roles.allowed(user["role"], roles.AUDIT_READ))


def in_view(box: Box, user: dict | None, recording: dict) -> bool:
    if sees_all(user):
        return True
    assert user is not None
    if recording["state"] == "deleted":
        return False  # its officer and team are gone with it: nothing says it was the team's
    return roles.recording_in_scope(box.catalog, user, recording)


def visible_to(box: Box, user: dict | None, case: dict) -> bool:
    """Whether `user` sees the case at all (list and page): see the module's docstring."""
    if user is None or not roles.allowed(user["role"], roles.CASES_READ):
        return user is None
    if sees_all(user) or case["opened_by"] == user["name"]:
        return True
    return any(in_view(box, user, r) for r in recordings(box, case))


def visible_cases(box: Box, user: dict | None, status: str | None = None, text: str | None = None) -> list[dict]:
    return [c for c in cases.list_cases(box, status, text) if visible_to(box, user, c)]


@dataclass
class CaseFile:
    case: dict
    recordings: list[dict]                 # those the reader sees
    hidden: int                            # recordings of the case outside the reader's scope
    holds: list[dict]
    handovers: list[dict]
    requests: list[dict]
    trail: list[dict]                      # the audit entries the reader may read, oldest first
    span: tuple[str, str] | None = None    # first start, last end of the recordings shown
    active_holds: int = 0


def open_file(box: Box, user: dict | None, ref: str) -> CaseFile:
    """The case as `user` may see it. NotFound for a case they may not see, as for one that does not exist."""
    case = cases.get(box, ref)
    if not visible_to(box, user, case):
        raise NotFound("not in scope")
    every = recordings(box, case)
    shown = [r for r in every if in_view(box, user, r)]
    ids = {r["id"] for r in shown}
    db, reference = box.catalog.db, case["reference"]
    holds = [h for h in db.query("SELECT * FROM holds WHERE case_ref = ? COLLATE NOCASE ORDER BY placed_at, id",
                                 [reference]) if h["recording_id"] in ids]
    handovers = [h for h in handover.list_handovers(box) if cases.same_ref(h["case_ref"], reference)
                 and (user is None or handover.visible_to(box, user, h))]
    requests = list(db.query("SELECT id, ref, kind, status, outcome, received_on, deadline, closed_at FROM requests "
                             "WHERE ref = ? COLLATE NOCASE", [reference]))
    trail = [e for e in audit.entries(box.catalog, case_ref=reference) if _may_read(user, e, ids)]
    span = (min(r["start_time"] for r in shown), max(r["end_time"] for r in shown)) if shown else None
    return CaseFile(case, shown, len(every) - len(shown), holds, handovers, requests, trail, span,
                    sum(1 for h in holds if h["released_at"] is None))


def _may_read(user: dict | None, entry: dict, ids: set[str]) -> bool:
    """An entry of the case's trail `user` may read: everything with audit.read; otherwise what concerns
    the recordings they see, and the case's own entries, but not other people's views (as the player's
    timeline: appliance/timeline.py)."""
    if user is None or roles.allowed(user["role"], roles.AUDIT_READ):
        return True
    if entry["recording_id"] is None:
        return entry["action"].startswith("case_")
    if entry["recording_id"] not in ids:
        return False
    return entry["action"] not in ("view", "range_read", "view_played") or entry["actor"] == user["name"]


# Closing --------------------------------------------------------------------------------------------------

def close(box: Box, actor: str, user: dict | None, ref: str, reason: str | None = None,
          client: str | None = None) -> list[int]:
    """Close the case: every active hold it has is released (reason "case closed"), then the case is
    marked closed; returns the holds released. `user`: the actor's row (None: the recovery key). Needs
    cases.manage; a team leader may close only a case whose held recordings are all of the own team; a
    request's case closes with its request."""
    if user is not None:
        roles.require(user["role"], roles.CASES_MANAGE, actor)
    case = cases.get(box, ref)
    if user is not None and not visible_to(box, user, case):
        raise NotFound(f"no case {ref!r}")
    if not cases.is_open(case):
        raise KluisError(f"case {case['reference']} is closed already")
    request = box.catalog.db.execute("SELECT status FROM requests WHERE ref = ? COLLATE NOCASE",
                                     [case["reference"]]).fetchone()
    if request is not None:
        raise KluisError(f"case {case['reference']} is a request's: close the request (its outcome decides)")
    reason = " ".join(str(reason or "").split())[:500]
    why = CLOSED_REASON + (f": {reason}" if reason else "")
    held = list(box.catalog.db.query(
        "SELECT h.*, r.team, r.officer FROM holds h JOIN recordings r ON r.id = h.recording_id "
        "WHERE h.case_ref = ? COLLATE NOCASE AND h.released_at IS NULL ORDER BY h.id", [case["reference"]]))
    outside = sorted({h["recording_id"] for h in held if user is not None and
                      not roles.recording_in_scope(box.catalog, user, {"team": h["team"], "officer": h["officer"]})})
    if outside:
        raise roles.Forbidden(f"case {case['reference']} holds recordings outside {actor}'s scope "
                              f"({len(outside)}); the privacy officer closes it")
    released: list[int] = []
    with box.catalog.transaction():
        for hold in held:
            released += retention.release_hold(box, hold["recording_id"], why, actor, hold_id=hold["id"],
                                               client=client)
        cases.mark_closed(box, case, actor, why, client=client, details={"holds_released": len(released)})
    return released


# The case-level handover ----------------------------------------------------------------------------------

def handover_candidates(box: Box, user: dict, case: dict) -> list[dict]:
    """The case's recordings a handover by `user` would carry: stored and in their scope, originals
    before their redacted copies."""
    return [r for r in recordings(box, case) if r["state"] == "stored"
            and roles.recording_in_scope(box.catalog, user, r)]


def prepare_handover(box: Box, user: dict, ref: str, *, receiver: str, basis: str, protection: str,
                     age_recipient: str | None = None, client: str | None = None) -> str:
    """Prepare one handover of every stored recording of the case in `user`'s scope, with the case's
    reference and kind as purpose (appliance.handover.prepare: a second person approves). Returns its id."""
    case = cases.get(box, ref)
    if not visible_to(box, user, case):
        raise NotFound(f"no case {ref!r}")
    if not cases.is_open(case):
        raise cases.CaseClosed(f"case {case['reference']} is closed; reopen it first")
    ids = [r["id"] for r in handover_candidates(box, user, case)]
    if not ids:
        raise KluisError(f"case {case['reference']} has no stored recording in {user['name']}'s scope to hand over")
    return handover.prepare(box, user["name"], ids, receiver=receiver, basis=basis, case_ref=case["reference"],
                            purpose=case["kind"], protection=protection, age_recipient=age_recipient, client=client)
