"""Issue 20, part 5: a custody report per recording and per case (PDF and JSON), signed by the box and
verified by `kluis export verify`; a one-byte change anywhere fails it."""

from __future__ import annotations

import io
import json
import os
from datetime import datetime, timedelta, timezone

import pytest
from nacl.signing import SigningKey
from pypdf import PdfReader

from appliance import audit, custody, recordings, retention, signing, sweep
from appliance.box import Box
from appliance.errors import KluisError, NotFound

T0 = datetime(2026, 11, 20, 13, 5, tzinfo=timezone.utc)


def store(box: Box, tmp_path, start: datetime) -> str:
    path = tmp_path / f"clip-{os.urandom(4).hex()}.bin"
    path.write_bytes(os.urandom(3000))
    return recordings.import_file(box, path, camera="CAM001", officer="jansen", start=start,
                                  end=start + timedelta(seconds=60), actor="admin").recording_id


def text_of(pdf: bytes) -> str:
    return " ".join(" ".join(page.extract_text().split()) for page in PdfReader(io.BytesIO(pdf)).pages)


def write(tmp_path, report: dict, pdf: bytes):
    (tmp_path / "r.pdf").write_bytes(pdf)
    (tmp_path / "r.json").write_bytes(custody.to_json(report))
    return tmp_path / "r.json", tmp_path / "r.pdf"


def test_a_recordings_report_names_it_and_every_event_and_verifies(box_dir, tmp_path):
    with Box(box_dir[0]) as box:
        rid = store(box, tmp_path, T0)
        audit.record(box.catalog, actor="fg", action="view", recording_id=rid, purpose="complaint", case_ref="K-7",
                     details={"from_s": 0, "to_s": 20})
        retention.add_hold(box, rid, "complaint", "K-7", "fg")
        report, pdf = custody.build(box, recording_id=rid, actor="fg", client="test")
        signer = box.catalog.get_meta("signing_public_key")
    [rec] = report["recordings"]
    assert rec["id"] == rid and rec["camera_serial"] == "CAM001" and rec["officer"] == "jansen"
    assert len(rec["sha256"]) == 64 and rec["clock_offset_s"] is not None
    assert [e["action"] for e in report["events"]] == ["ingest", "view", "hold_add", "custody_report"]
    assert report["events"][1]["purpose"] == "complaint" and report["events"][1]["actor"] == "fg"
    text = text_of(pdf)
    assert rid in text and "bekeken (view) door fg, doel complaint, zaak K-7" in text and rec["sha256"][:32] in text

    json_path, pdf_path = write(tmp_path, report, pdf)
    checked = custody.verify(json_path, box_key=signer)
    assert checked.ok, checked.problems
    assert custody.verify(pdf_path).ok  # from the PDF, with its JSON beside it
    assert not custody.verify(json_path, box_key="00" * 32).ok  # another box's key


@pytest.mark.parametrize("where", ["json", "pdf", "event"])
def test_a_one_byte_change_fails_it(box_dir, tmp_path, where):
    with Box(box_dir[0]) as box:
        rid = store(box, tmp_path, T0)
        report, pdf = custody.build(box, recording_id=rid, actor="fg")
    json_path, pdf_path = write(tmp_path, report, pdf)
    assert custody.verify(json_path).ok
    if where == "pdf":
        data = bytearray(pdf_path.read_bytes())
        data[len(data) // 2] ^= 1
        pdf_path.write_bytes(bytes(data))
    elif where == "json":
        json_path.write_bytes(json_path.read_bytes().replace(b'"officer": "jansen"', b'"officer": "jansem"'))
    else:  # an event altered and the whole report re-signed with another key: the events betray it
        altered = json.loads(json_path.read_bytes())
        altered["events"][0]["actor"] = "admim"
        other = SigningKey.generate()
        body = {k: v for k, v in altered.items() if k != "signature"} | {"signer": other.verify_key.encode().hex()}
        json_path.write_bytes(custody.to_json(signing.signed(body, other, signing.CUSTODY_REPORT)))
        problems = custody.verify(json_path).problems
        assert "event #1: its fields do not give its hash" in problems
        assert "event #2: its own signature does not match" in problems
    checked = custody.verify(json_path)
    assert not checked.ok and checked.problems


def test_a_case_report_holds_every_recording_of_the_case_also_one_deleted_since(box_dir, tmp_path):
    with Box(box_dir[0]) as box:
        a, b, other = (store(box, tmp_path, T0 + timedelta(minutes=m)) for m in (0, 5, 10))
        retention.add_hold(box, a, "police_report", "PV-2026-9", "fg")
        retention.add_hold(box, b, "police_report", "PV-2026-9", "fg")
        retention.release_hold(box, b, "niet nodig", "fg")
        sweep.delete_early(box, b, actor="fg", reason="objection upheld", decision_ref="B-1")
        report, pdf = custody.build(box, case_ref="PV-2026-9", actor="au")
        with pytest.raises(NotFound):
            custody.build(box, case_ref="PV-0000-0", actor="au")
        with pytest.raises(KluisError):
            custody.build(box, recording_id=a, case_ref="PV-2026-9", actor="au")
    assert sorted(r["id"] for r in report["recordings"]) == sorted([a, b]) and other not in json.dumps(report)
    deleted = next(r for r in report["recordings"] if r["id"] == b)
    assert deleted["state"] == "deleted" and "objection upheld" in deleted["deletion_reason"]
    actions = [(e["action"], e["recording_id"]) for e in report["events"]]
    assert ("delete", b) in actions and ("hold_add", a) in actions and ("ingest", a) in actions
    assert custody.verify(write(tmp_path, report, pdf)[0]).ok
    assert "zaak PV-2026-9" in text_of(pdf)


def test_through_the_cli_with_the_roles_table(box_dir, privacy_officer, password_file, kluis, tmp_path):
    from tests.conftest import add_role_users
    data = box_dir[0]
    add_role_users(data, "tl")
    with Box(data) as box:
        rid = store(box, tmp_path, T0)
    out = tmp_path / "rapport.pdf"
    done = kluis("export", "custody", "--data", data, "--recording", rid, "--out", out, *privacy_officer)
    assert b"1 recording(s)" in done.stdout and out.exists() and out.with_suffix(".json").exists()
    checked = kluis("export", "verify", out.with_suffix(".json"))
    assert b"the custody report verifies" in checked.stdout
    refused = kluis("export", "custody", "--data", data, "--recording", rid, "--out", tmp_path / "x.pdf", "--user", "tl",
                    "--password-file", password_file, check=False)
    assert refused.returncode != 0 and b"may not do this (audit.read)" in refused.stderr
    data_bytes = bytearray(out.read_bytes())
    data_bytes[-40] ^= 1
    out.write_bytes(bytes(data_bytes))
    bad = kluis("export", "verify", out, check=False)
    assert bad.returncode != 0 and b"BAD: rapport.pdf: its SHA-256" in bad.stdout
    with Box(data) as box:
        assert [e["actor"] for e in audit.entries(box.catalog, action="custody_report")] == ["fg"]


async def test_the_auditor_downloads_it_from_the_log(box_dir, tmp_path):
    """In the web UI: /logboek?recording_id=ID links the report; the ZIP holds the PDF and the JSON that verify."""
    import zipfile

    from tests.conftest import add_role_users
    from tests.web_helpers import WebClient, https_client
    from webui.site import create_app

    add_role_users(box_dir[0], "au")
    with Box(box_dir[0]) as box:
        rid = store(box, tmp_path, T0)
        async with https_client(box, create_app(box)) as client:
            web = WebClient(box, client)
            await web.login("au")
            html = await web.page(f"/logboek?recording_id={rid}")
            assert f'href="/logboek/bewaarketen?opname={rid}"' in html
            response = await client.get(f"/logboek/bewaarketen?opname={rid}")
            assert response.status == 200 and response.content_type == "application/zip"
            body = await response.read()
            assert (await client.get("/logboek/bewaarketen?opname=nosuch")).status == 404
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        archive.extractall(tmp_path / "zip")
    checked = custody.verify(tmp_path / "zip" / f"bewaarketen-{rid}.pdf")
    assert checked.ok, checked.problems
    assert checked.report["made_by"] == "au"
