"""Fixtures of the dock tests: camera simulators and `kluis serve` as real subprocesses, stopped at the end."""

from __future__ import annotations

from pathlib import Path

import pytest

from dock_helpers import BoxServer, Camera


@pytest.fixture
def cameras(tmp_path: Path):
    started: list[Camera] = []

    def start(serial: str, *extra: str, **kwargs) -> Camera:
        camera = Camera(tmp_path / f"cam-{serial}", serial, *extra, **kwargs)
        started.append(camera)
        return camera

    yield start
    for camera in started:
        camera.stop()


@pytest.fixture
def serve():
    started: list[BoxServer] = []

    def start(data_dir: Path, **kwargs) -> BoxServer:
        server = BoxServer(data_dir, **kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
