"""The archive's witness of the box's audit checkpoints: the statement the archive signs, and the box's
copies of them.

The box's signing key sits on its disk unwrapped (it signs while nobody is logged in), so whoever has the
disk can rewrite the log and sign a new checkpoint over it: the box alone cannot tell. Each sync pass
hands the archive the newest checkpoint; the archive counter-signs (witnesses) it with its own key,
unless it contradicts one it witnessed before (sync/archive/checkpoints.py), and the box keeps the
statement here. A witnessed (count, head) is an anchor the box's key cannot re-sign: `kluis audit
verify` holds the log to every stored statement (appliance.audit.verify's `witnessed`), and the box
shows how old its newest one is. The limit that remains is in docs/format.md ("Witnessed audit checkpoints").

Statement (signed, kind `kluis/v1/audit-witness`, with the archive's Ed25519 key the box pinned at
enrollment): {type, v, archive, box, count, head, checkpoint_time, witnessed_at}.

The table is the sync set's (appliance/schema/outbox.py, step "audit_witnesses"); this module is its
owner. No network here: sync/client.py fetches, this module checks and keeps.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from nacl.signing import VerifyKey

from . import audit, signing
from .clock import from_iso, to_iso
from .errors import KluisError

WITNESS_TYPE = "kluis-audit-witness"
META_ARCHIVE = "sync_archive"  # appliance.outbox's enrollment record (outbox imports this module)
FIELDS = ("type", "v", "archive", "box", "count", "head", "checkpoint_time", "witnessed_at")


class BadWitness(KluisError):
    """A witness statement that is not the archive's, or not about the checkpoint that was sent."""


def statement(archive_id: str, box_id: str, cp: dict, witnessed_at: str) -> dict:
    """The body the archive signs for checkpoint `cp` of box `box_id`."""
    return {"type": WITNESS_TYPE, "v": 1, "archive": archive_id, "box": box_id, "count": int(cp["count"]),
            "head": str(cp["head"]), "checkpoint_time": str(cp["time"]), "witnessed_at": witnessed_at}


def sign(key, archive_id: str, box_id: str, cp: dict, witnessed_at: str) -> dict:
    return signing.signed(statement(archive_id, box_id, cp, witnessed_at), key, signing.AUDIT_WITNESS)


def check(witness: dict, archive_key_hex: str) -> dict:
    """The statement's fields if the archive's signature holds; else BadWitness."""
    try:
        body = {name: witness[name] for name in FIELDS}
        valid = body["type"] == WITNESS_TYPE and signing.is_valid(archive_key_hex, signing.AUDIT_WITNESS, body,
                                                                    witness["signature"])
    except (KeyError, TypeError):
        valid = False
    if not valid:
        raise BadWitness("the witness does not carry the archive's valid signature")
    return body


def keep(catalog, witness: dict, archive_key_hex: str, expected: dict, stored_at: str) -> dict:
    """Check a statement the archive returned for the checkpoint `expected` ({archive, box, count, head})
    and store it; returns its fields. A statement about another box, archive or checkpoint is refused."""
    body = check(witness, archive_key_hex)
    wrong = [k for k, v in expected.items() if body[k] != v]
    if wrong:
        raise BadWitness(f"the witness names another {', '.join(wrong)} than the checkpoint sent")
    with catalog.transaction():
        # A pass whose log did not grow is witnessed again: keep the newest statement of a (count, head),
        # not one row per pass.
        catalog.db.execute("DELETE FROM audit_witnesses WHERE archive = ? AND count = ? AND head = ?",
                           [body["archive"], body["count"], body["head"]])
        catalog.db.execute(
            "INSERT INTO audit_witnesses (archive, count, head, checkpoint_time, witnessed_at, statement, stored_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [body["archive"], body["count"], body["head"], body["checkpoint_time"], body["witnessed_at"],
             json.dumps(witness, sort_keys=True), stored_at])
    return body


def stored(catalog) -> list[dict]:
    """Every stored statement as the archive signed it, oldest first."""
    return [json.loads(r["statement"]) for r in catalog.db.query("SELECT statement FROM audit_witnesses ORDER BY id")]


@dataclass
class Anchors:
    """The stored statements that verify (count, head, witnessed_at), what is wrong with the rest, and how
    many name another archive than the one the box is enrolled at (not checked: no key to check them with)."""
    good: list[dict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    elsewhere: int = 0


def anchors(catalog) -> Anchors:
    """The stored statements, each checked against the key of the archive the box is enrolled at (pinned at
    enrollment). One that does not verify is named (an altered copy). One of another archive (the box
    enrolled elsewhere since) is counted, not checked: relabelling a statement hides no more than deleting
    it does, and the archive's own copy (`kluis archive checkpoints`) catches both."""
    found = Anchors()
    enrolled = enrolled_archive(catalog)
    for witness in stored(catalog):
        if enrolled is None or witness.get("archive") != enrolled[0]:
            found.elsewhere += 1
            continue
        try:
            body = check(witness, enrolled[1])
        except BadWitness as exc:
            found.problems.append(f"stored witness of entry {witness.get('count')} "
                                  f"({witness.get('witnessed_at')}): {exc}")
            continue
        found.good.append({"count": body["count"], "head": body["head"], "witnessed_at": body["witnessed_at"]})
    return found


def latest(catalog) -> dict | None:
    """The newest checkpoint the box's archive witnessed, as stored: {archive, count, head, checkpoint_time,
    witnessed_at}; None when it has witnessed none (or the box is not enrolled)."""
    enrolled = enrolled_archive(catalog)
    row = catalog.db.execute("SELECT archive, count, head, checkpoint_time, witnessed_at FROM audit_witnesses "
                             "WHERE archive = ? ORDER BY witnessed_at DESC, id DESC LIMIT 1",
                             [enrolled[0] if enrolled else ""]).fetchone()
    if row is None:
        return None
    return dict(zip(("archive", "count", "head", "checkpoint_time", "witnessed_at"), row))


def age_hours(last: dict | None, now: datetime) -> float | None:
    """Hours since the archive witnessed `last` (None: never)."""
    if last is None:
        return None
    return max(0.0, (now - from_iso(last["witnessed_at"])).total_seconds() / 3600)


def summary(catalog, now: datetime, enrolled: bool) -> dict:
    """For `kluis status`, `kluis audit verify` and the web UI: {enrolled, last, age_hours, now}."""
    last = latest(catalog)
    return {"enrolled": enrolled, "last": last, "age_hours": age_hours(last, now), "now": to_iso(now)}


def age_text(hours: float | None) -> str:
    """A plain English age for the command line ("3 h ago", "2 days ago", "never")."""
    if hours is None:
        return "never"
    if hours < 1:
        return f"{int(hours * 60)} min ago"
    if hours < 48:
        return f"{hours:.0f} h ago"
    return f"{hours / 24:.0f} days ago"


def enrolled_archive(catalog) -> tuple[str, str] | None:
    """(archive id, its signing key in hex) as the box pinned them at enrollment; None when not enrolled."""
    text = catalog.get_meta(META_ARCHIVE)
    if not text:
        return None
    enrolled = json.loads(text)
    archive_id, key = enrolled.get("archive_id"), enrolled.get("signing_key")
    return (archive_id, key) if archive_id and key else None  # an enrollment without the key checks nothing


def archive_key(catalog) -> str | None:
    """The archive's signing key (hex) the box pinned at enrollment; None when not enrolled."""
    enrolled = enrolled_archive(catalog)
    return enrolled[1] if enrolled else None


def verify(catalog, verify_key: VerifyKey, extra_checkpoints=()) -> audit.Report:
    """appliance.audit.verify, also holding the log to every stored witness statement that verifies;
    a statement that does not verify is a problem of its own (an altered copy)."""
    found = anchors(catalog)
    report = audit.verify(catalog, verify_key, extra_checkpoints, witnessed=found.good)
    report.problems.extend(found.problems)
    return report


def verify_on_record(catalog, actor: str, client: str | None = None) -> audit.Report:
    """As appliance.audit.verify_on_record (the web UI's "check the chain", on record), with the witnesses."""
    found = anchors(catalog)
    return audit.verify_on_record(catalog, actor, client, witnessed=found.good, problems=found.problems)
