"""Fixtures of a suite whose box is built once per session by its fixture `box_template` ((data directory,
key -> recording id), with each recording's plaintext MP4 kept beside the data directory as <key>.mp4) and
copied for every test, so that tests do not see each other's changes. A conftest imports them; under other
names where its tests know them so (a fixture without a name of its own takes the name it is imported as).
Imported as `tests.template_fixtures`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture(name="data")  # named apart, so that a conftest's fixtures can take `data` without shadowing it
def template_copy(box_template, tmp_path) -> Path:
    """The copy of the template box's data directory for this test."""
    return Path(shutil.copytree(box_template[0], tmp_path / "data"))


@pytest.fixture
def ids(box_template) -> dict:
    return box_template[1]


@pytest.fixture
def original(box_template):
    """The plaintext MP4 a recording was imported from (kept beside the template box), by key."""
    return lambda key: (box_template[0].parent / f"{key}.mp4").read_bytes()
