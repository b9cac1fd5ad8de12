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
from .config_models import sftp_url_problem
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
    problem = sftp_url_problem(url)
    if problem:
        raise KluisError(f"{url}: {problem}")
    parts = urlsplit(url)
    assert parts.hostname and parts.username
    return SftpTarget(unquote(parts.username), parts.hostname, parts.port or 22, unquote(parts.path) or "/")


@dataclass(frozen=True)
class Access:
    """How the box logs in to a network target: its private key, and the server's host key it pins (a
    known_hosts file, or one key from the settings)."""
    key_file: Path
    known_hosts: Path
    host_key: str = ""  # "TYPE BASE64" from [backup] network_host_key: pinned instead of known_hosts


def access(box: Box, url: str) -> Access:
    """The login for `url`: [backup] ssh_key_file and network_host_key apply to the configured network
    target; any other URL (`kluis backup --to sftp://...`) uses the files in keys/."""
    cfg = box.settings.backup
    key = Path(cfg.ssh_key_file) if cfg.ssh_key_file else box.data_dir / SSH_KEY
    pin = cfg.network_host_key if url == cfg.network else ""
    return Access(key, box.data_dir / KNOWN_HOSTS, pin)


def ssh_options(login: Access, known_hosts: Path) -> list[str]:
    """Log in with the box's key only, to a server whose host key is pinned: never a prompt at night."""
    checks = [(login.key_file, "the box's SSH key for backups")]
    if not login.host_key:
        checks.append((known_hosts, "the server's pinned host key"))
    for path, what in checks:
        if not path.is_file():
            raise KluisError(f"{what} is missing: {path} (docs/backup.md, 'A network target')")
    return ["-o", f"IdentityFile={login.key_file}", "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
            "-o", f"UserKnownHostsFile={known_hosts}", "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", "StrictHostKeyChecking=yes", "-o", "UpdateHostKeys=no",
            "-o", "PasswordAuthentication=no", "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=4",
            "-o", f"ConnectTimeout={MOUNT_TIMEOUT_S // 2}"]


def known_hosts_line(target: SftpTarget, key: str) -> str:
    host = target.host if target.port == 22 else f"[{target.host}]:{target.port}"
    return f"{host} {key}\n"


def _unmount(mountpoint: Path) -> None:
    for tool in ("fusermount3", "fusermount"):
        if shutil.which(tool):
            done = subprocess.run([tool, "-u", "-z", str(mountpoint)], capture_output=True, timeout=30)
            if done.returncode != 0:
                log.warning("could not unmount the backup share at %s: %s", mountpoint,
                            done.stderr.decode(errors="replace").strip())
            return


def can_mount() -> bool:
    """Whether this process could mount a share at all (sshfs installed, /dev/fuse there): `kluis serve`'s
    sandbox has no /dev/fuse, so its sweep leaves the network target to kluis-backup-network.service."""
    return shutil.which("sshfs") is not None and os.access("/dev/fuse", os.R_OK | os.W_OK)


@contextmanager
def mounted(url: str, box: Box) -> Iterator[Path]:
    """The SFTP target mounted at a private directory under the data directory's tmp/, for one run."""
    target = parse(url)
    if shutil.which("sshfs") is None:
        raise KluisError("a network backup needs sshfs, which is not installed on this box")
    login = access(box, url)
    tmp = Path(box.data_dir) / "tmp"
    tmp.mkdir(exist_ok=True, mode=0o700)
    mountpoint = tmp / f"backup-share-{os.getpid()}-{os.urandom(3).hex()}"
    known = login.known_hosts
    if login.host_key:  # the pinned key from the settings, as a known_hosts file of this run's own
        known = mountpoint.with_name(mountpoint.name + ".known_hosts")
        known.write_text(known_hosts_line(target, login.host_key))
    try:
        options = ssh_options(login, known)
        mountpoint.mkdir(mode=0o700)
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
    finally:
        if known != login.known_hosts:
            known.unlink(missing_ok=True)


def login_key(box: Box) -> str:
    """The public half of the box's login key for network targets ([backup] ssh_key_file, or
    keys/backup_ssh_ed25519, made here with ssh-keygen the first time), as authorized_keys takes it."""
    key = access(box, box.settings.backup.network).key_file
    if not key.exists():
        key.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        done = subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"kluis {box.settings.box.name}",
                               "-f", str(key)], capture_output=True, timeout=60)
        if done.returncode != 0:
            raise KluisError(f"could not make the login key {key}: {done.stderr.decode(errors='replace').strip()}")
    public = Path(str(key) + ".pub")
    if not public.exists():
        done = subprocess.run(["ssh-keygen", "-y", "-f", str(key)], capture_output=True, timeout=60)
        if done.returncode != 0:
            raise KluisError(f"{key} is not a private key ssh-keygen can read")
        public.write_bytes(done.stdout)
    return public.read_text()


def public_login_key(box: Box) -> str | None:
    """The public half of the box's login key if it has one (the settings page shows it), else None."""
    public = Path(str(access(box, box.settings.backup.network).key_file) + ".pub")
    try:
        return public.read_text().strip()
    except OSError:
        return None


def run_to(box: Box, where: str | Path, keep: int = backup.DEFAULT_KEEP, actor: str = "system") -> backup.RunResult:
    """`run` to a directory (the KLUIS-BACKUP disk) or to an sftp:// network target, mounted for the run."""
    if is_url(where):
        audited = False
        try:
            with mounted(str(where), box) as mountpoint:
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
        with mounted(str(where), box) as mountpoint:
            return backup.append_journal(box, mountpoint)
    return backup.append_journal(box, Path(where))
