"""Durable file writes: what is written survives a power cut whole or not at all.

`write_atomic` writes a temporary file in the target's directory (a rename never crosses file systems),
fsyncs it, renames it over the target and fsyncs the directory, so that after a crash the target holds
either its old content or the new, never a mix or nothing. Without the directory fsync the rename itself
may be lost, and the file's old content come back after the crash.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def fsync_path(path: Path, flags: int = 0) -> None:
    """Flush a file, or a directory's entries, to the disk."""
    fd = os.open(path, os.O_RDONLY | flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    fsync_path(path, os.O_DIRECTORY)


def replace(src: Path, dst: Path) -> None:
    """Rename a finished, fsynced file over `dst` and make the rename durable."""
    os.replace(src, dst)
    fsync_dir(Path(dst).parent)


def write_atomic(path: Path, data: bytes | bytearray | str, mode: int = 0o666) -> None:
    """Replace `path` with `data` (str as UTF-8), durably. `mode` is that of a new file (less the umask,
    as open() does); a secret key passes 0o600, so it is never readable by others, not even briefly."""
    path = Path(path)
    if isinstance(data, str):
        data = data.encode("utf-8")
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")  # unique: two writers never share one
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
