"""Fixtures every area shares: a real initialized box on a real SQLite file, and the real `kluis` CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from appliance.box import Box, init_box

PASSWORD = "correct horse battery staple"
KLUIS = [sys.executable, "-m", "appliance"]


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "password.txt"
    path.write_text(PASSWORD + "\n")
    return path


@pytest.fixture
def box_dir(tmp_path: Path) -> tuple[Path, str]:
    """An initialized data dir (keeper 'admin', fast KDF); returns (path, recovery key)."""
    data = tmp_path / "data"
    box, recovery = init_box(data, "admin", PASSWORD, kdf_profile="interactive")
    box.close()
    return data, recovery


@pytest.fixture
def box(box_dir) -> Box:
    with Box(box_dir[0]) as opened:
        yield opened


def run_kluis(*args: str, check: bool = True, input: bytes | None = None, timeout: float = 120,
              env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the real CLI in a subprocess; stdout as bytes, stderr as text."""
    result = subprocess.run(
        KLUIS + [str(a) for a in args], input=input, capture_output=True, timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    if check and result.returncode != 0:
        raise AssertionError(f"kluis {' '.join(map(str, args))} failed ({result.returncode}):\n"
                             f"{result.stderr.decode(errors='replace')}")
    return result


@pytest.fixture
def kluis():
    return run_kluis
