"""Requisitions (vorderingen): footage the archive asks its boxes for, and what each box reported."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from appliance.errors import KluisError, NotFound

from ..protocol import ProtocolError

if TYPE_CHECKING:
    from .store import Archive


class Requisitions:
    def __init__(self, archive: "Archive"):
        self.archive = archive

    def add(self, actor: str, *, legal_basis: str, case_ref: str, camera_serial: str | None = None,
                        officer: str | None = None, start_time: str | None = None, end_time: str | None = None,
                        recording_id: str | None = None) -> int:
        if not legal_basis.strip() or not case_ref.strip():
            raise KluisError("a requisition needs a legal basis and a case reference")
        if recording_id is None and not (camera_serial or officer):
            raise KluisError("a requisition names a recording id, or a camera or an officer")
        if recording_id is None and not (start_time and end_time):
            raise KluisError("a requisition by camera or officer needs a time window (start and end)")
        if start_time and end_time and end_time <= start_time:
            raise KluisError("the time window ends before it starts")
        with self.archive.transaction():
            cursor = self.archive.db.execute(
                "INSERT INTO requisitions (created_at, created_by, camera_serial, officer, start_time, end_time, "
                "recording_id, legal_basis, case_ref) VALUES (?,?,?,?,?,?,?,?,?)",
                [self.archive.now_iso(), actor, camera_serial, officer, start_time, end_time, recording_id,
                 legal_basis, case_ref])
            req_id = cursor.lastrowid
            assert req_id is not None  # an INSERT sets it
            self.archive.audit(actor, "requisition_add", case_ref=case_ref,
                       details={"requisition": req_id, "legal_basis": legal_basis})
        return req_id

    def close(self, actor: str, req_id: int) -> None:
        with self.archive.transaction():
            if self.archive.one("SELECT 1 AS x FROM requisitions WHERE id = ?", [req_id]) is None:
                raise NotFound(f"no requisition {req_id}")
            self.archive.db.execute("UPDATE requisitions SET closed_at = ? WHERE id = ?", [self.archive.now_iso(), req_id])
            self.archive.audit(actor, "requisition_close", details={"requisition": req_id})

    def all(self) -> list[dict]:
        rows = list(self.archive.db.query("SELECT * FROM requisitions ORDER BY id"))
        for row in rows:
            row["reports"] = [
                {**r, "matched": json.loads(r["matched"])}
                for r in self.archive.db.query("SELECT box_id, reported_at, matched FROM requisition_reports "
                                       "WHERE requisition_id = ? ORDER BY box_id", [row["id"]])]
        return rows

    def open_for(self, box_id: str) -> list[dict]:
        """Open requisitions this box has not answered yet."""
        return list(self.archive.db.query(
            "SELECT id, camera_serial, officer, start_time, end_time, recording_id, legal_basis, case_ref "
            "FROM requisitions WHERE closed_at IS NULL AND id NOT IN "
            "(SELECT requisition_id FROM requisition_reports WHERE box_id = ?) ORDER BY id", [box_id]))

    def report(self, box_id: str, req_id: int, matched: list[str]) -> None:
        if not isinstance(matched, list) or not all(isinstance(m, str) for m in matched):
            raise ProtocolError("matched must be a list of recording ids", 400)
        with self.archive.transaction():
            if self.archive.one("SELECT 1 AS x FROM requisitions WHERE id = ?", [req_id]) is None:
                raise ProtocolError(f"no requisition {req_id}", 404)
            self.archive.db.execute("INSERT OR REPLACE INTO requisition_reports (requisition_id, box_id, reported_at, "
                            "matched) VALUES (?,?,?,?)", [req_id, box_id, self.archive.now_iso(), json.dumps(matched)])
            self.archive.audit("system", "requisition_report", box_id=box_id,
                       details={"requisition": req_id, "matched": matched})
