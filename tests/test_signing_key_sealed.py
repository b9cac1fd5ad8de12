"""The audit signing key sealed to the TPM2 (the appliance: image/rootfs/usr/lib/kluis/seal-signing-key):
kluis.service and kluis-backup.service get it from systemd ($CREDENTIALS_DIRECTORY/kluis-signing-key,
LoadCredentialEncrypted=), the plaintext file is gone from the data directory, and a process that read the
file before it was shredded keeps signing. Backups still carry the key (sealed to the box's key, as ever),
so a restore elsewhere has it; the TPM2-bound copy stays out of them. The TPM2 itself is the boot test's
(image/test, signing-key)."""

from __future__ import annotations

from pathlib import Path

import pytest
from nacl.signing import SigningKey

from appliance import audit, keys
from appliance.box import SIGNING_KEY, Box
from appliance.errors import KluisError


def seal(data: Path, creds: Path) -> bytes:
    """What seal-signing-key leaves behind, with systemd's part done by hand: the seed in a credentials
    directory as systemd hands it to the service, a sealed copy (opaque here) in keys/, the file gone."""
    seed = (data / SIGNING_KEY).read_bytes()
    creds.mkdir(exist_ok=True)
    (creds / keys.SIGNING_CREDENTIAL).write_bytes(seed)
    keys.sealed_path(data / SIGNING_KEY).write_bytes(b"sealed to a TPM2 this test does not have")
    (data / SIGNING_KEY).unlink()
    return seed


def test_the_service_signs_with_the_key_systemd_hands_it(box_dir, tmp_path, monkeypatch):
    data, _ = box_dir
    public = Box(data).catalog.get_meta("signing_public_key")
    seed = seal(data, tmp_path / "creds")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path / "creds"))
    with Box(data) as box:
        assert bytes(box.signing_key()) == seed and bytes(box.signing_key().verify_key).hex() == public
        assert box.signing_key_sealed()
        audit.checkpoint(box.catalog, box.signing_key(), force=True)
        assert audit.verify(box.catalog, box.signing_key().verify_key).ok


def test_without_a_sealed_key_the_placeholder_means_the_file(box_dir, tmp_path, monkeypatch):
    # kluis.service's SetCredential= placeholder stands in when there is no sealed key (no TPM2)
    data, _ = box_dir
    (tmp_path / "creds").mkdir()
    (tmp_path / "creds" / keys.SIGNING_CREDENTIAL).write_bytes(keys.UNSEALED)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path / "creds"))
    with Box(data) as box:
        assert bytes(box.signing_key()) == (data / SIGNING_KEY).read_bytes()
        assert not box.signing_key_sealed()


def test_a_damaged_credential_is_named(box_dir, tmp_path, monkeypatch):
    data, _ = box_dir
    (tmp_path / "creds").mkdir()
    (tmp_path / "creds" / keys.SIGNING_CREDENTIAL).write_bytes(b"\x00" * 7)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path / "creds"))
    with Box(data) as box, pytest.raises(KluisError, match="signing key damaged: credential kluis-signing-key"):
        box.signing_key()


def test_a_running_process_keeps_the_key_it_read_when_it_is_sealed(box_dir, tmp_path, kluis, monkeypatch):
    # The setup wizard moves the keys in, kluis serve opens the box, then kluis-seal-key.path seals and
    # shreds the file while serve goes on signing (offload requests, checkpoints).
    data, _ = box_dir
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    box = Box(data)
    seed = seal(data, tmp_path / "creds")
    assert bytes(box.signing_key()) == seed and box.signing_key_sealed()
    box.close()
    # Another process without the credential gets a clear refusal, not a traceback or another key.
    result = kluis("audit", "checkpoint", "--data", data, check=False)
    assert result.returncode == 1 and "sealed to" in result.stderr.decode()
    assert "Traceback" not in result.stderr.decode()


def test_a_backup_of_a_sealed_box_restores_the_key(box_dir, tmp_path, kluis, password_file):
    # kluis-backup.service: the key from systemd; the backup holds the seed, not the TPM2-bound copy,
    # and the restored box signs with the same key.
    data, _ = box_dir
    seed = seal(data, tmp_path / "creds")
    env = {"CREDENTIALS_DIRECTORY": str(tmp_path / "creds")}
    out = kluis("backup", "--data", data, "--to", tmp_path / "usb", env=env).stdout.decode()
    signer = out.split("signed by ")[1].split()[0]
    new = tmp_path / "restored"
    kluis("restore", "--data", new, "--from", tmp_path / "usb", "--password-file", password_file, "--signer", signer,
          env={"CREDENTIALS_DIRECTORY": ""})
    assert (new / SIGNING_KEY).read_bytes() == seed
    assert (new / SIGNING_KEY).stat().st_mode & 0o077 == 0
    assert not keys.sealed_path(new / SIGNING_KEY).exists()
    with Box(new) as box:
        assert bytes(box.signing_key().verify_key) == bytes(SigningKey(seed).verify_key)
        assert audit.verify(box.catalog, box.signing_key().verify_key).ok


def unavailable(data: Path, creds: Path, why: bytes = b"the TPM2 refused to unseal it: TPM_RC_POLICY_FAIL") -> bytes:
    """What unseal-signing-key leaves for the services when the TPM2 does not unseal the sealed key."""
    seed = seal(data, creds)
    (creds / keys.SIGNING_CREDENTIAL).write_bytes(keys.UNAVAILABLE + b" " + why + b"\n")
    return seed


def test_a_key_that_did_not_unseal_is_named_and_entries_wait_unsigned(box_dir, tmp_path, monkeypatch):
    from appliance import alerts

    data, _ = box_dir
    seed = unavailable(data, tmp_path / "creds")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path / "creds"))
    monkeypatch.setattr(keys, "_held", {})  # a new process: it never read the plaintext file
    assert keys.signing_key_unavailable() == "the TPM2 refused to unseal it: TPM_RC_POLICY_FAIL"
    with Box(data) as box:
        with pytest.raises(keys.SigningKeyUnavailable, match=r"did not unseal \(the TPM2 refused to unseal it"):
            box.signing_key()
        assert box.signing_key_sealed()  # still sealed: nothing fell back to a plaintext file
        seq = audit.record(box.catalog, actor="admin", action="login")
        row = box.catalog.db.execute("SELECT signature FROM audit_log WHERE seq = ?", [seq]).fetchone()
        assert row[0] is None  # recorded, waiting for the key
        found, failed = alerts.conditions(box)
        assert alerts.SIGNING_KEY not in failed
        assert [c.detail for c in found if c.kind == alerts.SIGNING_KEY] == [
            "De TPM2 gaf de verzegelde ondertekeningssleutel niet vrij: the TPM2 refused to unseal it: TPM_RC_POLICY_FAIL"]
    # The key back (a restore, or the TPM2 unseals it at the next start): the alert's condition ends.
    (tmp_path / "creds" / keys.SIGNING_CREDENTIAL).write_bytes(seed)
    with Box(data) as box:
        assert keys.signing_key_unavailable() is None and bytes(box.signing_key()) == seed
        assert not [c for c in alerts.conditions(box)[0] if c.kind == alerts.SIGNING_KEY]


def test_the_sealed_copies_stay_out_of_the_backup(box_dir):
    # keys/signing.tpm2 opens only in this machine's TPM2, and keys/signing.cred of an earlier image too:
    # the backup carries the seed instead.
    import io
    import tarfile

    from appliance import backup

    data, _ = box_dir
    seed = (data / SIGNING_KEY).read_bytes()
    for sealed in keys.sealed_paths(data / SIGNING_KEY):
        sealed.write_bytes(b"sealed to a TPM2 this test does not have")
    (data / SIGNING_KEY).unlink()
    with tarfile.open(fileobj=io.BytesIO(backup._files_tar(data, seed))) as tar:
        names = tar.getnames()
        assert SIGNING_KEY in names and tar.extractfile(SIGNING_KEY).read() == seed
    assert not [n for n in names if n.endswith((".tpm2", ".cred"))], names
