"""Helpers of the request tests: a clock the test moves, small recordings at known times."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

from appliance import recordings
from appliance.box import Box
from tests.moving_clock import Clock  # noqa: F401  (the tests' clock: started at INCIDENT, moved by hand)

PASSWORD = "correct horse battery staple"
HOSTILE = '<script>alert("x")</script>'
# 20 November 2026, 14:05 in Amsterdam: the moment the requester names.
INCIDENT = datetime(2026, 11, 20, 13, 5, tzinfo=timezone.utc)


def store(box: Box, tmp_path: Path, start: datetime, seconds: int = 60, camera: str = "CAM001",
          officer: str = "jansen") -> str:
    """Import a small random file as a recording from `start`; returns its id."""
    path = tmp_path / f"clip-{os.urandom(4).hex()}.bin"
    path.write_bytes(os.urandom(2000))
    result = recordings.import_file(box, path, camera=camera, officer=officer, start=start,
                                    end=start + timedelta(seconds=seconds), actor="admin")
    path.unlink()
    return result.recording_id
