"""Handovers to police and prosecutor (overdracht): the register, four eyes, holds, the audit trail.

A handover names recordings (or a time window of one), the receiving party, the legal basis, the case
reference and the purpose. One person prepares it; a second person with the right role approves it, and
only then is a byte of footage produced (appliance.package writes the signed, age-encrypted package).
`[handover] single_approval = true` lets the preparer approve alone (small municipalities); the manifest
and the transfer form then say so.

Every step is in the audit log, one entry per recording so that each recording's log shows it:
handover_prepare, handover_approve, handover_refuse (the approver declines), handover_cancel (withdrawn),
handover_denied (an attempt refused: wrong role, not in scope, same person, wrong state), and
handover_failed (approved, but the package could not be written); after approval, handover_download
(appliance.handover_downloads) and handover_form (the transfer form printed, appliance.handover_form).
Preparing places a hold for the case on every recording that has none for it yet, so that nothing
expires while the handover waits.

The web UI and `kluis export` both call these functions; they check the actor's role themselves (the
same table, appliance.roles), so neither front end can skip a check.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import BinaryIO, TextIO

from . import audit, cases, clip_window, csv_columns, footage, retention, roles, spreadsheet, statistics
from .box import Box
from .errors import KluisError, NotFound
from .purposes import parse_purpose

PREPARED, APPROVED, REFUSED, CANCELLED = "prepared", "approved", "refused", "cancelled"
NOT_HANDED_OVER = frozenset({"training"})  # purposes no handover may name (the processing register says so)
STATES = (PREPARED, APPROVED, REFUSED, CANCELLED)
PROTECTIONS = ("age-recipient", "passphrase", "none")
MAX_TEXT = 500


class Denied(roles.Forbidden):
    """A handover step refused (it is in the audit log as handover_denied)."""


def single_approval_allowed(box: Box) -> bool:
    return box.settings.handover.single_approval


def _user(box: Box, actor: str) -> dict | None:
    try:
        return box.catalog.get_user(actor)
    except NotFound:
        return None


def deny(box: Box, actor: str, step: str, reason: str, recording_ids: list[str], handover_id: str | None = None,
         case_ref: str | None = None, purpose: str | None = None, client: str | None = None) -> Denied:
    """Audit a refused attempt (one entry per recording, or one without a recording) and return the error
    to raise. Public: the CLI refuses with it too, before it asks for a password."""
    details = {"step": step, "reason": reason, "handover": handover_id}
    with box.catalog.transaction():
        for recording_id in recording_ids or (None,):
            audit.record(box.catalog, actor=actor, action="handover_denied", recording_id=recording_id,
                         purpose=purpose, case_ref=case_ref, client=client, clock=box.clock, details=details)
    return Denied(reason)


def _text(value, what: str, required: bool = True) -> str:
    text = " ".join(str(value or "").split())
    if required and not text:
        raise KluisError(f"a handover needs {what}")
    if len(text) > MAX_TEXT:
        raise KluisError(f"{what} is too long (at most {MAX_TEXT} characters)")
    return text


def _next_id(box: Box) -> tuple[str, int]:
    seq = box.catalog.db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM handovers").fetchone()[0]
    return f"OV-{box.clock().year}-{seq:04d}", seq


def prepare(box: Box, actor: str, recording_ids: list[str], receiver: str, basis: str, case_ref: str,
            purpose: str, protection: str, age_recipient: str | None = None,
            clip: dict[str, tuple[float, float]] | None = None, client: str | None = None) -> str:
    """Register a handover awaiting approval; returns its id ('OV-2026-0001'). Produces no footage.

    `clip`: {recording_id: (from_s, to_s)} cuts that time window (seconds into the recording) out of it
    at approval. `protection`: 'age-recipient' (with `age_recipient`, 'age1...'), 'passphrase' (one is
    made at approval and shown once) or 'none' (an unencrypted package: an explicit choice, on record)."""
    ids = list(dict.fromkeys(str(r).strip() for r in recording_ids if str(r).strip()))
    if not ids:
        raise KluisError("a handover needs at least one recording")
    receiver = _text(receiver, "the receiving party (organisation, unit, name, official number)")
    basis = _text(basis, "the legal basis (vordering with its article, or vrijwillige verstrekking)")
    case_ref = _text(case_ref, "the case reference (e.g. the police report number)")
    code = parse_purpose(purpose)
    if code in NOT_HANDED_OVER:
        raise KluisError("footage is not handed over for training; choose the purpose of the case")
    if protection not in PROTECTIONS:
        raise KluisError(f"protection must be one of {', '.join(PROTECTIONS)}")
    if protection == "age-recipient":
        from .agecrypt import parse_recipient

        age_recipient = (age_recipient or "").strip()
        parse_recipient(age_recipient)
    else:
        age_recipient = None
    clip = dict(clip or {})
    window: tuple[float, float] | None
    for recording_id, window in clip.items():
        if recording_id not in ids:
            raise KluisError(f"a time window for {recording_id}, which is not in the handover")
        start_s, end_s = (float(v) for v in window)
        if not 0 <= start_s < end_s:
            raise KluisError(f"time window {start_s}-{end_s} s of {recording_id}: the end must come after the start")

    user = _user(box, actor)
    if user is None or user["disabled"] or not roles.allowed(user["role"], roles.HANDOVER_PREPARE):
        raise deny(box, actor, "prepare", f"{actor} may not prepare a handover (role "
                   f"{user['role'] if user else 'unknown'})", ids, case_ref=case_ref, purpose=code, client=client)
    recordings = {}
    for recording_id in ids:
        try:
            recording = box.catalog.get_recording(recording_id)
        except NotFound:
            raise KluisError(f"no recording {recording_id!r}") from None
        if recording["state"] != "stored":
            raise KluisError(f"recording {recording_id} is being deleted")
        if not roles.recording_in_scope(box.catalog, user, recording):
            raise deny(box, actor, "prepare", f"{actor} may not hand over recording {recording_id}: not in their "
                       "scope", ids, case_ref=case_ref, purpose=code, client=client)
        if recording_id in clip:
            duration = clip_window.duration_s(recording)
            if duration is not None and clip[recording_id][0] >= duration:
                raise KluisError(f"time window of {recording_id} starts after its end ({duration:.1f} s)")
            if duration is not None and clip[recording_id][1] > duration + 1:
                raise KluisError(f"time window of {recording_id} ends after the recording ({duration:.1f} s)")
        recordings[recording_id] = recording

    now = box.now_iso()
    with box.catalog.transaction():
        # The handover belongs to the case its reference names (opened now if new; a closed one is refused).
        case_ref = cases.ensure(box, case_ref, code, actor, origin="handover", client=client)["reference"]
        handover_id, seq = _next_id(box)
        box.catalog.db.execute(
            "INSERT INTO handovers (id, seq, state, receiver, basis, case_ref, purpose, protection, age_recipient, "
            "prepared_by, prepared_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [handover_id, seq, PREPARED, receiver, basis, case_ref, code, protection, age_recipient, actor, now])
        for position, recording_id in enumerate(ids, start=1):
            window = clip.get(recording_id)
            box.catalog.db.execute(
                "INSERT INTO handover_items (handover_id, position, recording_id, clip_from_s, clip_to_s) "
                "VALUES (?, ?, ?, ?, ?)",
                [handover_id, position, recording_id, float(window[0]) if window else None,
                 float(window[1]) if window else None])
        for recording_id in ids:
            window = clip.get(recording_id)
            audit.record(box.catalog, actor=actor, action="handover_prepare", recording_id=recording_id,
                         purpose=code, case_ref=case_ref, client=client, clock=box.clock,
                         details={"handover": handover_id, "receiver": receiver, "basis": basis,
                                  "protection": protection,
                                  "clip": {"from_s": window[0], "to_s": window[1]} if window else None})
            if not any(cases.same_ref(h["case_ref"], case_ref)
                       for h in retention.active_holds(box.catalog, recording_id)):
                retention.add_hold(box, recording_id, code, case_ref, actor, client=client)
    return handover_id


def get(box: Box, handover_id: str) -> dict:
    """The handover's register row with its items ({'items': [{recording_id, clip_from_s, clip_to_s}]})."""
    rows = list(box.catalog.db.query("SELECT * FROM handovers WHERE id = ?", [handover_id]))
    if not rows:
        raise NotFound(f"no handover {handover_id!r}")
    row = rows[0]
    row["single_approval"] = bool(row["single_approval"])
    row["items"] = list(box.catalog.db.query(
        "SELECT recording_id, clip_from_s, clip_to_s FROM handover_items WHERE handover_id = ? ORDER BY position",
        [handover_id]))
    row["recording_ids"] = [item["recording_id"] for item in row["items"]]
    return row


def list_handovers(box: Box, recording_id: str | None = None, state: str | None = None) -> list[dict]:
    """Handovers, newest first; those of one recording, or in one state, when given."""
    where, params = [], []
    if recording_id is not None:
        where.append("id IN (SELECT handover_id FROM handover_items WHERE recording_id = ?)")
        params.append(recording_id)
    if state is not None:
        where.append("state = ?")
        params.append(state)
    sql = "SELECT id FROM handovers" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY seq DESC"
    return [get(box, row[0]) for row in box.catalog.db.execute(sql, params).fetchall()]


def _check_open(box: Box, handover: dict, actor: str, step: str, client: str | None) -> None:
    if handover["state"] != PREPARED:
        raise deny(box, actor, step, f"handover {handover['id']} is {handover['state']}, not awaiting approval",
                   handover["recording_ids"], handover["id"], handover["case_ref"], handover["purpose"], client)


def check_approver(box: Box, handover: dict, actor: str, step: str, client: str | None) -> dict:
    """The approver's user row, if they may approve (or refuse) this handover; audits and raises otherwise."""
    denial = lambda reason: deny(box, actor, step, reason, handover["recording_ids"], handover["id"],  # noqa: E731
                                 handover["case_ref"], handover["purpose"], client)
    user = _user(box, actor)
    if user is None or user["disabled"] or not roles.allowed(user["role"], roles.HANDOVER_APPROVE):
        raise denial(f"{actor} may not approve handovers (role {user['role'] if user else 'unknown'})")
    _check_open(box, handover, actor, step, client)
    if step == "approve" and actor == handover["prepared_by"] and not single_approval_allowed(box):
        raise denial(f"four eyes: {actor} prepared handover {handover['id']} and may not approve it too; "
                     "a second person must approve it")
    for recording_id in handover["recording_ids"]:
        try:
            recording = box.catalog.get_recording(recording_id)
        except NotFound:
            raise denial(f"recording {recording_id} of handover {handover['id']} no longer exists") from None
        if not roles.recording_in_scope(box.catalog, user, recording):
            raise denial(f"{actor} may not hand over recording {recording_id}: not in their scope")
    return user


def approve(box: Box, handover_id: str, actor: str, identity, out: str | os.PathLike | BinaryIO, *,
            unencrypted: bool = False, client: str | None = None) -> dict:
    """Approve a prepared handover and write its package to `out` (a path, not existing yet, or a binary
    file object). `identity`: the box's X25519 private key, unlocked by the approver.

    Returns {'handover_id', 'package_sha256', 'package_size', 'manifest_sha256', 'files', 'passphrase',
    'protection', 'single_approval'}: with protection 'passphrase', 'passphrase' is the generated one,
    returned this once and stored nowhere. A package with protection 'none' is written only when the
    approver confirms it (`unencrypted=True`): both people chose it explicitly."""
    from . import package

    handover = get(box, handover_id)
    check_approver(box, handover, actor, "approve", client)
    if handover["protection"] == "none" and not unencrypted:
        raise deny(box, actor, "approve", f"handover {handover_id} was prepared without encryption; the approver "
                   "must confirm an unencrypted package explicitly (--unencrypted)", handover["recording_ids"],
                   handover_id, handover["case_ref"], handover["purpose"], client)
    if handover["protection"] != "none" and unencrypted:
        raise KluisError(f"handover {handover_id} is to be encrypted ({handover['protection']}); "
                         "--unencrypted applies only to a handover prepared without encryption")
    if identity is None:
        raise KluisError(f"{actor} holds no key to open recordings")
    single = actor == handover["prepared_by"]
    now = box.now_iso()
    # The gate commits the approval (one entry per recording) before the first byte of footage is produced.
    readers = footage.open_for_handover(box, handover, actor, identity, client=client)
    handover.update(approved_by=actor, approved_at=now, single_approval=single)
    try:
        result = package.build(box, handover, readers, out)
    except BaseException as exc:
        with box.catalog.transaction():
            for item in handover["items"]:
                audit.record(box.catalog, actor=actor, action="handover_failed", recording_id=item["recording_id"],
                             purpose=handover["purpose"], case_ref=handover["case_ref"], client=client,
                             clock=box.clock, details={"handover": handover_id,
                                                       "error": str(exc)[:300] or type(exc).__name__})
        raise
    with box.catalog.transaction():
        changed = box.catalog.db.execute(
            "UPDATE handovers SET state = ?, approved_by = ?, approved_at = ?, single_approval = ?, "
            "package_sha256 = ?, package_size = ?, manifest_sha256 = ? WHERE id = ? AND state = ?",
            [APPROVED, actor, now, int(single), result["package_sha256"], result["package_size"],
             result["manifest_sha256"], handover_id, PREPARED]).rowcount
        for recording_id in handover["recording_ids"] if changed else ():
            statistics.refresh(box.catalog, recording_id)
        if not changed:  # approved (or refused) by someone else while this package was written
            state = get(box, handover_id)["state"]
            for item in handover["items"]:
                audit.record(box.catalog, actor=actor, action="handover_failed", recording_id=item["recording_id"],
                             purpose=handover["purpose"], case_ref=handover["case_ref"], client=client,
                             clock=box.clock, details={"handover": handover_id,
                                                       "error": f"{state} meanwhile; this package is void"})
    if not changed:
        if isinstance(out, (str, os.PathLike)):
            Path(out).unlink(missing_ok=True)
        raise KluisError(f"handover {handover_id} was {state} by someone else meanwhile; this package was void "
                         "and is removed")
    with box.catalog.transaction():
        for file in result["files"]:
            audit.record(box.catalog, actor=actor, action="export", recording_id=file["recording_id"],
                         purpose=handover["purpose"], case_ref=handover["case_ref"], client=client, clock=box.clock,
                         details={"handover": handover_id, "name": file["name"], "sha256": file["sha256"],
                                  "size": file["size"], "clip": file["clip"],
                                  "package_sha256": result["package_sha256"],
                                  "protection": handover["protection"]})
    return {**result, "handover_id": handover_id, "protection": handover["protection"], "single_approval": single}


def refuse(box: Box, handover_id: str, actor: str, reason: str, client: str | None = None) -> None:
    """The approver declines the handover (it can no longer be approved)."""
    _close(box, handover_id, actor, reason, REFUSED, client)


def cancel(box: Box, handover_id: str, actor: str, reason: str, client: str | None = None) -> None:
    """The preparer (or an approver) withdraws a handover that was not approved yet."""
    _close(box, handover_id, actor, reason, CANCELLED, client)


def _close(box: Box, handover_id: str, actor: str, reason: str, state: str, client: str | None) -> None:
    reason = _text(reason, "a reason")
    handover = get(box, handover_id)
    step = "refuse" if state == REFUSED else "cancel"
    if state == REFUSED or actor != handover["prepared_by"]:
        check_approver(box, handover, actor, step, client)
    else:
        _check_open(box, handover, actor, step, client)
    with box.catalog.transaction():
        changed = box.catalog.db.execute(
            "UPDATE handovers SET state = ?, refused_by = ?, refused_at = ?, refuse_reason = ? "
            "WHERE id = ? AND state = ?", [state, actor, box.now_iso(), reason, handover_id, PREPARED]).rowcount
        if not changed:
            raise KluisError(f"handover {handover_id} was changed meanwhile")
        for recording_id in handover["recording_ids"]:
            audit.record(box.catalog, actor=actor, action=f"handover_{step}", recording_id=recording_id,
                         purpose=handover["purpose"], case_ref=handover["case_ref"], client=client, clock=box.clock,
                         details={"handover": handover_id, "reason": reason})


REGISTER_COLUMNS = ("id", "state", "prepared_by", "prepared_at", "approved_by", "approved_at", "single_approval",
                    "refused_by", "refused_at", "refuse_reason", "receiver", "basis", "case_ref", "purpose",
                    "protection", "recordings", "package_sha256", "package_size", "manifest_sha256")


def register_rows(box: Box) -> list[dict]:
    rows = []
    for handover in reversed(list_handovers(box)):
        items = []
        for item in handover["items"]:
            text = item["recording_id"]
            if item["clip_from_s"] is not None:
                # a decimal comma, as the rest of this Dutch register (ja/nee) and Dutch Excel read it
                text += f"[{item['clip_from_s']:g}-{item['clip_to_s']:g}s]".replace(".", ",")
            items.append(text)
        rows.append({**{c: handover.get(c) for c in REGISTER_COLUMNS}, "recordings": " ".join(items),
                     "single_approval": "ja" if handover["single_approval"] else "nee"})
    return rows


def register_csv(box: Box, out: str | os.PathLike | TextIO, actor: str | None = None,
                 client: str | None = None, only: set[str] | None = None, lang: str = "nl") -> int:
    """The handover register (overdrachtsregister) as CSV, oldest first; returns the number of rows.
    `out`: a path or a text file object. Reading it is on record when `actor` is given. `only`: just the
    handovers with these ids (those the reader may see). Headed in `lang` (appliance.csv_columns)."""
    rows = [row for row in register_rows(box) if only is None or row["id"] in only]
    if actor is not None:
        with box.catalog.transaction():
            audit.record(box.catalog, actor=actor, action="handover_register", client=client, clock=box.clock,
                         details={"rows": len(rows)})

    def write(f) -> None:
        spreadsheet.write(f, csv_columns.headings(REGISTER_COLUMNS, lang),
                          ([row[c] for c in REGISTER_COLUMNS] for row in rows), box.settings.box.timezone)

    if isinstance(out, (str, os.PathLike)):
        with open(Path(out), "w", newline="", encoding="utf-8") as f:
            write(f)
    else:
        write(out)
    return len(rows)


def summary(handover: dict) -> str:
    """One line for logs and the CLI."""
    return json.dumps({k: handover[k] for k in ("id", "state", "case_ref", "receiver")}, ensure_ascii=False)


def visible_to(box: Box, user: dict, handover: dict) -> bool:
    """Whether `user` sees `handover` in the register, on the web (/overdrachten) and in `kluis export
    list` alike: a team leader the handovers with any of the own team's recordings (a recording of
    another team in it is shown as not available) and those they prepared; the privacy officer and the
    auditor all of them."""
    if roles.SCOPES.get(user["role"]) in (roles.SCOPE_ALL, None) or handover["prepared_by"] == user["name"]:
        return True
    for recording_id in handover["recording_ids"]:
        try:
            if roles.recording_in_scope(box.catalog, user, box.catalog.get_recording(recording_id)):
                return True
        except NotFound:
            continue
    return False


def visible_handovers(box: Box, user: dict | None, recording_id: str | None = None,
                      state: str | None = None) -> list[dict]:
    """list_handovers, only those `user` sees (visible_to); every one for no user (the recovery key)."""
    rows = list_handovers(box, recording_id=recording_id, state=state)
    return rows if user is None else [h for h in rows if visible_to(box, user, h)]


def may_approve(box: Box, user: dict, handover: dict) -> bool:
    """Whether `user` could approve `handover` now: check_approver's rules, asked without putting a
    refusal on record (to offer the action, not to take it)."""
    if user.get("disabled") or not roles.allowed(user["role"], roles.HANDOVER_APPROVE):
        return False
    if handover["state"] != PREPARED:
        return False
    if user["name"] == handover["prepared_by"] and not single_approval_allowed(box):
        return False
    for recording_id in handover["recording_ids"]:
        try:
            if not roles.recording_in_scope(box.catalog, user, box.catalog.get_recording(recording_id)):
                return False
        except NotFound:
            return False
    return True


def awaiting_approval(box: Box, user: dict) -> list[dict]:
    """The prepared handovers `user` may approve, oldest first (the one waiting longest on top)."""
    if not roles.allowed(user["role"], roles.HANDOVER_APPROVE):
        return []
    return [h for h in reversed(list_handovers(box, state=PREPARED)) if may_approve(box, user, h)]
