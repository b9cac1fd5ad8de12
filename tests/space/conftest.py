"""Fixtures of the free-space tests: camera simulators and `kluis serve` as real subprocesses (the dock
tests' own), stopped at the end."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.dock.dock_helpers import BoxServer, Camera
from tests.processes import stopped_at_end


@pytest.fixture
def cameras(tmp_path: Path):
    """cameras(serial, *extra): a started Camera with its state under tmp_path (not on the small disk)."""
    yield from stopped_at_end(lambda serial, *extra, **kwargs: Camera(tmp_path / f"cam-{serial}", serial, *extra,
                                                                      **kwargs))


@pytest.fixture
def serve():
    yield from stopped_at_end(BoxServer)
