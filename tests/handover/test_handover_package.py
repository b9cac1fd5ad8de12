"""The handover package end to end: made by the box, opened with the real age CLI, checked with the real
sha256sum, ffprobe and pypdf, and `kluis export verify` catching each kind of tampering."""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import av
import pytest
from nacl.signing import SigningKey, VerifyKey

from appliance import audit, handover
from tests.conftest import run_kluis
from tests.conftest import PASSWORD
from tests.handover.conftest import BASIS, CASE, RECEIVER, age_with_passphrase, needs_age
from tests import dutch_csv

pytestmark = pytest.mark.skipif(shutil.which("sha256sum") is None, reason="sha256sum (coreutils) missing")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def unpack(zip_bytes_or_path, into: Path) -> Path:
    source = io.BytesIO(zip_bytes_or_path) if isinstance(zip_bytes_or_path, bytes) else zip_bytes_or_path
    with zipfile.ZipFile(source) as zf:
        zf.extractall(into)
    return into


def sha256sum_check(folder: Path) -> list[str]:
    """The real sha256sum -c in the unpacked folder; returns the files it said OK to."""
    result = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=folder, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    return [line[:-4] for line in result.stdout.splitlines() if line.endswith(": OK")]


def pdf_text(path: Path) -> str:
    from pypdf import PdfReader

    return "".join("".join(page.extract_text() or "" for page in PdfReader(str(path)).pages).split())


def all_bytes_under(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in folder.rglob("*") if p.is_file())


@needs_age
def test_age_package_opens_with_age_and_every_hash_checks_out(hbox, data, ids, original, age_key, tmp_path):
    identity_file, public = age_key
    hid = handover.prepare(hbox, "fg", [ids["noord"], ids["zuid"]], RECEIVER, BASIS, CASE, "requisition",
                           "age-recipient", age_recipient=public)
    out = tmp_path / "overdracht.age"
    result = handover.approve(hbox, hid, "fg2", hbox.unlock("fg2", PASSWORD), out)
    blob = out.read_bytes()
    assert blob.startswith(b"age-encryption.org/v1\n")
    assert result["package_sha256"] == sha(blob) and result["package_size"] == len(blob)
    assert result["passphrase"] is None

    subprocess.run(["age", "-d", "-i", str(identity_file), "-o", str(tmp_path / "p.zip"), str(out)], check=True)
    folder = unpack(tmp_path / "p.zip", tmp_path / "unpacked")
    manifest_bytes = (folder / "manifest.json").read_bytes()
    manifest = json.loads(manifest_bytes)
    checked = sha256sum_check(folder)
    assert sorted(checked) == sorted(p.name for p in folder.iterdir() if p.name != "SHA256SUMS")
    assert {"manifest.json", "manifest.sig", "overdrachtsformulier.pdf", "logboek-uittreksel.csv"} <= set(checked)

    # The manifest: who, what, to whom; per file the times, pre/post-record and the hash chain.
    assert manifest["format"] == "kluis-handover/1" and manifest["handover_id"] == hid
    assert manifest["box"]["signing_key"] == hbox.catalog.get_meta("signing_public_key")
    assert (manifest["prepared_by"], manifest["approved_by"], manifest["single_approval"]) == ("fg", "fg2", False)
    assert (manifest["receiver"], manifest["basis"], manifest["case_ref"], manifest["purpose"]) == \
        (RECEIVER, BASIS, CASE, "requisition")
    assert manifest["protection"] == "age-recipient"
    # docs/handover-package.md: the signature is over the kind's label, a newline and manifest.json.
    VerifyKey(bytes.fromhex(manifest["box"]["signing_key"])).verify(b"kluis/v1/handover-manifest\n" + manifest_bytes,
                                                                    (folder / "manifest.sig").read_bytes())
    for key, entry in zip(("noord", "zuid"), manifest["files"]):
        recording = hbox.catalog.get_recording(ids[key])
        exported = (folder / entry["name"]).read_bytes()
        assert exported == original(key)  # a whole recording is the camera's file, byte for byte
        assert entry["recording_id"] == ids[key] and entry["camera"] == recording["camera_serial"]
        assert entry["officer"] == recording["officer"]
        assert (entry["corrected_start"], entry["corrected_end"]) == (recording["start_time"], recording["end_time"])
        assert entry["camera_start"] == recording["camera_start_time"]
        assert (entry["pre_record_s"], entry["post_record_s"]) == (30, 15)
        assert entry["clip"] is None and entry["size"] == len(exported) and entry["sha256"] == sha(exported)
        assert entry["chain"]["ciphertext_sha256"] == recording["sha256"]
        assert entry["chain"]["plaintext_sha256"] == sha(exported)

    # The audit excerpt holds these recordings' history up to the approval.
    rows = dutch_csv.records((folder / "logboek-uittreksel.csv").read_bytes(), audit.COLUMNS)
    assert {r["recording_id"] for r in rows} == {ids["noord"], ids["zuid"]}
    actions = [r["action"] for r in rows if r["recording_id"] == ids["zuid"]]
    assert actions[0] == "ingest" and actions[-3:] == ["handover_prepare", "hold_add", "handover_approve"]

    # The transfer form: the case, both parties, every hash.
    text = pdf_text(folder / "overdrachtsformulier.pdf")
    for needle in (CASE, RECEIVER, hbox.settings.box.name, "fg2", hid):
        assert "".join(needle.split()) in text, needle
    for entry in manifest["files"]:
        for digest in (entry["sha256"], entry["chain"]["ciphertext_sha256"], entry["chain"]["plaintext_sha256"]):
            assert digest in text, digest
    assert manifest["audit_excerpt"]["sha256"] in text
    assert manifest["box"]["signing_key"] in text  # the receiver can pin the key from the paper form

    # The box's disk holds no plaintext: not the footage, not the package's ZIP.
    on_disk = all_bytes_under(data)
    assert original("noord")[-4096:] not in on_disk and original("zuid")[-4096:] not in on_disk
    assert b"kluis-handover/1" not in on_disk
    assert not list(tmp_path.glob("*.part"))


@needs_age
def test_passphrase_package_through_the_cli(data, ids, original, pw, tmp_path):
    prepared = run_kluis("export", "prepare", "--data", data, ids["noord"], "--receiver", RECEIVER, "--basis",
                         "vrijwillige verstrekking", "--case", CASE, "--purpose", "aangifte", "--passphrase",
                         "--user", "tl", "--password-file", pw)
    hid = prepared.stdout.decode().strip()
    assert re.fullmatch(r"OV-\d{4}-\d{4}", hid)
    out = tmp_path / "pkg.age"
    approved = run_kluis("export", "approve", "--data", data, hid, "--out", out, "--user", "fg",
                         "--password-file", pw).stdout.decode()
    lines = approved.splitlines()
    passphrase = lines[lines.index(next(l for l in lines if l.startswith("Passphrase"))) + 1].strip()
    assert len(passphrase) >= 40 and approved.count(passphrase) == 1
    # shown once, stored nowhere: not in the catalog, its WAL, or anywhere else in the data directory
    assert passphrase.encode() not in all_bytes_under(data)

    status, said = age_with_passphrase(["-d", "-o", str(tmp_path / "p.zip"), str(out)], passphrase)
    assert status == 0, said
    folder = unpack(tmp_path / "p.zip", tmp_path / "unpacked")
    sha256sum_check(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["protection"] == "passphrase" and manifest["prepared_by"] == "tl"
    assert (folder / manifest["files"][0]["name"]).read_bytes() == original("noord")

    (tmp_path / "pp.txt").write_text(passphrase + "\n")
    checked = run_kluis("export", "verify", out, "--passphrase-file", tmp_path / "pp.txt")
    assert "the package verifies" in checked.stdout.decode()


def test_a_cut_clip_plays_and_lasts_the_window_within_one_gop(hbox, ids, tmp_path):
    start_s, end_s = 2.3, 5.6
    hid = handover.prepare(hbox, "fg", [ids["noord"]], RECEIVER, BASIS, CASE, "requisition", "none",
                           clip={ids["noord"]: (start_s, end_s)})
    handover.approve(hbox, hid, "fg2", hbox.unlock("fg2", PASSWORD), tmp_path / "p.zip", unencrypted=True)
    folder = unpack(tmp_path / "p.zip", tmp_path / "unpacked")
    sha256sum_check(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    [entry] = manifest["files"]
    assert entry["name"].endswith("-fragment.mp4")
    gop = 1.0  # tests/handover/conftest.py: a keyframe every second
    assert start_s - gop <= entry["clip"]["from_s"] <= start_s
    assert (entry["clip"]["requested_from_s"], entry["clip"]["requested_to_s"]) == (start_s, end_s)
    assert entry["chain"]["plaintext_sha256"] != entry["sha256"]  # a clip is not the whole file
    clip_path = folder / entry["name"]
    if shutil.which("ffprobe"):
        probed = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of",
                                 "default=nw=1:nk=1", str(clip_path)], capture_output=True, text=True, check=True)
        duration = float(probed.stdout.strip())
    else:
        with av.open(str(clip_path)) as media:
            duration = media.duration / 1_000_000
    assert abs(duration - (end_s - start_s)) <= gop, duration
    with av.open(str(clip_path)) as media:  # it plays: every frame decodes
        frames = sum(1 for _ in media.decode(video=0))
    assert abs(frames / 10 - duration) <= 0.2


def test_unencrypted_needs_both_people_to_choose_it(hbox, ids, tmp_path):
    hid = handover.prepare(hbox, "fg", [ids["zuid"]], RECEIVER, BASIS, CASE, "requisition", "none")
    with pytest.raises(handover.Denied, match="unencrypted"):
        handover.approve(hbox, hid, "fg2", hbox.unlock("fg2", PASSWORD), tmp_path / "p.zip")
    assert not (tmp_path / "p.zip").exists()
    handover.approve(hbox, hid, "fg2", hbox.unlock("fg2", PASSWORD), tmp_path / "p.zip", unencrypted=True)
    assert (tmp_path / "p.zip").read_bytes()[:4] == b"PK\x03\x04"
    prepared = audit.entries(hbox.catalog, action="handover_prepare")[-1]
    exported = audit.entries(hbox.catalog, action="export")[-1]
    assert prepared["details"]["protection"] == "none" and exported["details"]["protection"] == "none"


@pytest.fixture
def package_dir(hbox, ids, tmp_path) -> Path:
    hid = handover.prepare(hbox, "fg", [ids["noord"], ids["zuid"]], RECEIVER, BASIS, CASE, "requisition", "none")
    handover.approve(hbox, hid, "fg2", hbox.unlock("fg2", PASSWORD), tmp_path / "p.zip", unencrypted=True)
    return unpack(tmp_path / "p.zip", tmp_path / "good")


def verify_cli(path: Path, *extra) -> tuple[int, str]:
    result = run_kluis("export", "verify", path, *extra, check=False)
    return result.returncode, result.stdout.decode() + result.stderr.decode()


def copy_of(folder: Path, name: str) -> Path:
    return Path(shutil.copytree(folder, folder.parent / name))


def test_verify_passes_a_good_package_and_pins_the_box_key(package_dir, hbox, data, tmp_path):
    key = run_kluis("export", "box-key", "--data", data).stdout.decode().strip()
    assert key == hbox.catalog.get_meta("signing_public_key")
    code, said = verify_cli(package_dir, "--box-key", key)
    assert code == 0 and "the key you gave (--box-key)" in said and "BAD" not in said, said
    code, said = verify_cli(tmp_path / "p.zip")  # the ZIP itself works too
    assert code == 0 and "not pinned" in said, said


def test_verify_catches_a_tampered_manifest(package_dir):
    folder = copy_of(package_dir, "manifest")
    path = folder / "manifest.json"
    path.write_text(path.read_text().replace(CASE, "PV-2026-999"))
    code, said = verify_cli(folder)
    assert code != 0
    assert "BAD: manifest.sig: the signature does not match manifest.json" in said
    assert "BAD: SHA256SUMS: manifest.json has SHA-256" in said


def test_verify_catches_a_changed_mp4(package_dir):
    folder = copy_of(package_dir, "mp4")
    manifest = json.loads((folder / "manifest.json").read_text())
    name = manifest["files"][1]["name"]
    data = bytearray((folder / name).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / name).write_bytes(bytes(data))
    code, said = verify_cli(folder)
    assert code != 0
    assert f"BAD: {name}: SHA-256 is {sha(bytes(data))}, the manifest says {manifest['files'][1]['sha256']}" in said
    assert f"ok:  {manifest['files'][0]['name']}" in said  # the other file is fine, and said so
    assert "the package does NOT verify" in said


def test_verify_catches_a_wrong_signature(package_dir, hbox):
    folder = copy_of(package_dir, "sig")
    other = SigningKey.generate()
    (folder / "manifest.sig").write_bytes(other.sign((folder / "manifest.json").read_bytes()).signature)
    code, said = verify_cli(folder)
    assert code != 0 and "BAD: manifest.sig: the signature does not match" in said

    # Re-signed by another key that the manifest now names: consistent in itself, so only the pinned box
    # key catches it (and verify says the key was not pinned when none is given).
    forged = copy_of(package_dir, "forged")
    manifest = json.loads((forged / "manifest.json").read_text())
    manifest["box"]["signing_key"] = bytes(other.verify_key).hex()
    body = json.dumps(manifest, indent=2, ensure_ascii=False).encode() + b"\n"
    (forged / "manifest.json").write_bytes(body)
    (forged / "manifest.sig").write_bytes(other.sign(body).signature)
    sums = (forged / "SHA256SUMS").read_text()
    sums = re.sub(r"^[0-9a-f]{64}(  manifest\.(json|sig))$",
                  lambda m: sha((forged / m.group(1).strip()).read_bytes()) + m.group(1), sums, flags=re.M)
    (forged / "SHA256SUMS").write_text(sums)
    code, said = verify_cli(forged)
    assert code == 0 and "not pinned" in said, said
    code, said = verify_cli(forged, "--box-key", hbox.catalog.get_meta("signing_public_key"))
    assert code != 0 and "not the box key you gave" in said


def test_verify_catches_added_and_missing_files(package_dir):
    folder = copy_of(package_dir, "extra")
    (folder / "extra.mp4").write_bytes(b"not from the box")
    form = folder / "overdrachtsformulier.pdf"
    form.unlink()
    code, said = verify_cli(folder)
    assert code != 0
    assert "BAD: extra.mp4: in the package but not in SHA256SUMS" in said
    assert "BAD: overdrachtsformulier.pdf: named in the manifest, missing from the package" in said


@needs_age
def test_verify_catches_a_damaged_encrypted_package(hbox, ids, age_key, tmp_path):
    identity_file, public = age_key
    hid = handover.prepare(hbox, "fg", [ids["zuid"]], RECEIVER, BASIS, CASE, "requisition", "age-recipient",
                           age_recipient=public)
    out = tmp_path / "p.age"
    handover.approve(hbox, hid, "fg2", hbox.unlock("fg2", PASSWORD), out)
    code, said = verify_cli(out, "--identity", identity_file)
    assert code == 0, said
    blob = bytearray(out.read_bytes())
    blob[len(blob) // 2] ^= 1
    out.write_bytes(bytes(blob))
    code, said = verify_cli(out, "--identity", identity_file)
    assert code != 0 and "cannot decrypt the package: it is damaged" in said and "Traceback" not in said
    code, said = verify_cli(out)
    assert code != 0 and "--identity" in said
