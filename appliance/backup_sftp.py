"""A network backup target over SFTP (docs/backup.md, "A network target"): `sftp://user@host[:port]/path`.

Why SFTP: a municipality without IT staff can have it without running anything special: every NAS sold
to offices (Synology, QNAP, TrueNAS), every Linux or Windows server (OpenSSH is part of Windows) and
most hosting parties offer it; it is encrypted and authenticated by keys on both sides (the box's own
key pair for logging in, the server's host key pinned in a known_hosts file), so a backup can run at
night with no password stored anywhere; and it passes one port through the municipality's firewall.

The share is mounted with sshfs (FUSE) for the length of one run, and the backup is written to it as to
the KLUIS-BACKUP disk: the same code, the same checks. sshfs passes fsync and atomic renames to OpenSSH's
server (its fsync@openssh.com and posix-rename@openssh.com extensions), which is what makes a backup
there whole or not at all. Mounting needs `sshfs` and /dev/fuse; nothing else on the box changes.
`run_to` and `journal_to` take either kind of target: a directory or an sftp:// URL.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from . import backup
from .box import Box
from .errors import KluisError

log = logging.getLogger(__name__)

SCHEME = "sftp"
# The box's login key and the server's pinned host key, in the data directory's keys/ (backed up with it).
SSH_KEY = "keys/backup_ssh_ed25519"
KNOWN_HOSTS = "keys/backup_known_hosts"
MOUNT_TIMEOUT_S = 60


@dataclass(frozen=True)
class SftpTarget:
    user: str
    host: str
    port: int
    path: str

    def __str__(self) -> str:
        return f"{SCHEME}://{self.user}@{self.host}:{self.port}{self.path}"


def is_url(text: str | os.PathLike) -> bool:
    return str(text).startswith(SCHEME + "://")


def parse(url: str) -> SftpTarget:
    parts = urlsplit(url)
    if parts.scheme != SCHEME or not parts.hostname or not parts.username:
        raise KluisError(f"{url}: a network target is sftp://USER@HOST[:PORT]/PATH")
    path = unquote(parts.path) or "/"
    if not path.startswith("/") or ".." in path.split("/"):
        raise KluisError(f"{url}: the path on the server must be absolute, without '..'")
    try:
        port = parts.port or 22
    except ValueError:
        raise KluisError(f"{url}: not a port number") from None
    return SftpTarget(unquote(parts.username), parts.hostname, port, path)


def ssh_options(data_dir: Path) -> list[str]:
    """Log in with the box's key only, to a server whose host key is pinned: never a prompt at night."""
    key, known = Path(data_dir) / SSH_KEY, Path(data_dir) / KNOWN_HOSTS
    for path, what in ((key, "the box's SSH key for backups"), (known, "the server's pinned host key")):
        if not path.is_file():
            raise KluisError(f"{what} is missing: {path} (docs/backup.md, 'A network target')")
    return ["-o", f"IdentityFile={key}", "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
            "-o", f"UserKnownHostsFile={known}", "-o", "StrictHostKeyChecking=yes",
            "-o", "PasswordAuthentication=no", "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=4",
            "-o", f"ConnectTimeout={MOUNT_TIMEOUT_S // 2}"]


def _unmount(mountpoint: Path) -> None:
    for tool in ("fusermount3", "fusermount"):
        if shutil.which(tool):
            done = subprocess.run([tool, "-u", "-z", str(mountpoint)], capture_output=True, timeout=30)
            if done.returncode != 0:
                log.warning("could not unmount the backup share at %s: %s", mountpoint,
                            done.stderr.decode(errors="replace").strip())
            return


@contextmanager
def mounted(url: str, data_dir: Path) -> Iterator[Path]:
    """The SFTP target mounted at a private directory under the data directory's tmp/, for one run."""
    target = parse(url)
    if shutil.which("sshfs") is None:
        raise KluisError("a network backup needs sshfs, which is not installed on this box")
    options = ssh_options(data_dir)
    mountpoint = Path(data_dir) / "tmp" / f"backup-share-{os.getpid()}-{os.urandom(3).hex()}"
    mountpoint.mkdir(parents=True, mode=0o700)
    command = ["sshfs", f"{target.user}@{target.host}:{target.path}", str(mountpoint), "-p", str(target.port),
               *options, "-o", "reconnect"]
    try:
        done = subprocess.run(command, capture_output=True, timeout=MOUNT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        mountpoint.rmdir()
        raise KluisError(f"{target}: no answer within {MOUNT_TIMEOUT_S} s") from None
    if done.returncode != 0:
        mountpoint.rmdir()
        lines = done.stderr.decode(errors="replace").strip().splitlines()
        raise KluisError(f"{target}: could not connect: {lines[-1] if lines else 'sshfs failed'}")
    try:
        yield mountpoint
    finally:
        _unmount(mountpoint)
        try:
            mountpoint.rmdir()
        except OSError as exc:
            log.warning("could not remove the mount point %s: %s", mountpoint, exc)


def run_to(box: Box, where: str | Path, keep: int = backup.DEFAULT_KEEP, actor: str = "system") -> backup.RunResult:
    """`run` to a directory (the KLUIS-BACKUP disk) or to an sftp:// network target, mounted for the run."""
    if is_url(where):
        audited = False
        try:
            with mounted(str(where), box.data_dir) as mountpoint:
                try:
                    return backup.run(box, mountpoint, keep=keep, actor=actor, label=str(where))
                except KluisError:
                    audited = True  # run() audits its own failures
                    raise
        except KluisError as exc:
            if not audited:  # the share could not be reached
                backup.audit_failure(box, actor, str(where), str(exc))
            raise
    return backup.run(box, Path(where), keep=keep, actor=actor)


def journal_to(box: Box, where: str | Path) -> dict:
    """`append_journal` to a directory or an sftp:// network target (mounted for it): the deletions since
    the last entry reach the target between backups too (run it after each sweep)."""
    if is_url(where):
        with mounted(str(where), box.data_dir) as mountpoint:
            return backup.append_journal(box, mountpoint)
    return backup.append_journal(box, Path(where))
