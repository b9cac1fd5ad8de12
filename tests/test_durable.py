"""One durable atomic write: temp file in the same directory, fsync, rename, fsync of the directory."""

from __future__ import annotations

import os
import stat

import pytest

from appliance import durable


def test_write_atomic_replaces_and_syncs_the_directory(tmp_path, monkeypatch):
    synced = []
    real = durable.fsync_dir
    monkeypatch.setattr(durable, "fsync_dir", lambda path: (synced.append(path), real(path)))
    target = tmp_path / "kluis.toml"
    target.write_text("old")
    durable.write_atomic(target, "nieuw é")
    assert target.read_text(encoding="utf-8") == "nieuw é"
    assert synced == [tmp_path]
    assert os.listdir(tmp_path) == ["kluis.toml"]  # no temp file left


def test_secret_mode_from_the_start(tmp_path, monkeypatch):
    created = []
    real_open = os.open
    monkeypatch.setattr(durable.os, "open", lambda path, flags, mode=0o777: (created.append(mode),
                                                                             real_open(path, flags, mode))[1])
    old = os.umask(0o022)  # a lax umask: the mode must come from write_atomic, not from the umask
    try:
        durable.write_atomic(tmp_path / "key.pem", b"secret", 0o600)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "key.pem").stat().st_mode) == 0o600
    assert created[0] == 0o600  # the file is created with it (the next open is its folder, for fsync)


def test_a_failed_write_leaves_the_old_content_and_no_temp_file(tmp_path, monkeypatch):
    target = tmp_path / "cert.pem"
    target.write_bytes(b"old")

    def fail(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(durable.os, "replace", fail)
    with pytest.raises(OSError):
        durable.write_atomic(target, b"new")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["cert.pem"]

