"""The boxes' signed audit checkpoints as the archive received them, held each to the last one, and the
alerts raised when a box's log went backwards or forked (or anything else the operator must see)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from nacl.signing import VerifyKey

from appliance import audit as audit_log

from ..protocol import ProtocolError

if TYPE_CHECKING:
    from .store import Archive


class Checkpoints:
    def __init__(self, archive: "Archive"):
        self.archive = archive

    def last(self, box_id: str) -> dict:
        row = self.archive.one("SELECT seq, head, received_at FROM checkpoints WHERE box_id = ? ORDER BY id DESC LIMIT 1",
                        [box_id])
        return {"count": row["seq"], "head": row["head"], "received_at": row["received_at"]} if row else {
            "count": None, "head": None, "received_at": None}

    def receive(self, box_id: str, cp: dict, prior: dict | None) -> dict:
        """Keep a box's signed audit checkpoint and hold it to the last one: a log that went backwards,
        or whose entry at the last count is not the one signed before (rewritten, forked), raises an
        alert. The checkpoint is kept either way, as evidence."""
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
            alert = None
            if last["count"] is not None:
                seen, seen_head = last["count"], last["head"]
                if count < seen:
                    alert = ("audit_backwards", f"the box's audit log went back from {seen} to {count} entries")
                elif count == seen and head != seen_head:
                    alert = ("audit_fork", f"two different logs signed at {count} entries")
                elif count > seen and (not isinstance(prior, dict) or prior.get("count") != seen
                                       or prior.get("hash") != seen_head):
                    alert = ("audit_fork", f"the box's log no longer contains entry {seen} as signed before "
                                           f"(rewritten or truncated and re-signed)")
            self.archive.db.execute("INSERT INTO checkpoints (box_id, seq, head, signed, received_at) VALUES (?,?,?,?,?)",
                            [box_id, count, head, json.dumps(cp, sort_keys=True), self.archive.now_iso()])
            if alert:
                kind, text = alert
                self.raise_alert(box_id, kind, {"message": text, "count": count, "previous": last, "prior": prior})
                self.archive.audit("system", kind, box_id=box_id, details={"message": text})
        return {"accepted": True, "alert": alert[0] if alert else None}

    def raise_alert(self, box_id: str | None, kind: str, details: dict) -> None:
        self.archive.db.execute("INSERT INTO alerts (box_id, kind, details, created_at) VALUES (?,?,?,?)",
                        [box_id, kind, json.dumps(details, sort_keys=True), self.archive.now_iso()])

    def alerts(self, box_id: str | None = None) -> list[dict]:
        sql, params = "SELECT * FROM alerts", []
        if box_id:
            sql, params = sql + " WHERE box_id = ?", [box_id]
        return [{**r, "details": json.loads(r["details"])} for r in self.archive.db.query(sql + " ORDER BY id", params)]
