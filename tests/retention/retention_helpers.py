"""Helpers of the retention tests: a clock the test moves, small recordings, policy edits."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from appliance import recordings
from appliance.box import Box
from tests.moving_clock import T0, Clock  # noqa: F401  (the same clock as the backup tests')


def store(box: Box, tmp_path: Path, end: datetime, size: int = 3000, seconds: int = 60) -> str:
    """Import a small random file as a recording that ended at `end`; returns its id."""
    import os

    path = tmp_path / f"clip-{os.urandom(4).hex()}.bin"
    path.write_bytes(os.urandom(size))
    result = recordings.import_file(box, path, camera="CAM001", officer="J. Jansen",
                                    start=end - timedelta(seconds=seconds), end=end, actor="admin")
    path.unlink()
    return result.recording_id


def set_retention(box: Box, **values) -> None:
    """Rewrite kluis.toml's [retention] section (as a keeper editing the file would)."""
    path = box.data_dir / "kluis.toml"
    text = path.read_text()
    head, _, _ = text.partition("[retention]")
    cats = values.pop("categories", {})
    lines = ["[retention]"] + [f"{k} = {v}" for k, v in values.items()] + ["", "[retention.categories]"]
    lines += [f"{k} = {v}" for k, v in cats.items()]
    path.write_text(head + "\n".join(lines) + "\n")
