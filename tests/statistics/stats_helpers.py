"""A known data set for the statistics tests: recordings of two teams and an unknown officer over two
months, with reasons, warnings, a category, holds, views, an access request, a handover and an early
deletion, each made through the box's own domain functions (the ones that keep the statistics)."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

from appliance import access_requests, footage, handover, recordings, retention, sweep
from appliance.box import Box
from tests.conftest import PASSWORD, add_role_users
from tests.moving_clock import T0

MARCH = T0 + timedelta(days=1)        # 2026-03-02 12:00 UTC
APRIL = T0 + timedelta(days=32)       # 2026-04-02 12:00 UTC


def store(box: Box, tmp_path: Path, start: datetime, officer: str, camera: str = "CAM001") -> str:
    path = tmp_path / f"clip-{os.urandom(4).hex()}.bin"
    path.write_bytes(os.urandom(2000))
    result = recordings.import_file(box, path, camera=camera, officer=officer, start=start,
                                    end=start + timedelta(minutes=2), actor="admin")
    path.unlink()
    return result.recording_id


def configure(box: Box, **categories: int) -> None:
    """Retention categories with their terms."""
    path = box.data_dir / "kluis.toml"
    text = path.read_text()
    head, marker, tail = text.partition("[retention.categories]")
    lines = "".join(f"{name} = {days}\n" for name, days in categories.items())
    first, _, rest = tail.partition("\n")
    path.write_text(head + marker + first + "\n" + lines + rest)


@dataclass
class DataSet:
    march: list[str] = field(default_factory=list)   # ids
    april: list[str] = field(default_factory=list)
    ids: dict[str, str] = field(default_factory=dict)  # name -> id


def known_data_set(box: Box, tmp_path: Path) -> DataSet:
    """March: 4 recordings (3 of team Noord by 'hh', 1 of an officer the box does not know); April: 2 of
    Noord and 1 of Zuid ('hz').

    - reasons: n1 aggression (warning given), n2 threat (no warning), n3 aggression (warning given),
      a1 insult; the rest none
    - category 'incident' on a1
    - holds: n2 complaint (released again), a1 police_report (kept)
    - views: n1 twice for a complaint by the privacy officer; a1 once for a police report; n2 once
      exported for a complaint
    - access request linking u1 (its hold is the request's)
    - handover of a1 to the police, approved
    - n3 deleted ahead of term (an objection upheld)
    """
    add_role_users(box.data_dir)
    from appliance import users

    identity = box.unlock("admin", PASSWORD)
    users.add_user(box, "admin", "hz", "officer", PASSWORD, team="Zuid", identity=identity)
    configure(box, incident=365)
    data = DataSet()
    for name, start, officer in (("n1", MARCH, "hh"), ("n2", MARCH + timedelta(hours=1), "hh"),
                                 ("n3", MARCH + timedelta(hours=2), "hh"), ("u1", MARCH + timedelta(hours=3), "X. Onbekend"),
                                 ("a1", APRIL, "hh"), ("a2", APRIL + timedelta(hours=1), "hh"),
                                 ("z1", APRIL + timedelta(hours=2), "hz")):
        rid = store(box, tmp_path, start, officer, camera="CAM002" if name.startswith("z") else "CAM001")
        data.ids[name] = rid
        (data.march if start < APRIL else data.april).append(rid)
    ids = data.ids
    recordings.set_reason(box, box.catalog.get_recording(ids["n1"]), "aggression", True, actor="hh")
    recordings.set_reason(box, box.catalog.get_recording(ids["n2"]), "insult", None, actor="hh")
    recordings.set_reason(box, box.catalog.get_recording(ids["n2"]), "threat", False, actor="tl")  # changed: counts once
    recordings.set_reason(box, box.catalog.get_recording(ids["n3"]), "aggression", True, actor="hh")
    recordings.set_reason(box, box.catalog.get_recording(ids["a1"]), "insult", None, actor="hh")
    retention.set_category(box, ids["a1"], "fg", add=["incident"], source="web")
    retention.add_hold(box, ids["n2"], "complaint", "K-1", "fg")
    retention.release_hold(box, ids["n2"], "complaint withdrawn", "fg")
    retention.add_hold(box, ids["a1"], "police_report", "PV-7", "fg")
    fg = box.catalog.get_user("fg")
    key = box.unlock("fg", PASSWORD)
    for rid, purpose, case, export in ((ids["n1"], "complaint", "K-2", False), (ids["n1"], "complaint", "K-2", False),
                                       (ids["a1"], "police_report", "PV-7", False), (ids["n2"], "complaint", "K-1", True)):
        footage.open_for_viewing(box, fg, rid, purpose, case, identity=key, export=export)
    request = access_requests.register(box, requester="A. Verzoeker", kind="inzage", received_on=date(2026, 3, 1),
                                       given_time=T0 - timedelta(hours=6), actor="fg", window_minutes=0)
    access_requests.link(box, request.request["id"], ids["u1"], "fg")
    handover_id = handover.prepare(box, "tl", [ids["a1"]], "Politie Midden-Nederland, J. Agent", "vordering 126nd Sv",
                                   "PV-7", "police_report", "none")
    handover.approve(box, handover_id, "fg", key, io.BytesIO(), unencrypted=True)
    sweep.delete_early(box, ids["n3"], actor="fg", reason="objection upheld", decision_ref="B-1", purpose="objection")
    return data
