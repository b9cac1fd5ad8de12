"""The handover register (appliance.handover) on a real catalog: four eyes, holds, refusals on record,
the register as CSV."""

from __future__ import annotations

import functools
import io

import pytest

from appliance import audit, config, handover, retention
from appliance.box import Box
from appliance.errors import KluisError
from tests.conftest import PASSWORD
from tests.handover.conftest import BASIS, CASE, RECEIVER
from tests.handover_box import fixed_clock
from tests import dutch_csv


def prep(box, actor="fg", rids=None, ids=None, **kw):
    kw.setdefault("protection", "none")
    return handover.prepare(box, actor, rids or [ids["noord"]], RECEIVER, BASIS, kw.pop("case_ref", CASE),
                            kw.pop("purpose", "requisition"), **kw)


def denied(box) -> list[dict]:
    return audit.entries(box.catalog, action="handover_denied")


def test_prepare_registers_places_a_hold_and_produces_nothing(hbox, ids, tmp_path):
    before = set(tmp_path.rglob("*"))
    hid = prep(hbox, ids=ids, rids=[ids["noord"], ids["zuid"]])
    assert hid == "OV-2026-0001"
    row = handover.get(hbox, hid)
    assert row["state"] == "prepared" and row["prepared_by"] == "fg" and row["approved_by"] is None
    assert row["recording_ids"] == [ids["noord"], ids["zuid"]]
    assert row["receiver"] == RECEIVER and row["basis"] == BASIS and row["case_ref"] == CASE
    for rid in (ids["noord"], ids["zuid"]):
        holds = retention.active_holds(hbox.catalog, rid)
        assert [(h["case_ref"], h["purpose"], h["placed_by"]) for h in holds] == [(CASE, "requisition", "fg")]
        actions = [e["action"] for e in audit.entries(hbox.catalog, recording_id=rid)]
        assert actions[-2:] == ["handover_prepare", "hold_add"]
    assert set(tmp_path.rglob("*")) == before  # nothing written: no byte before the approval


def test_no_second_hold_when_the_case_already_has_one(hbox, ids):
    retention.add_hold(hbox, ids["noord"], "police_report", CASE, "fg")
    prep(hbox, ids=ids)
    prep(hbox, ids=ids)  # a second handover in the same case
    assert len(retention.active_holds(hbox.catalog, ids["noord"])) == 1
    prep(hbox, ids=ids, case_ref="PV-2026-200")
    assert sorted(h["case_ref"] for h in retention.active_holds(hbox.catalog, ids["noord"])) == [CASE, "PV-2026-200"]


def test_the_preparer_may_not_approve_and_the_refusal_is_on_record(hbox, ids, tmp_path):
    hid = prep(hbox, ids=ids)
    identity = hbox.unlock("fg", PASSWORD)
    out = tmp_path / "pkg.zip"
    with pytest.raises(handover.Denied, match="four eyes"):
        handover.approve(hbox, hid, "fg", identity, out, unencrypted=True)
    assert not out.exists() and not list(tmp_path.glob("*.part"))
    assert handover.get(hbox, hid)["state"] == "prepared"
    [entry] = denied(hbox)
    assert entry["actor"] == "fg" and entry["recording_id"] == ids["noord"] and entry["case_ref"] == CASE
    assert entry["details"]["step"] == "approve" and "four eyes" in entry["details"]["reason"]
    assert not audit.entries(hbox.catalog, action="handover_approve")
    # a second privacy officer may
    result = handover.approve(hbox, hid, "fg2", hbox.unlock("fg2", PASSWORD), out, unencrypted=True)
    assert out.exists() and result["single_approval"] is False
    row = handover.get(hbox, hid)
    assert (row["state"], row["approved_by"], row["package_sha256"]) == ("approved", "fg2", result["package_sha256"])
    assert [e["action"] for e in audit.entries(hbox.catalog, recording_id=ids["noord"])][-2:] == \
        ["handover_approve", "export"]


def test_single_approval_setting_lets_the_preparer_approve_and_says_so(data, ids, tmp_path):
    config.write_template(data, {"security": {"kdf_profile": "interactive"}, "handover": {"single_approval": True}})
    with Box(data, clock=fixed_clock) as box:
        assert handover.single_approval_allowed(box)
        hid = prep(box, ids=ids)
        result = handover.approve(box, hid, "fg", box.unlock("fg", PASSWORD), tmp_path / "p.zip", unencrypted=True)
        assert result["single_approval"] is True and result["manifest"]["single_approval"] is True
        assert handover.get(box, hid)["single_approval"] is True
        [entry] = audit.entries(box.catalog, action="handover_approve")
        assert entry["details"]["single_approval"] is True


def test_every_refusal_is_on_record(hbox, ids, tmp_path):
    refusals = 0

    def refused(call, match):
        nonlocal refusals
        with pytest.raises(handover.Denied, match=match):
            call()
        refusals += 1
        assert len(denied(hbox)) == refusals, match
        return denied(hbox)[-1]

    # roles that may not prepare
    for name in ("hh", "au", "admin"):
        entry = refused(functools.partial(prep, hbox, actor=name, ids=ids), "may not prepare")
        assert entry["actor"] == name and entry["details"]["step"] == "prepare"
    # a team leader outside the own team
    refused(lambda: prep(hbox, actor="tl", rids=[ids["zuid"]], ids=ids), "not in their scope")
    hid = prep(hbox, actor="tl", ids=ids)  # the own team: allowed
    identity = hbox.unlock("fg", PASSWORD)
    # roles that may not approve, and an unencrypted package not confirmed
    refused(lambda: handover.approve(hbox, hid, "tl", identity, tmp_path / "a"), "may not approve")
    refused(lambda: handover.approve(hbox, hid, "au", identity, tmp_path / "b"), "may not approve")
    refused(lambda: handover.approve(hbox, hid, "fg", identity, tmp_path / "c"), "unencrypted")
    refused(lambda: handover.refuse(hbox, hid, "tl", "geen grondslag"), "may not approve")
    handover.refuse(hbox, hid, "fg", "geen vordering ontvangen")
    # a refused handover cannot be approved, refused or cancelled any more
    refused(lambda: handover.approve(hbox, hid, "fg", identity, tmp_path / "d", unencrypted=True), "is refused")
    refused(lambda: handover.cancel(hbox, hid, "tl", "toch niet"), "is refused")
    assert not any((tmp_path / name).exists() for name in "abcd")
    row = handover.get(hbox, hid)
    assert (row["state"], row["refused_by"], row["refuse_reason"]) == ("refused", "fg", "geen vordering ontvangen")
    [entry] = audit.entries(hbox.catalog, action="handover_refuse")
    assert entry["details"] == {"handover": hid, "reason": "geen vordering ontvangen"}


def test_cancel_by_the_preparer(hbox, ids):
    hid = prep(hbox, actor="tl", ids=ids)
    handover.cancel(hbox, hid, "tl", "verkeerde opname gekozen")
    assert handover.get(hbox, hid)["state"] == "cancelled"
    assert [e["actor"] for e in audit.entries(hbox.catalog, action="handover_cancel")] == ["tl"]


def test_input_is_checked(hbox, ids, age_key):
    with pytest.raises(KluisError, match="receiving party"):
        handover.prepare(hbox, "fg", [ids["noord"]], " ", BASIS, CASE, "requisition", "none")
    with pytest.raises(KluisError, match="training"):
        prep(hbox, ids=ids, purpose="training")
    with pytest.raises(KluisError, match="age public key"):
        prep(hbox, ids=ids, protection="age-recipient", age_recipient="age1notakey")
    with pytest.raises(KluisError, match="no recording"):
        prep(hbox, rids=["0000000000000000"], ids=ids)
    with pytest.raises(KluisError, match="after the start"):
        prep(hbox, ids=ids, clip={ids["noord"]: (5, 2)})
    hid = prep(hbox, ids=ids, protection="age-recipient", age_recipient=age_key[1])
    assert handover.get(hbox, hid)["age_recipient"] == age_key[1]
    assert not denied(hbox)  # bad input is not a refusal: nothing was attempted


def test_the_register_lists_and_exports_as_csv(hbox, ids, tmp_path):
    first = prep(hbox, ids=ids, clip={ids["noord"]: (1.5, 4)})
    second = prep(hbox, ids=ids, rids=[ids["zuid"]], case_ref="PV-2026-300", protection="passphrase")
    handover.approve(hbox, first, "fg2", hbox.unlock("fg2", PASSWORD), tmp_path / "p.zip", unencrypted=True)
    handover.cancel(hbox, second, "fg", "dubbel")
    assert [h["id"] for h in handover.list_handovers(hbox)] == [second, first]
    assert [h["id"] for h in handover.list_handovers(hbox, recording_id=ids["zuid"])] == [second]
    assert [h["id"] for h in handover.list_handovers(hbox, state="approved")] == [first]
    out = io.StringIO()
    assert handover.register_csv(hbox, out, actor="au") == 2
    rows = dutch_csv.records(out.getvalue(), handover.REGISTER_COLUMNS)
    assert [r["id"] for r in rows] == [first, second]
    assert rows[0]["state"] == "approved" and rows[0]["approved_by"] == "fg2" and rows[0]["single_approval"] == "nee"
    assert rows[0]["recordings"] == f"{ids['noord']}[1,5-4s]" and len(rows[0]["package_sha256"]) == 64
    assert rows[1]["state"] == "cancelled" and rows[1]["refuse_reason"] == "dubbel"
    assert rows[1]["case_ref"] == "PV-2026-300" and rows[1]["protection"] == "passphrase"
    assert audit.entries(hbox.catalog, action="handover_register")[-1]["actor"] == "au"


def test_a_handover_refused_while_its_package_is_written_voids_the_package(hbox, ids):
    hid = prep(hbox, ids=ids)

    class Sink(io.BytesIO):
        """The package's destination; the first byte arrives after the checks, and then fg refuses it."""

        def write(self, data):
            if not self.tell():
                handover.refuse(hbox, hid, "fg", "vordering ingetrokken")
            return super().write(data)

    with pytest.raises(KluisError, match="refused by someone else meanwhile"):
        handover.approve(hbox, hid, "fg2", hbox.unlock("fg2", PASSWORD), Sink(), unencrypted=True)
    row = handover.get(hbox, hid)
    assert (row["state"], row["approved_by"], row["package_sha256"]) == ("refused", None, None)
    failed = audit.entries(hbox.catalog, action="handover_failed")
    assert [e["recording_id"] for e in failed] == [ids["noord"]] and "void" in failed[0]["details"]["error"]
    assert not audit.entries(hbox.catalog, action="export")
