"""Box and archive end to end through the real CLI: `kluis archive serve` in a subprocess, `kluis sync ...`
in subprocesses, HTTPS over real sockets."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

from nacl.public import PrivateKey
from nacl.signing import VerifyKey

from appliance import audit, retention
from appliance.box import Box
from appliance.container import parse_header
from sync import client
from sync.archive.store import Archive
from sync.protocol import verify_receipt

from sync_helpers import ARCHIVE_PASSWORD, T0, import_random, new_token


def _archive_rows(archive_dir) -> list[dict]:
    with Archive(archive_dir) as archive:
        return archive.list_recordings()


def test_held_recording_arrives_with_valid_receipt_and_unheld_never_leaves(enrolled, tmp_path, kluis,
                                                                            archive_password_file):
    data, archive = enrolled
    with Box(data) as box:
        held, held_bytes = import_random(box, tmp_path, 2_500_000)
        unheld, _ = import_random(box, tmp_path, 1_000_000, start=T0 + timedelta(hours=1))
        training, _ = import_random(box, tmp_path, 500_000, start=T0 + timedelta(hours=2))
        retention.add_hold(box, held, "police_report", "PV-2026-001", actor="admin")
        retention.add_hold(box, training, "training", "TR-1", actor="admin")  # not a central purpose
        held_sha = box.catalog.get_recording(held)["sha256"]
        unheld_sha = box.catalog.get_recording(unheld)["sha256"]

    result = kluis("sync", "run", "--data", data)
    assert f"sent {held}" in result.stdout.decode()

    rows = _archive_rows(archive.data_dir)
    assert [r["recording_id"] for r in rows] == [held]
    assert rows[0]["sha256"] == held_sha and rows[0]["case_refs"] == "PV-2026-001"
    blobs = sorted(p.name for p in (archive.data_dir / "blobs").glob("*/*"))
    assert blobs == [held_sha] and unheld_sha not in blobs
    assert hashlib.sha256((archive.data_dir / "blobs" / held_sha[:2] / held_sha).read_bytes()).hexdigest() == held_sha
    assert not list((archive.data_dir / "tmp").iterdir())

    with Box(data) as box, Archive(archive.data_dir) as arch:
        kept = box.catalog.db.execute("SELECT receipt FROM sync_receipts WHERE recording_id = ?", [held]).fetchone()
        receipt = json.loads(kept[0])
        fields = verify_receipt(receipt, arch.signing_public_key)
        assert fields["sha256"] == held_sha and fields["recording_id"] == held and fields["size"] > 2_500_000
        forged = {**receipt, "size": receipt["size"] + 1}
        try:
            verify_receipt(forged, arch.signing_public_key)
            raise AssertionError("a changed receipt verified")
        except Exception as exc:  # ProtocolError
            assert "signature" in str(exc)
        actions = [e["action"] for e in audit.entries(box.catalog, recording_id=held)]
        assert "sync_send" in actions and "sync_receipt" in actions
        assert box.catalog.db.execute("SELECT COUNT(*) FROM sync_outbox").fetchone()[0] == 1
        assert audit.verify(box.catalog, box.signing_key().verify_key).ok

    status = json.loads(kluis("sync", "status", "--data", data, "--json").stdout)
    assert status["enrolled"] and status["counts"]["sent"] == 1
    assert status["outbox"][0]["receipt_sha256"] == held_sha and status["last_pass"]["ok"]

    # The archive opens it with its own key, for a stated purpose, logged before the first byte.
    out = tmp_path / "export.bin"
    kluis("archive", "export", "--data", archive.data_dir, held, "--purpose", "police_report",
          "--case", "PV-2026-001", "--actor", "officier", "--out", out, "--password-file", archive_password_file)
    assert out.read_bytes() == held_bytes
    shown = json.loads(kluis("archive", "show", "--data", archive.data_dir, held, "--json").stdout)
    assert [e["action"] for e in shown["audit"]] == ["receive", "export"]
    assert shown["audit"][1]["purpose"] == "police_report" and shown["audit"][1]["actor"] == "officier"
    with Archive(archive.data_dir) as arch:  # the archive's own log: chained and signed like a box's
        report = audit.verify(arch, VerifyKey(arch.signing_public_key))
        assert report.ok and report.count >= 3 and report.anchored == report.count

    # A second pass sends nothing again and still succeeds; the release follows as metadata.
    with Box(data) as box:
        retention.release_hold(box, held, "case closed", actor="admin")
    kluis("sync", "run", "--data", data)
    assert len(list((archive.data_dir / "blobs").glob("*/*"))) == 1
    listed = json.loads(kluis("archive", "list", "--data", archive.data_dir, "--json", "--case", "PV-2026-001").stdout)
    assert len(listed) == 1
    shown = json.loads(kluis("archive", "show", "--data", archive.data_dir, held, "--json").stdout)
    assert shown["metadata"]["holds"][0]["released_at"] is not None
    assert "metadata_update" in [e["action"] for e in shown["audit"]]


def test_recording_from_before_enrollment_waits_for_rewrap(box_dir, archive_proc, tmp_path, kluis, password_file):
    data, _ = box_dir
    with Box(data) as box:
        early, early_bytes = import_random(box, tmp_path, 300_000)  # sealed to the box only
    kluis("sync", "enroll", "--data", data, archive_proc.url, new_token(archive_proc.data_dir))
    with Box(data) as box:
        retention.add_hold(box, early, "complaint", "K-7", actor="admin")
        archive_key = bytes.fromhex(json.loads(box.catalog.get_meta("extra_recipients"))[0])
        later, _ = import_random(box, tmp_path, 100_000, start=T0 + timedelta(hours=3))
        assert archive_key in parse_header(box.catalog.header_of(later)).recipients  # sealed to both now

    result = kluis("sync", "run", "--data", data, check=False)
    assert result.returncode == 1 and "re-wrapped" in result.stderr.decode()
    status = json.loads(kluis("sync", "status", "--data", data, "--json").stdout)
    assert status["counts"]["needs_rewrap"] == 1 and not _archive_rows(archive_proc.data_dir)

    kluis("sync", "rewrap", "--data", data, "--password-file", password_file)
    kluis("sync", "run", "--data", data)
    rows = _archive_rows(archive_proc.data_dir)
    assert [r["recording_id"] for r in rows] == [early]
    with Archive(archive_proc.data_dir) as arch:
        identity = arch.unlock(ARCHIVE_PASSWORD)
        assert b"".join(arch.decrypt(identity, rows[0]["sha256"])) == early_bytes
        # sealed to the archive only: the re-wrapped copy gives the box no second key to its footage
        found = arch.find(rows[0]["sha256"])
        raw = (archive_proc.data_dir / found["stored_path"]).read_bytes()[: found["header_size"]]
        assert parse_header(raw).recipients == [arch.public_key]
        assert isinstance(identity, PrivateKey)


def test_requisition_is_matched_held_and_delivered(enrolled, tmp_path, kluis):
    data, archive = enrolled
    with Box(data) as box:
        inside, _ = import_random(box, tmp_path, 200_000, camera="CAM002", start=T0)
        other_cam, _ = import_random(box, tmp_path, 200_000, camera="CAM003", start=T0)
        outside, _ = import_random(box, tmp_path, 200_000, camera="CAM002", start=T0 + timedelta(days=2))
    req = kluis("archive", "requisition", "add", "--data", archive.data_dir, "--legal-basis", "art. 126nd Sv",
                "--case", "OM-2026-17", "--camera", "CAM002", "--from", "2026-11-20T14:00:00Z",
                "--until", "2026-11-20T16:00:00Z").stdout.decode().strip()
    none_req = kluis("archive", "requisition", "add", "--data", archive.data_dir, "--legal-basis", "art. 126nd Sv",
                     "--case", "OM-2026-18", "--officer", "Nobody", "--from", "2026-11-01T00:00:00Z",
                     "--until", "2026-11-02T00:00:00Z").stdout.decode().strip()

    result = kluis("sync", "run", "--data", data)
    text = result.stdout.decode()
    assert f"requisition {req}: {inside}" in text and f"requisition {none_req}: nothing matched" in text
    assert [r["recording_id"] for r in _archive_rows(archive.data_dir)] == [inside]
    with Box(data) as box:
        holds = retention.active_holds(box.catalog, inside)
        assert [(h["purpose"], h["case_ref"]) for h in holds] == [("requisition", "OM-2026-17")]
        assert not retention.active_holds(box.catalog, other_cam) and not retention.active_holds(box.catalog, outside)
        assert "hold_add" in [e["action"] for e in audit.entries(box.catalog, recording_id=inside)]
        assert any(e["action"] == "requisition_report" and e["case_ref"] == "OM-2026-18"
                   for e in audit.entries(box.catalog))
    reqs = {str(r["id"]): r for r in json.loads(kluis("archive", "requisition", "list", "--data", archive.data_dir,
                                                      "--json").stdout)}
    assert reqs[req]["reports"][0]["matched"] == [inside]
    assert reqs[none_req]["reports"][0]["matched"] == []
    # Answered once: the next pass does not fetch them again.
    assert "requisition" not in kluis("sync", "run", "--data", data).stdout.decode()


def test_sync_run_fails_when_archive_is_down(enrolled, tmp_path, kluis):
    data, archive = enrolled
    with Box(data) as box:
        rid, _ = import_random(box, tmp_path, 100_000)
        retention.add_hold(box, rid, "police_report", "PV-9", actor="admin")
    archive.stop()
    (data / "kluis.toml").write_text((data / "kluis.toml").read_text().replace(
        "# pass_retry_s = 120", "pass_retry_s = 1"))
    result = kluis("sync", "run", "--data", data, check=False)
    assert result.returncode == 1
    assert "unreachable" in result.stderr.decode()
    status = json.loads(kluis("sync", "status", "--data", data, "--json").stdout)
    assert status["counts"]["sent"] == 0 and not status["last_pass"]["ok"]


def test_hold_released_before_sending_takes_it_out_of_the_outbox(enrolled, tmp_path, kluis):
    data, archive = enrolled
    with Box(data) as box:
        early, _ = import_random(box, tmp_path, 100_000)
    # Queued (as a pass would), then the hold is released before the pass that would send it.
    with Box(data) as box:
        retention.add_hold(box, early, "police_report", "PV-3", actor="admin")
        assert client.fill_outbox(box) == 1
        retention.release_hold(box, early, "no report after all", actor="admin")
    kluis("sync", "run", "--data", data)
    assert not _archive_rows(archive.data_dir)
    with Box(data) as box:
        assert box.catalog.db.execute("SELECT COUNT(*) FROM sync_outbox").fetchone()[0] == 0
        assert "sync_withdrawn" in [e["action"] for e in audit.entries(box.catalog, recording_id=early)]


def test_archive_cli_init_token_serve_and_human_output(box_dir, tmp_path, kluis, archive_password_file):
    from sync_helpers import ArchiveProcess, free_port

    archive_dir = tmp_path / "cli-archive"
    out = kluis("archive", "init", "--data", archive_dir, "--password-file", archive_password_file,
                "--kdf-profile", "interactive", "--name", "Archief Noord").stdout.decode()
    assert "Recovery key" in out and "KLUIS-" in out
    again = kluis("archive", "init", "--data", archive_dir, "--password-file", archive_password_file, check=False)
    assert again.returncode == 1 and "already an archive" in again.stderr.decode()
    token = kluis("archive", "token", "--data", archive_dir).stdout.decode().strip()
    proc = ArchiveProcess(archive_dir, free_port(), tmp_path / "cli-archive.log")
    proc.start()
    try:
        data, _ = box_dir
        unenrolled = kluis("sync", "run", "--data", data, check=False)
        assert unenrolled.returncode == 1 and "not enrolled" in unenrolled.stderr.decode()
        bad = kluis("sync", "enroll", "--data", data, proc.url, "not-a-token", check=False)
        assert bad.returncode == 1 and "not an enrollment token" in bad.stderr.decode()
        enrolled = kluis("sync", "enroll", "--data", data, proc.url, token).stdout.decode()
        assert "Archief Noord" in enrolled
        reused = kluis("sync", "enroll", "--data", data, proc.url, token)  # same box again: allowed
        assert reused.returncode == 0
        with Box(data) as box:
            rid, _ = import_random(box, tmp_path, 50_000)
            retention.add_hold(box, rid, "requisition", "OM-9", actor="admin")
        kluis("sync", "run", "--data", data)
        status = kluis("sync", "status", "--data", data).stdout.decode()
        assert "Archief Noord" in status and rid in status and "sent" in status and "100%" in status
        listed = kluis("archive", "list", "--data", archive_dir).stdout.decode()
        assert rid in listed and "OM-9" in listed
        assert kluis("archive", "list", "--data", archive_dir, "--case", "OTHER", "--json").stdout.strip() == b"[]"
        assert rid in kluis("archive", "list", "--data", archive_dir, "--from", "2026-11-20T14:00:00Z",
                            "--until", "2026-11-20T15:00:00Z").stdout.decode()
    finally:
        proc.stop()
