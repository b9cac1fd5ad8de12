"""The handover pages over a real HTTPS server: prepare as one privacy officer, approve as a second with
the password, download the package and open it with the real `age` CLI, check it with `sha256sum -c`;
four eyes, refusal, the unencrypted choice, scope, the register and the recording's page."""

from __future__ import annotations

import io
import re
import subprocess
import zipfile
from pathlib import Path

import av

from appliance import audit, handover, retention
from tests.conftest import PASSWORD
from tests import dutch_csv

CASE = "PV-2026-4711"


def prepare_form(ids: list[str], **changes) -> dict:
    form = {"recording_ids": "\n".join(ids), "receiver_org": "Politie Midden-Nederland",
            "receiver_unit": "District Utrecht-Stad", "receiver_name": "R. de Boer", "receiver_number": "AB1234",
            "basis_kind": "vordering", "basis_article": "art. 126nd Sv", "case_ref": CASE,
            "purpose": "police_report", "protection": "passphrase", "action": "prepare"}
    form.update(changes)
    return form


async def prepare(web, ids: list[str], **changes) -> str:
    response = await web.post("/overdrachten/nieuw", prepare_form(ids, **changes), csrf_from="/overdrachten/nieuw")
    assert response.status == 303, await response.text()
    match = re.fullmatch(r"/overdrachten/(OV-\d{4}-\d{4})", response.headers["Location"])
    assert match, response.headers["Location"]
    return match.group(1)


async def approve(web, handover_id: str, password: str = PASSWORD, **extra):
    return await web.post(f"/overdrachten/{handover_id}/goedkeuren", {"password": password, **extra},
                          csrf_from=f"/overdrachten/{handover_id}")


def download_link(html: str) -> str:
    match = re.search(r'href="(/overdrachten/[^"]+/pakket/[^"]+)"', html)
    assert match, html[-2000:]
    return match.group(1)


async def test_prepare_approve_download_and_open_with_age(web, ids, age_key, original, tmp_path):
    identity_file, public_key = age_key
    await web.login("fg")
    # The recording's page offers the handover.
    status, page = await web.get(f"/opnames/{ids['noord']}")
    assert status == 200 and "Overdracht voorbereiden" in page
    status, form_page = await web.get(f"/overdrachten/nieuw?opname={ids['noord']}")
    assert status == 200 and ids["noord"] in form_page and "CAM001" in form_page
    # A link from a request's page fills in the case and the purpose.
    status, prefilled = await web.get(f"/overdrachten/nieuw?opname={ids['noord']}&case_ref=VZ-2026-0001"
                                      "&purpose=access_request")
    assert status == 200 and 'value="VZ-2026-0001"' in prefilled
    assert 'value="access_request" selected' in prefilled

    handover_id = await prepare(web, [ids["noord"], ids["zuid"]], protection="age-recipient",
                                age_recipient=public_key, **{f"from_{ids['noord']}": "2,5", f"to_{ids['noord']}": "14:05:07"})
    status, detail = await web.get(f"/overdrachten/{handover_id}")
    assert "wacht op goedkeuring" in detail and CASE in detail
    # The preparer sees that someone else must approve, and no approval form.
    assert "tweede persoon" in detail and "/goedkeuren" not in detail
    # Prepared: both recordings held for the case, nothing exported yet.
    for key in ("noord", "zuid"):
        assert any(h["case_ref"] == CASE for h in retention.active_holds(web.box.catalog, ids[key]))
    assert not audit.entries(web.box.catalog, action="export")

    await web.login("fg2")
    status, detail = await web.get(f"/overdrachten/{handover_id}")
    assert "/goedkeuren" in detail and "Uw wachtwoord" in detail
    wrong = await approve(web, handover_id, "not the password")
    assert wrong.status == 400 and "Verkeerd wachtwoord" in await wrong.text()
    assert handover.get(web.box, handover_id)["state"] == handover.PREPARED

    done = await approve(web, handover_id)
    page = await done.text()
    assert done.status == 200, page
    assert "Download het pakket" in page and 'id="passphrase"' not in page  # a key, no passphrase
    package = await web.client.get(download_link(page))
    assert package.status == 200
    assert f'filename="{handover_id}.zip.age"' in package.headers["Content-Disposition"]
    encrypted = await package.read()
    assert encrypted.startswith(b"age-encryption.org/v1\n")
    assert handover.get(web.box, handover_id)["state"] == handover.APPROVED

    # The receiver opens it with the real age CLI and checks every hash with sha256sum alone.
    (tmp_path / "pakket.zip.age").write_bytes(encrypted)
    subprocess.run(["age", "-d", "-i", str(identity_file), "-o", str(tmp_path / "pakket.zip"),
                    str(tmp_path / "pakket.zip.age")], check=True, capture_output=True)
    unpacked = tmp_path / "uitgepakt"
    with zipfile.ZipFile(tmp_path / "pakket.zip") as zf:
        zf.extractall(unpacked)
        names = zf.namelist()
    sums = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=unpacked, capture_output=True, text=True)
    assert sums.returncode == 0, sums.stdout + sums.stderr
    assert sums.stdout.count(": OK") >= 5
    clip_name = next(n for n in names if n.endswith("-fragment.mp4"))
    whole_name = next(n for n in names if n.endswith(".mp4") and n != clip_name)
    assert (unpacked / whole_name).read_bytes() == original("zuid")
    with av.open(str(unpacked / clip_name)) as media:  # the clip plays: 2.5-7 s from the keyframe at 2 s
        assert abs(media.duration / 1e6 - 4.5) <= 1.0
    text = pdf_text(unpacked / "overdrachtsformulier.pdf")
    assert CASE in text and "Politie Midden-Nederland" in text and "fg2" in text

    # The download is for this session only; the register, the recording's page and the audit log say it.
    await web.login("fg")
    assert (await web.client.get(download_link(page))).status == 404
    status, register = await web.get("/overdrachten")
    assert handover_id in register and "goedgekeurd" in register
    status, recording_page = await web.get(f"/opnames/{ids['noord']}")
    assert f"/overdrachten/{handover_id}" in recording_page
    actions = [e["action"] for e in audit.entries(web.box.catalog, recording_id=ids["noord"])]
    assert {"handover_prepare", "handover_approve", "export", "hold_add"} <= set(actions)
    assert [e["actor"] for e in audit.entries(web.box.catalog, action="handover_approve")] == ["fg2", "fg2"]
    csv_response = await web.client.get("/overdrachten.csv")
    rows = dutch_csv.records(await csv_response.read(), handover.REGISTER_COLUMNS)
    assert [(r["id"], r["state"], r["approved_by"], r["case_ref"]) for r in rows] == \
        [(handover_id, "approved", "fg2", CASE)]
    assert dutch_csv.LOCAL_TIME.match(rows[0]["prepared_at"]) and dutch_csv.LOCAL_TIME.match(rows[0]["approved_at"])


def pdf_text(path: Path) -> str:
    from pypdf import PdfReader

    return "\n".join(page.extract_text() for page in PdfReader(str(path)).pages)


async def test_same_person_approval_is_refused_and_audited(web, ids):
    await web.login("fg")
    handover_id = await prepare(web, [ids["noord"]])
    response = await approve(web, handover_id)
    body = await response.text()
    assert response.status == 403
    assert "zelf voorbereid" in body and "vier ogen" in body
    assert handover.get(web.box, handover_id)["state"] == handover.PREPARED
    denied = audit.entries(web.box.catalog, action="handover_denied")
    assert denied and denied[-1]["actor"] == "fg" and denied[-1]["details"]["step"] == "approve"
    # Refused before any password was asked: no second login on record.
    assert [e["action"] for e in audit.entries(web.box.catalog, actor="fg") if e["action"].startswith("login")] \
        == ["login"]
    assert not list((web.box.data_dir / "handover-downloads").glob("*"))


async def test_single_approval_setting_lets_the_preparer_approve_and_the_form_says_so(web, ids, tmp_path):
    web.box.settings.handover.single_approval = True
    await web.login("fg")
    handover_id = await prepare(web, [ids["zuid"]], protection="none", unencrypted_ok="yes")
    status, detail = await web.get(f"/overdrachten/{handover_id}")
    assert "/goedkeuren" in detail and "Enkelvoudige goedkeuring is toegestaan" in detail
    # Unencrypted: the approver must confirm it too.
    unconfirmed = await approve(web, handover_id)
    assert unconfirmed.status == 400 and "onversleuteld" in (await unconfirmed.text()).lower()
    done = await approve(web, handover_id, unencrypted_ok="yes")
    page = await done.text()
    assert done.status == 200, page
    package = await web.client.get(download_link(page))
    data = await package.read()
    assert package.headers["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        (tmp_path / "form.pdf").write_bytes(zf.read("overdrachtsformulier.pdf"))
    assert "Enkelvoudige goedkeuring" in pdf_text(tmp_path / "form.pdf")
    assert handover.get(web.box, handover_id)["single_approval"]
    assert not list((web.box.data_dir / "handover-downloads").glob("*"))  # never on disk


async def test_form_mistakes_are_shown_and_nothing_is_registered(web, ids):
    await web.login("fg")
    response = await web.post("/overdrachten/nieuw", prepare_form(
        [ids["noord"], "nosuchrecording"], basis_article="", case_ref="", protection="none",
        **{f"from_{ids['noord']}": "8", f"to_{ids['noord']}": "12"}), csrf_from="/overdrachten/nieuw")
    body = await response.text()
    assert response.status == 400
    for words in ("Onbekende opname: nosuchrecording", "artikel", "zaaknummer", "uitdrukkelijke bevestiging",
                  "buiten de opname"):
        assert words in body, words
    assert handover.list_handovers(web.box) == []


async def test_refusal_by_the_second_person(web, ids):
    await web.login("fg")
    handover_id = await prepare(web, [ids["noord"]], basis_kind="vrijwillig", basis_article="")
    await web.login("fg2")
    response = await web.post(f"/overdrachten/{handover_id}/weigeren", {"reason": "geen grondslag"},
                              csrf_from=f"/overdrachten/{handover_id}")
    assert response.status == 303
    h = handover.get(web.box, handover_id)
    assert (h["state"], h["refused_by"], h["refuse_reason"]) == (handover.REFUSED, "fg2", "geen grondslag")
    late = await approve(web, handover_id)
    assert late.status == 400 and "niet meer" in await late.text()


async def test_team_leader_prepares_for_the_own_team_only_and_cannot_approve(web, ids):
    await web.login("tl")
    status, form_page = await web.get(f"/overdrachten/nieuw?opname={ids['zuid']}")
    assert "Onbekende opname" in form_page  # another team's recording is not even named
    handover_id = await prepare(web, [ids["noord"]])
    response = await approve(web, handover_id)
    assert response.status == 403 and "Uw rol staat dit niet toe." in await response.text()
    # The team leader does not see handovers of other teams' recordings in the register.
    await web.login("fg")
    other = await prepare(web, [ids["zuid"]])
    await web.login("tl")
    status, register = await web.get("/overdrachten")
    assert handover_id in register and other not in register
    status, _page = await web.get(f"/overdrachten/{other}")
    assert status == 404


async def test_hostile_text_stays_text_and_the_auditor_reads_the_register(web, ids):
    hostile = '<script>alert("x")</script>'
    await web.login("fg")
    handover_id = await prepare(web, [ids["zuid"]], receiver_name=hostile, case_ref="PV-’26-Ø1")
    for path in (f"/overdrachten/{handover_id}", "/overdrachten", f"/opnames/{ids['zuid']}"):
        status, page = await web.get(path)
        assert status == 200 and hostile not in page and "&lt;script&gt;" in page, path
    await web.login("au")
    status, register = await web.get("/overdrachten")
    assert status == 200 and handover_id in register and "PV-’26-Ø1" in register
    assert "/overdrachten/nieuw" not in register  # the auditor reads, and prepares nothing
    status, _page = await web.get("/overdrachten/nieuw")
    assert status == 403
