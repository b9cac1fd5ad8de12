"""Fixtures of the vault tests."""

from __future__ import annotations

import pytest
from nacl.public import PrivateKey


@pytest.fixture(scope="session")
def identity() -> PrivateKey:
    return PrivateKey.generate()
