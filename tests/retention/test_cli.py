"""The retention, hold and audit commands through the real `kluis` CLI (real clock: old recordings)."""

from __future__ import annotations

import json

from appliance import audit, retention
from tests import dutch_csv


def test_hold_retention_and_audit_commands(box_dir, kluis, password_file, tmp_path, privacy_officer):
    data = box_dir[0]
    fg = privacy_officer  # holds, the deletion report, the audit log and viewing are the privacy officer's
    clips = []
    for n in range(2):
        clip = tmp_path / f"clip{n}.bin"
        clip.write_bytes(bytes([n]) * 20_000 + bytes(range(256)))
        clips.append(clip)
    ids = [kluis("import", "--data", data, clip, "--camera", "CAM9", "--officer", "A. de Vries", "--user", "admin",
                 "--password-file", password_file,
                 "--start", "2020-05-01T10:00:00", "--end", "2020-05-01T10:03:00").stdout.decode().strip()
           for clip in clips]
    held, free = ids

    hold_id = kluis("hold", "add", "--data", data, held, "--purpose", "klacht", "--case", "KL-2020-4", *fg).stdout.strip()
    assert hold_id == b"1"
    bad = kluis("hold", "add", "--data", data, held, "--purpose", "nieuwsgierigheid", "--case", "X", *fg,
                check=False)
    assert bad.returncode == 1 and b"unknown purpose" in bad.stderr and b"Traceback" not in bad.stderr
    [hold] = json.loads(kluis("hold", "list", "--data", data, "--json", *fg).stdout)
    assert (hold["recording_id"], hold["purpose"], hold["case_ref"], hold["placed_by"]) == \
        (held, "complaint", "KL-2020-4", "fg")

    assert kluis("retention", "run", "--data", data, "--dry-run").stdout.split() == [free.encode()]
    assert len(json.loads(kluis("list", "--data", data, "--json", *fg).stdout)) == 2
    out = kluis("retention", "run", "--data", data).stdout
    assert b"deleted 1 recording" in out
    assert [r["id"] for r in json.loads(kluis("list", "--data", data, "--json", *fg).stdout)] == [held]
    gone = kluis("cat", "--data", data, free, "--purpose", "complaint", *fg, check=False)
    assert gone.returncode == 1 and b"no recording" in gone.stderr

    status = json.loads(kluis("retention", "status", "--data", data, "--json").stdout)
    assert status["held"] == 1 and status["due"] == 0 and status["deleted_total"] == 1

    no_reason = kluis("hold", "release", "--data", data, held, check=False)
    assert no_reason.returncode == 2 and b"--reason" in no_reason.stderr
    out = kluis("hold", "release", "--data", data, held, "--reason", "klacht ongegrond", *fg).stdout
    assert b"released hold 1; deleted from" in out
    assert json.loads(kluis("hold", "list", "--data", data, "--json", *fg).stdout) == []
    again = kluis("hold", "release", "--data", data, held, "--reason", "x", *fg, check=False)
    assert again.returncode == 1 and b"no active hold" in again.stderr
    # Grace: released today, so it stays for now.
    assert b"deleted 0 recording" in kluis("retention", "run", "--data", data).stdout

    report = dutch_csv.records(kluis("retention", "report", "--data", data, "--csv", *fg).stdout,
                               retention.REPORT_COLUMNS)
    assert [r["recording_id"] for r in report] == [free] and report[0]["term_days"] == "28"
    assert "A. de Vries" not in json.dumps(report)
    assert json.loads(kluis("retention", "report", "--data", data, "--json", "--to", "2020-01-01", *fg).stdout) == []

    no_purpose = kluis("cat", "--data", data, held, *fg, check=False)
    assert no_purpose.returncode == 2 and b"--purpose" in no_purpose.stderr
    plain = kluis("cat", "--data", data, held, "--purpose", "complaint", "--case", "KL-2020-4", *fg).stdout
    assert plain == clips[0].read_bytes()

    entries = json.loads(kluis("audit", "show", "--data", data, "--recording", held, "--json", *fg).stdout)
    assert [e["action"] for e in entries] == ["ingest", "hold_add", "hold_release", "view"]
    assert entries[0]["actor"] == "admin"
    assert entries[3]["purpose"] == "complaint" and entries[3]["case_ref"] == "KL-2020-4"
    assert entries[2]["details"]["reason"] == "klacht ongegrond"
    deletes = json.loads(kluis("audit", "show", "--data", data, "--action", "delete", "--json", *fg).stdout)
    assert [e["recording_id"] for e in deletes] == [free] and deletes[0]["actor"] == "system"

    exported = dutch_csv.records(kluis("audit", "export", "--data", data, "--csv", *fg).stdout, audit.COLUMNS)
    actions = [r["action"] for r in exported if r["action"] not in ("user_add", "login")]  # fg's enrolment, logins
    assert actions[:2] == ["ingest", "ingest"] and "hold_add" in actions
    assert kluis("audit", "show", "--data", data, "--action", "audit_export", "--json", *fg).stdout.count(b"audit_export") == 1
    assert b"ok:" in kluis("audit", "verify", "--data", data, *fg).stdout

    # The purpose is on record before any byte is read: even a read that then fails is logged.
    [row] = json.loads(kluis("list", "--data", data, "--json", *fg).stdout)
    (data / row["stored_path"]).rename(tmp_path / "moved-away")
    failed = kluis("cat", "--data", data, held, "--purpose", "objection", "--case", "KL-2020-4", "--range", "0-9",
                   *fg, check=False)
    assert failed.returncode != 0 and failed.stdout == b""
    [read] = json.loads(kluis("audit", "show", "--data", data, "--action", "range_read", "--json", *fg).stdout)
    assert read["purpose"] == "objection" and read["details"] == {"start": 0, "end": 10, "recovery_key": False}
