"""Signed update bundles through the real CLI: a healthy update installs a real wheel of this code into a
throwaway venv and runs its new migration; an unhealthy one is rolled back (previous files, catalog from
the pre-update snapshot); a bad signature, an untrusted key and a tampered wheel are refused, audited,
and change nothing."""

from __future__ import annotations

import io
import json
import os
import sqlite3
import subprocess
import tarfile

import pytest
from nacl.signing import SigningKey

from appliance import audit, backup, update
from appliance.box import Box
from appliance.catalog import SCHEMA_VERSION
from update_helpers import installed_version, make_venv, make_wheel, pip_install, repo_files, with_migration

PROBE = """
        CREATE TABLE update_probe (note TEXT);
        INSERT INTO update_probe VALUES ('migrated by the new release');
        """


@pytest.fixture
def release(tmp_path):
    key = SigningKey.generate()
    trusted = tmp_path / "release-keys"
    trusted.write_text(f"# Kluis release key (test)\n{bytes(key.verify_key).hex()}\n")
    return key, trusted


@pytest.fixture
def venv(tmp_path):
    """The service's venv with the current release (0.1.0, this repository's code) installed."""
    path = make_venv(tmp_path / "venv")
    pip_install(path, make_wheel(tmp_path / "wheels0", "0.1.0", repo_files()))
    return path


def bundle(tmp_path, key, version, files, entry_point="appliance.app.cli:main", schema=None):
    wheel = make_wheel(tmp_path / f"wheels-{version}", version, files, entry_point)
    out = tmp_path / f"kluis-{version}.kluis-update"
    update.build(key, wheel, out, schema=schema)
    return out


def audit_actions(data):
    with Box(data) as box:
        return [e["action"] for e in audit.entries(box.catalog)]


def schema_of(data):
    conn = sqlite3.connect(data / "catalog.db")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        probe = conn.execute("SELECT name FROM sqlite_master WHERE name = 'update_probe'").fetchone()
        return version, probe is not None
    finally:
        conn.close()


def test_a_healthy_update_installs_the_wheel_and_runs_the_new_migrations(box_dir, kluis, tmp_path, venv, release):
    data, _ = box_dir
    key, trusted = release
    new = bundle(tmp_path, key, "0.2.0", with_migration(repo_files(), "update_probe", PROBE), schema=SCHEMA_VERSION + 1)
    out = kluis("update", "verify", new, "--trusted-keys", trusted).stdout.decode()
    assert out.startswith("ok: Kluis 0.2.0") and f"schema 1..{SCHEMA_VERSION + 1}" in out

    usb = tmp_path / "usb"
    if os.geteuid() == 0:  # the data directory belongs to the service user; the updater runs as root
        for item in [data, *data.rglob("*")]:
            os.chown(item, 4321, 4321)
    out = kluis("update", "apply", "--data", data, new, "--venv", venv, "--trusted-keys", trusted,
                "--backup-to", usb, "--no-compile", "--health-timeout", "60").stdout.decode()
    assert f"updated Kluis 0.1.0 -> 0.2.0; catalog schema {SCHEMA_VERSION} -> {SCHEMA_VERSION + 1}; healthy" in out
    assert installed_version(venv) == "0.2.0"
    if os.geteuid() == 0:
        assert {item.stat().st_uid for item in [data, *data.rglob("*")]} == {4321}
        assert (data / "update").exists()
    assert schema_of(data) == (SCHEMA_VERSION + 1, True)
    status = subprocess.run([venv / "bin" / "kluis", "status", "--data", data, "--json"], capture_output=True,
                            text=True, cwd="/", check=True)
    assert json.loads(status.stdout)["schema_version"] == SCHEMA_VERSION + 1
    # a backup first, made before the migration
    made, = backup.list_backups(usb)
    assert backup.read_manifest(made)["schema_version"] == SCHEMA_VERSION
    # The current code (this test's) cannot open the newer catalog; read the log with plain SQLite.
    conn = sqlite3.connect(data / "catalog.db")
    actions = [r[0] for r in conn.execute("SELECT action FROM audit_log ORDER BY seq")]
    details = json.loads(conn.execute("SELECT details FROM audit_log WHERE action = 'update'").fetchone()[0])
    conn.close()
    assert actions[-3:] == ["update_start", "backup", "update"]
    assert details["previous"] == "0.1.0" and details["version"] == "0.2.0"


def test_an_unhealthy_update_is_rolled_back(box_dir, kluis, tmp_path, venv, release):
    data, _ = box_dir
    key, trusted = release
    before = (venv / "bin" / "kluis").read_text()
    # The release migrates the catalog, then its entry point is broken: the health check fails.
    broken = bundle(tmp_path, key, "0.3.0", with_migration(repo_files(), "update_probe", PROBE),
                    entry_point="appliance.app.cli:no_such_main", schema=SCHEMA_VERSION + 1)
    # staged as the web UI's Onderhoud page does; the updater applies the staged bundle and removes it
    (data / update.UPDATE_DIR).mkdir()
    staged = data / update.UPDATE_DIR / update.STAGED
    staged.write_bytes(broken.read_bytes())
    result = kluis("update", "apply", "--data", data, "--venv", venv, "--trusted-keys", trusted,
                   "--no-compile", "--health-timeout", "2", check=False)
    assert not staged.exists()
    err = result.stderr.decode()
    assert result.returncode == 1 and "update to 0.3.0 failed (not healthy" in err and "rolled back to 0.1.0" in err
    assert installed_version(venv) == "0.1.0"
    assert (venv / "bin" / "kluis").read_text() == before
    assert schema_of(data) == (SCHEMA_VERSION, False)  # the catalog as it was before the migration
    subprocess.run([venv / "bin" / "kluis", "status", "--data", data], check=True, capture_output=True, cwd="/")
    with Box(data) as box:
        entries = audit.entries(box.catalog)
        assert [e["action"] for e in entries][-2:] == ["update_start", "update_rolled_back"]
        assert entries[-1]["details"]["previous_healthy"] is True
        assert audit.verify(box.catalog, box.signing_key().verify_key).ok


def _rewrite(src, out, edit):
    """Copy a bundle, letting `edit(name, bytes)` change members."""
    with tarfile.open(src) as tin, tarfile.open(out, "w") as tout:
        for member in tin.getmembers():
            data = edit(member.name, tin.extractfile(member).read())
            member.size = len(data)
            tout.addfile(member, io.BytesIO(data))
    return out


def test_bad_signatures_untrusted_keys_and_tampered_wheels_are_refused(box_dir, kluis, tmp_path, release):
    data, _ = box_dir
    key, trusted = release
    venv = tmp_path / "untouched-venv"  # never installed into: nothing may get that far
    make_venv(venv)
    good = bundle(tmp_path, key, "0.2.0", repo_files())
    stranger = bundle(tmp_path / "s", SigningKey.generate(), "0.2.0", repo_files())

    def edited_manifest(name, raw):
        if name != update.MANIFEST_NAME:
            return raw
        manifest = json.loads(raw)
        manifest["min_schema"] = 0
        return json.dumps(manifest).encode()

    def tampered_wheel(name, raw):
        return raw if name == update.MANIFEST_NAME else raw[:-10] + b"0123456789"

    cases = {
        "signature does not match": _rewrite(good, tmp_path / "edited.kluis-update", edited_manifest),
        "not a trusted release key": stranger,
        "SHA-256 mismatch": _rewrite(good, tmp_path / "tampered.kluis-update", tampered_wheel),
    }
    catalog_before = schema_of(data)
    for why, path in cases.items():
        result = kluis("update", "verify", path, "--trusted-keys", trusted, check=False)
        assert result.returncode == 1 and why in result.stderr.decode()
        result = kluis("update", "apply", "--data", data, path, "--venv", venv, "--trusted-keys", trusted, check=False)
        assert result.returncode == 1 and why in result.stderr.decode()
    assert installed_version(venv) is None and not (data / "update").exists()
    assert schema_of(data) == catalog_before
    with Box(data) as box:
        refused = audit.entries(box.catalog, action="update_refused")
        assert [e["details"]["why"] for e in refused] and len(refused) == 3
        assert all(w in e["details"]["why"] for w, e in zip(cases, refused))
        assert not audit.entries(box.catalog, action="update_start")


def test_a_bundle_for_another_schema_range_is_refused(box_dir, tmp_path, release):
    data, _ = box_dir
    key, trusted = release
    venv = make_venv(tmp_path / "v")
    old = bundle(tmp_path, key, "0.0.9", repo_files(), schema=SCHEMA_VERSION - 1)
    with pytest.raises(update.UpdateRefused, match="downgrade"):
        update.apply(data, old, venv, trusted=update.trusted_keys(trusted))
    wheel = make_wheel(tmp_path / "w", "9.0.0", repo_files())
    update.build(key, wheel, tmp_path / "far.kluis-update", schema=40, min_schema=SCHEMA_VERSION + 1)
    with pytest.raises(update.UpdateRefused, match="install an earlier update first"):
        update.apply(data, tmp_path / "far.kluis-update", venv, trusted=update.trusted_keys(trusted))
    assert audit_actions(data)[-2:] == ["update_refused", "update_refused"]
