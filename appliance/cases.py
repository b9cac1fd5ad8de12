"""Cases (zaken): a reference (PV-2026-118, K-12, VZ-2026-0001) made an object of its own, with a title, a
kind (the purpose it serves, an appliance.purposes code), and who opened and closed it when.

A case is opened explicitly (the web UI's /zaken, `kluis cases add`) or implicitly, by `ensure`, when a hold,
a handover or an access request first names a new reference: appliance/retention.py add_hold,
appliance/handover.py prepare and appliance/access_requests.py register call it, each the one place its
thing is made. Either way the opening is audited (`case_open`). References are matched without regard to
case (`pv-2026-118` names PV-2026-118) and kept as first typed; the rows that name a case store its
reference as the case spells it.

A closed case takes no new holds, handovers or links: it is reopened first (`case_reopen`), on record.
What a case holds (its recordings, holds, handovers, requests, audit trail), closing it (which releases
its holds) and the case-level handover are appliance/case_file.py, which sits above retention and handover;
this module sits below them.
"""

from __future__ import annotations

from . import audit
from .box import Box
from .clock import to_iso
from .database import Where
from .errors import KluisError, NotFound
from .purposes import parse_purpose

MAX_REF = 100
MAX_TITLE = 200
MAX_DESCRIPTION = 4000
ORIGINS = ("explicit", "hold", "handover", "request", "backfill")


class CaseClosed(KluisError):
    """A closed case was named for something new (a hold, a handover, a link)."""


def clean_ref(text: str | None) -> str:
    """A case reference as it is stored: spaces trimmed and runs of them made one; refused when empty, too
    long, or carrying control characters."""
    ref = " ".join(str(text or "").split())
    if not ref:
        raise KluisError("a case needs a reference (zaaknummer)")
    if len(ref) > MAX_REF:
        raise KluisError(f"a case reference is at most {MAX_REF} characters")
    if any(ord(ch) < 32 or ch == "\x7f" for ch in ref):
        raise KluisError("a case reference may not hold control characters")
    return ref


def same_ref(a: str | None, b: str | None) -> bool:
    """Whether two references name the same case: capitals and runs of spaces aside, as the catalog matches
    them (COLLATE NOCASE on the trimmed reference)."""
    return " ".join(str(a or "").split()).casefold() == " ".join(str(b or "").split()).casefold()


def _text(value: str | None, what: str, limit: int) -> str | None:
    text = str(value or "").strip()
    if len(text) > limit:
        raise KluisError(f"{what}: at most {limit} characters")
    if any(ord(ch) < 32 and ch not in "\t\n\r" for ch in text):
        raise KluisError(f"{what}: control characters are not allowed")
    return text or None


def find(box: Box, ref: str | None) -> dict | None:
    """The case of this reference (case aside), or None."""
    wanted = " ".join(str(ref or "").split())
    if not wanted:
        return None
    rows = list(box.catalog.db.query("SELECT * FROM cases WHERE reference = ?", [wanted]))
    return rows[0] if rows else None


def get(box: Box, ref: str) -> dict:
    found = find(box, ref)
    if found is None:
        raise NotFound(f"no case {ref!r}")
    return found


def is_open(case: dict) -> bool:
    return case["closed_at"] is None


def _insert(box: Box, ref: str, code: str, actor: str, origin: str, title: str | None, description: str | None,
            client: str | None) -> dict:
    now = to_iso(box.clock())
    box.catalog.db.execute(
        "INSERT INTO cases (reference, title, description, kind, origin, opened_by, opened_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)", [ref, title, description, code, origin, actor, now])
    audit.record(box.catalog, actor=actor, action="case_open", purpose=code, case_ref=ref, client=client,
                 clock=box.clock, details={"origin": origin, "title": title})
    return get(box, ref)


def ensure(box: Box, ref: str, purpose: str, actor: str, *, origin: str = "hold", client: str | None = None) -> dict:
    """The case a hold, handover or request names, opened (and audited) if the reference is new; returns
    the case row, whose `reference` is the spelling to store. Refuses a closed case (CaseClosed)."""
    code = parse_purpose(purpose)
    ref = clean_ref(ref)
    if origin not in ORIGINS:
        raise ValueError(f"unknown origin {origin!r}")
    with box.catalog.transaction():
        found = find(box, ref)
        if found is None:
            return _insert(box, ref, code, actor, origin, None, None, client)
    if not is_open(found):
        raise CaseClosed(f"case {found['reference']} is closed ({found['closed_at']}); reopen it first")
    return found


def open_case(box: Box, ref: str, purpose: str, actor: str, *, title: str | None = None,
              description: str | None = None, client: str | None = None) -> dict:
    """Open a case explicitly, before anything names it (refused if the reference exists already)."""
    code = parse_purpose(purpose)
    ref = clean_ref(ref)
    title = _text(title, "the title", MAX_TITLE)
    description = _text(description, "the description", MAX_DESCRIPTION)
    with box.catalog.transaction():
        found = find(box, ref)
        if found is not None:
            raise KluisError(f"case {found['reference']} exists already")
        return _insert(box, ref, code, actor, "explicit", title, description, client)


def describe(box: Box, ref: str, actor: str, *, title: str | None, description: str | None,
             client: str | None = None) -> dict:
    """Change a case's title and description (audited `case_change`)."""
    title = _text(title, "the title", MAX_TITLE)
    description = _text(description, "the description", MAX_DESCRIPTION)
    with box.catalog.transaction():
        case = get(box, ref)
        if (case["title"], case["description"]) == (title, description):
            return case
        box.catalog.db.execute("UPDATE cases SET title = ?, description = ? WHERE id = ?",
                               [title, description, case["id"]])
        audit.record(box.catalog, actor=actor, action="case_change", purpose=case["kind"], case_ref=case["reference"],
                     client=client, clock=box.clock, details={"old": case["title"], "new": title})
    return get(box, ref)


def mark_closed(box: Box, case: dict, actor: str, reason: str, client: str | None = None,
                details: dict | None = None) -> dict:
    """Record the case as closed (audited `case_close`); what closing means for its holds is the caller's
    (appliance/case_file.py close, appliance/access_requests.py close). Call inside a transaction."""
    now = to_iso(box.clock())
    changed = box.catalog.db.execute(
        "UPDATE cases SET closed_by = ?, closed_at = ?, close_reason = ? WHERE id = ? AND closed_at IS NULL",
        [actor, now, reason, case["id"]]).rowcount
    if not changed:
        raise KluisError(f"case {case['reference']} is closed already")
    audit.record(box.catalog, actor=actor, action="case_close", purpose=case["kind"], case_ref=case["reference"],
                 client=client, clock=box.clock, details={"reason": reason, **(details or {})})
    return get(box, case["reference"])


def reopen(box: Box, ref: str, actor: str, reason: str, client: str | None = None) -> dict:
    """Open a closed case again, with a reason (audited `case_reopen`). Its released holds stay released."""
    reason = _text(reason, "the reason", 500) or ""
    if not reason:
        raise KluisError("reopening a case needs a reason")
    with box.catalog.transaction():
        case = get(box, ref)
        if is_open(case):
            raise KluisError(f"case {case['reference']} is open")
        box.catalog.db.execute("UPDATE cases SET closed_by = NULL, closed_at = NULL, close_reason = NULL "
                               "WHERE id = ?", [case["id"]])
        audit.record(box.catalog, actor=actor, action="case_reopen", purpose=case["kind"], case_ref=case["reference"],
                     client=client, clock=box.clock, details={"reason": reason})
    return get(box, ref)


def list_cases(box: Box, status: str | None = None, text: str | None = None) -> list[dict]:
    """Cases, newest first: 'open', 'closed' or all; `text` in the reference or the title."""
    where = Where()
    if status == "open":
        where.add("closed_at IS NULL")
    elif status == "closed":
        where.add("closed_at IS NOT NULL")
    elif status is not None:
        raise KluisError(f"unknown status {status!r}: open or closed")
    if text:
        like = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        where.add("(reference LIKE ? ESCAPE '\\' OR title LIKE ? ESCAPE '\\')", like, like)
    return list(box.catalog.db.query(f"SELECT * FROM cases{where.sql()} ORDER BY opened_at DESC, id DESC",
                                     where.params))
