"""Helpers of the backup tests: a clock the test moves, small recordings, a policy edit, decrypting a
backup's sealed parts with the box's key."""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

from appliance import backup, recordings, restore
from appliance.box import Box
from tests.moving_clock import T0, Clock  # noqa: F401  (the same clock as the retention tests')


def store(box: Box, tmp_path: Path, end: datetime, size: int = 3000) -> tuple[str, bytes]:
    """Import a small random file as a recording that ended at `end`; returns (id, plaintext)."""
    plain = os.urandom(size)
    path = tmp_path / f"clip-{os.urandom(4).hex()}.bin"
    path.write_bytes(plain)
    result = recordings.import_file(box, path, camera="CAM001", officer="J. Jansen",
                                    start=end - timedelta(seconds=60), end=end, actor="admin")
    path.unlink()
    return result.recording_id, plain


def set_grace(box: Box, days: int) -> None:
    path = box.data_dir / "kluis.toml"
    path.write_text(path.read_text().replace("# grace_days = 7", f"grace_days = {days}"))


def open_part(path: Path, identity) -> bytes:
    """The plaintext of a backup's sealed part (catalog.kluis, files.kluis)."""
    return b"".join(restore.open_sealed(path, identity))


def catalog_of(path: Path, identity, tmp_path: Path):
    """The catalog inside a backup, as an open sqlite3 connection (a file under tmp_path)."""
    import sqlite3

    out = tmp_path / f"snap-{os.urandom(3).hex()}.db"
    out.write_bytes(open_part(path / backup.CATALOG_FILE, identity))
    return sqlite3.connect(out)


def listing(target: Path) -> list[str]:
    return [p.name for p in backup.list_backups(target)]
