"""Fixtures of the vault tests."""

from __future__ import annotations

import pytest
from nacl.public import PrivateKey


@pytest.fixture(scope="session")
def identity() -> PrivateKey:
    return PrivateKey.generate()


@pytest.fixture
def password(password_file) -> str:
    """The keeper's password of the shared `box_dir` fixture (tests/conftest.py)."""
    return password_file.read_text().splitlines()[0]
