"""kluis backup / backup verify / restore end to end through the real CLI, onto a fresh data directory:
the restored box verifies, its audit chain verifies with an entry for the restore, and its held footage
decrypts to the original bytes."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from appliance import audit, backup, backup_journal, retention
from appliance.box import Box
from backup_helpers import store
from tests.conftest import add_role_users


def make_box(data, tmp_path):
    add_role_users(data, "fg")
    now = datetime.now(timezone.utc)
    with Box(data) as box:
        held, plain = store(box, tmp_path, now - timedelta(hours=1), size=70_000)
        free, _ = store(box, tmp_path, now - timedelta(hours=1))
        retention.add_hold(box, held, "complaint", "K-7", "fg")
    return held, plain, free


def test_backup_verify_and_restore_onto_a_fresh_box(box_dir, password_file, kluis, tmp_path):
    data, recovery = box_dir
    held, plain, free = make_box(data, tmp_path)
    usb = tmp_path / "usb"
    out = kluis("backup", "--data", data, "--to", usb).stdout.decode()
    assert "2 recording(s) (1 held), 2 copied now" in out and "signed by" in out
    # the recordings started an hour ago (make_box): that day, also just after midnight
    assert f"restores 2 recording(s), 1 day(s) of footage ({datetime.now(timezone.utc) - timedelta(hours=1):%Y-%m-%d}" in out
    signer = out.split("signed by ")[1].split()[0]

    listed = kluis("backup", "verify", "--from", usb, "--signer", signer).stdout.decode()
    assert listed.splitlines()[0] == "journal: 1 entry, ok" and listed.rstrip().endswith(": ok")
    assert kluis("backup", "verify", "--from", usb, "--data", data).returncode == 0
    listed = kluis("backup", "list", "--from", usb).stdout.decode().splitlines()
    assert listed[0].startswith("a restore now brings back 2 recording(s), 1 day(s) of footage")
    assert "2 recording(s)  1 day(s)" in listed[1] and listed[1].endswith("ok")

    new = tmp_path / "newbox"
    out = kluis("restore", "--data", new, "--from", usb, "--password-file", password_file,
                "--signer", signer).stdout.decode()
    assert "2 recording(s)" in out
    assert kluis("verify", "--data", new).stdout.decode().startswith("ok: 2 recording(s)")
    assert kluis("verify", "--data", new, "--password-file", password_file, "--deep").returncode == 0
    # The privacy officer's own key slot came along in the catalog: footage opens as before.
    clip = kluis("cat", "--data", new, held, "--purpose", "complaint", "--case", "K-7",
                 "--user", "fg", "--password-file", password_file).stdout
    assert clip == plain
    with Box(new) as box:
        assert audit.verify(box.catalog, box.signing_key().verify_key).ok
        restore_entry, = audit.entries(box.catalog, action="restore")
        assert restore_entry["actor"] == "admin" and restore_entry["details"]["recordings"] == 2
        assert box.settings == Box(data).settings
        assert (new / "keys" / "signing.key").read_bytes() == (data / "keys" / "signing.key").read_bytes()
        assert (new / "tls" / "key.pem").stat().st_mode & 0o077 == 0

    # The recovery key opens it too; a wrong password opens nothing and leaves no directory behind.
    rk = tmp_path / "rk.txt"
    rk.write_text(recovery + "\n")
    kluis("restore", "--data", tmp_path / "viarecovery", "--from", usb, "--recovery-key-file", rk)
    bad = tmp_path / "bad.txt"
    bad.write_text("wrong password\n")
    result = kluis("restore", "--data", tmp_path / "wrong", "--from", usb, "--password-file", bad, check=False)
    assert result.returncode == 1 and "wrong password" in result.stderr.decode()
    assert not (tmp_path / "wrong").exists() or not any((tmp_path / "wrong").iterdir())


def test_verify_names_damage_and_restore_falls_back_to_the_newest_good_backup(box_dir, password_file, kluis, tmp_path):
    data, _ = box_dir
    held, plain, free = make_box(data, tmp_path)
    usb = tmp_path / "usb"
    kluis("backup", "--data", data, "--to", usb)
    kluis("backup", "--data", data, "--to", usb)
    older, newer = [p.name for p in backup.list_backups(usb)]
    part = usb / newer / backup.CATALOG_FILE
    raw = bytearray(part.read_bytes())
    raw[100] ^= 1
    part.write_bytes(bytes(raw))
    result = kluis("backup", "verify", "--from", usb, check=False)
    assert result.returncode == 1
    out = result.stdout.decode()
    assert f"{older}: ok" in out and f"{newer}: catalog.kluis: damaged (hash mismatch)" in out

    out = kluis("restore", "--data", tmp_path / "n", "--from", usb, "--password-file", password_file).stdout.decode()
    assert f"skipped {newer}: catalog.kluis: damaged" in out and f"restored {older}" in out

    # A stored recording damaged: every backup that lists it says so by name, and no restore is attempted.
    stored = usb / "footage" / held_sha(data, held)[:2] / held_sha(data, held)
    raw = bytearray(stored.read_bytes())
    raw[-5] ^= 1
    stored.write_bytes(bytes(raw))
    out = kluis("backup", "verify", "--from", usb, check=False).stdout.decode()
    assert f"{older}: footage/{stored.parent.name}/{stored.name}: damaged (hash mismatch)" in out

    # An edited manifest (a later expiry) no longer carries a valid signature: refused by name too.
    manifest = json.loads((usb / older / "manifest.json").read_text())
    manifest["expires_at"] = "2099-01-01T00:00:00.000Z"
    (usb / older / "manifest.json").write_text(json.dumps(manifest))
    result = kluis("restore", "--data", tmp_path / "m", "--from", usb, "--backup", older,
                   "--password-file", password_file, check=False)
    assert result.returncode == 1 and "signature does not match" in result.stderr.decode()
    assert not (tmp_path / "m").exists()


def held_sha(data, recording_id: str) -> str:
    with Box(data) as box:
        return box.catalog.get_recording(recording_id)["sha256"]


def test_an_edited_journal_is_refused(box_dir, password_file, kluis, tmp_path):
    data, _ = box_dir
    make_box(data, tmp_path)
    usb = tmp_path / "usb"
    kluis("backup", "--data", data, "--to", usb)
    kluis("backup", "--data", data, "--to", usb)
    lines = (usb / backup_journal.JOURNAL).read_text().splitlines()
    (usb / backup_journal.JOURNAL).write_text(lines[0] + "\n")  # the second entry cut off
    result = kluis("backup", "verify", "--from", usb, check=False)
    assert result.returncode == 1 and "journal cut or replaced" in result.stdout.decode()
    entry = json.loads(lines[0])
    entry["deletions"] = [{"recording_id": "x"}]
    (usb / backup_journal.JOURNAL).write_text(json.dumps(entry) + "\n" + lines[1] + "\n")
    result = kluis("restore", "--data", tmp_path / "n", "--from", usb, "--password-file", password_file, check=False)
    assert result.returncode == 1 and "journal" in result.stderr.decode() and "signature does not match" in result.stderr.decode()
