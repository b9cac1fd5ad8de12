"""Fixtures of the sync tests: a real archive (data dir, and `kluis archive serve` as a real subprocess)
and a box enrolled at it through the real CLI."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from appliance.box import Box
from sync import client
from sync.archive.store import init_archive
from tests.conftest import secret_file
from sync_helpers import ARCHIVE_PASSWORD, ArchiveProcess, free_port, new_token


@pytest.fixture
def archive_password_file(tmp_path: Path) -> Path:
    return secret_file(tmp_path / "archive-password.txt", ARCHIVE_PASSWORD)


@pytest.fixture
def archive_dir(tmp_path: Path) -> Path:
    data = tmp_path / "archive"
    archive, _ = init_archive(data, ARCHIVE_PASSWORD, kdf_profile="interactive")
    archive.close()
    return data


@pytest.fixture
def archive_proc(archive_dir: Path, tmp_path: Path):
    proc = ArchiveProcess(archive_dir, free_port(), tmp_path / "archive.log")
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
def enrolled(box_dir, archive_proc):
    """(box data dir, archive process): the box enrolled over HTTPS (in-process: `kluis sync enroll` has
    its own test, and a CLI start-up per test adds up)."""
    data, _ = box_dir
    with Box(data) as box:
        asyncio.run(client.enroll(box, archive_proc.url, new_token(archive_proc.data_dir)))
    return data, archive_proc
