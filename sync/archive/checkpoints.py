"""The boxes' signed audit checkpoints as the archive received them, held each to the last one, and the
alerts raised when a box's log went backwards or forked (or anything else the operator must see)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from nacl.signing import VerifyKey

from appliance import audit as audit_log
from appliance import witness as witness_mod

from ..protocol import ProtocolError

if TYPE_CHECKING:
    from .store import Archive


class Checkpoints:
    def __init__(self, archive: "Archive"):
        self.archive = archive

    def last(self, box_id: str) -> dict:
        """The last checkpoint received from the box, and the last one witnessed (the box proves that its
        log still holds the entry of each: `prior`, `witnessed_prior` of receive)."""
        row = self._last_row(box_id)
        found: dict = {"count": row["seq"], "head": row["head"], "received_at": row["received_at"]} if row else {
            "count": None, "head": None, "received_at": None}
        found["witnessed"] = self.last_witnessed(box_id)
        return found

    def _last_row(self, box_id: str) -> dict | None:
        return self.archive.one("SELECT seq, head, received_at, witness IS NOT NULL AS witnessed FROM checkpoints "
                                "WHERE box_id = ? AND received_at > ? ORDER BY id DESC LIMIT 1",
                                [box_id, self.restarted_at(box_id)])

    def last_witnessed(self, box_id: str) -> dict | None:
        row = self.archive.one("SELECT seq, head, witness FROM checkpoints WHERE box_id = ? AND witness IS NOT NULL "
                               "AND received_at > ? ORDER BY id DESC LIMIT 1", [box_id, self.restarted_at(box_id)])
        if row is None:
            return None
        return {"count": row["seq"], "head": row["head"], "witnessed_at": json.loads(row["witness"])["witnessed_at"]}

    def witnessed(self, box_id: str) -> list[dict]:
        """The box's checkpoints this archive witnessed, as the box signed them, each with the witness:
        the outside copy an auditor holds the box's log to (`kluis audit verify --checkpoint`)."""
        return [{**json.loads(r["signed"]), "witness": json.loads(r["witness"])} for r in self.archive.db.query(
            "SELECT signed, witness FROM checkpoints WHERE box_id = ? AND witness IS NOT NULL ORDER BY id", [box_id])]

    def receive(self, box_id: str, cp: dict, prior: dict | None, witnessed_prior: dict | None = None) -> dict:
        """Keep a box's signed audit checkpoint and hold it to the last one: a log that went backwards,
        or whose entry at the last count is not the one signed before (rewritten, forked), raises an
        alert. The checkpoint is kept either way, as evidence. It is witnessed (counter-signed with the
        archive's key, the statement returned) only if it also agrees with the last checkpoint witnessed
        before (`witnessed_prior`: the box's hash of that entry): the archive never signs two logs that
        contradict each other, also when a contradicting checkpoint was received (not witnessed) since."""
        if not isinstance(cp, dict):
            raise ProtocolError("checkpoint missing", 400)
        box_key = self.archive.box_key(box_id)
        if box_key is None:
            raise ProtocolError(f"box {box_id} is not enrolled at this archive", 403)
        wrong = audit_log.check_signature(cp, VerifyKey(box_key))
        if wrong:
            with self.archive.transaction():
                self.raise_alert(box_id, "bad_checkpoint", {"problem": wrong})
                self.archive.audit("system", "checkpoint_refused", box_id=box_id, details={"problem": wrong})
            raise ProtocolError(f"checkpoint refused: {wrong}", 422)
        count, head = int(cp["count"]), str(cp["head"])
        with self.archive.transaction():
            last = self.last(box_id)
            alert = contradiction(last["count"], last["head"], count, head, prior)
            seen, episode = last["witnessed"], True
            if alert is None and seen is not None:
                alert = contradiction(seen["count"], seen["head"], count, head, witnessed_prior, witnessed=True)
                # A log that goes on from a checkpoint already refused is the same episode: one alert, not
                # one per sync pass (it stays unwitnessed until an operator restarts the witness).
                row = self._last_row(box_id)
                episode = bool(row and row["witnessed"])
            witness = None
            if alert is None:
                witness = witness_mod.sign(self.archive.signing_key, self.archive.archive_id, box_id, cp,
                                           self.archive.now_iso())
            self.archive.db.execute(
                "INSERT INTO checkpoints (box_id, seq, head, signed, received_at, witness) VALUES (?,?,?,?,?,?)",
                [box_id, count, head, json.dumps(cp, sort_keys=True), self.archive.now_iso(),
                 json.dumps(witness, sort_keys=True) if witness else None])
            if alert and episode:
                kind, text = alert
                self.raise_alert(box_id, kind, {"message": text, "count": count, "previous": last, "prior": prior,
                                                "witnessed_prior": witnessed_prior, "witnessed": False})
                self.archive.audit("system", kind, box_id=box_id, details={"message": text, "witnessed": False})
        return {"accepted": True, "alert": alert[0] if alert else None, "witness": witness}

    def restarted_at(self, box_id: str) -> str:
        """When an operator last restarted this box's witness ("" for never): checkpoints received before
        do not bind what is witnessed after."""
        row = self.archive.db.execute("SELECT max(time) FROM audit_log WHERE action = 'witness_restart' AND client = ?",
                                      [box_id]).fetchone()
        return row[0] or ""

    def restart(self, box_id: str, actor: str, reason: str) -> dict | None:
        """Witness the box's log afresh from its next checkpoint, after the operator found why it contradicts
        the last one witnessed (a box restored from a backup has an older log). On record in the archive's
        own log, with the last witnessed checkpoint, which stays kept as it was. Returns that checkpoint."""
        if self.archive.box_key(box_id) is None:
            raise ProtocolError(f"box {box_id} is not enrolled at this archive", 404)
        if not reason.strip():
            raise ProtocolError("say why the witness is restarted (--reason)", 400)
        with self.archive.transaction():
            seen = self.last_witnessed(box_id)
            self.archive.audit(actor, "witness_restart", box_id=box_id,
                               details={"reason": reason.strip()[:500], "last_witnessed": seen})
        return seen

    def raise_alert(self, box_id: str | None, kind: str, details: dict) -> None:
        self.archive.db.execute("INSERT INTO alerts (box_id, kind, details, created_at) VALUES (?,?,?,?)",
                        [box_id, kind, json.dumps(details, sort_keys=True), self.archive.now_iso()])

    def alerts(self, box_id: str | None = None) -> list[dict]:
        sql, params = "SELECT * FROM alerts", []
        if box_id:
            sql, params = sql + " WHERE box_id = ?", [box_id]
        return [{**r, "details": json.loads(r["details"])} for r in self.archive.db.query(sql + " ORDER BY id", params)]


def contradiction(seen: int | None, seen_head: str | None, count: int, head: str, prior: dict | None,
                  witnessed: bool = False) -> tuple[str, str] | None:
    """(alert kind, message) if a checkpoint at (count, head) cannot follow one at (seen, seen_head), given
    the box's `prior` {count, hash}: its hash of entry `seen` now; else None."""
    if seen is None:
        return None
    what = "witnessed" if witnessed else "signed"
    if count < seen:
        return "audit_backwards", f"the box's audit log went back from {seen} to {count} entries"
    if count == seen and head != seen_head:
        return "audit_fork", f"two different logs signed at {count} entries" + (
            " (one of them witnessed)" if witnessed else "")
    if count > seen and (not isinstance(prior, dict) or prior.get("count") != seen or prior.get("hash") != seen_head):
        return "audit_fork", (f"the box's log no longer contains entry {seen} as {what} before "
                              f"(rewritten or truncated and re-signed)")
    return None
