"""First boot: provisioning a data directory while a person at the setup wizard watches.

The office buys a small PC, plugs it in and opens https://kluis.local: there is no console. Until the box
is initialised `kluis serve` serves only the wizard (webui/routes/setup.py, over HTTPS with the box's
self-signed certificate, made now by `prepare` and kept afterwards so the browser's exception stays good):

  1. name the office and the municipality (the transfer form's issuing party), choose the keeper's user
     name and password (twice, the usual password rules);
  2. the recovery key, shown once, to write down or print;
  3. the key is hidden and two of its groups (chosen at random) must be typed back;
  4. optionally: enroll with the central archive (URL and token);
  5. done: the wizard stops and the same `kluis serve` process starts the box as usual (discovery,
     retention, web UI, sync) on the same address. /setup is then 404.

The box is made in a staging directory (DIR/.kluis-setup/box, by appliance.box.init_box) and moved into
DIR only after the recovery key was confirmed, the catalog last: a box exists complete with a recovery key
someone wrote down, or not at all (a power cut before that: the wizard starts again, with a new key).

Who may run it: anyone who reaches the box on the office LAN, until it is initialised. The first browser
that submits step 1 claims the wizard (a token the web layer keeps in a cookie); any other browser is
refused with a clear message until that claim is idle for CLAIM_IDLE_S before the commit. A second
`kluis serve` on the same directory is refused by a file lock. See README, "First boot".

This module is the state of one first boot and the rules of its steps; no HTTP.
"""

from __future__ import annotations

import fcntl
import hmac
import logging
import os
import secrets
import shutil
import time
from pathlib import Path

from . import audit, tls
from . import config as config_mod
from .box import CATALOG, Box, init_box
from .config_models import TOTP_REQUIRED_NEW_BOX
from .errors import KluisError
from .durable import fsync_dir

log = logging.getLogger("kluis.setup")

SETUP_DIR = ".kluis-setup"         # inside DIR: the lock file and the box being made
STAGED = "box"
LOCK = "lock"
MADE_BY_INIT = {"kluis.toml", "blobs", "tmp", "keys"}  # what an interrupted commit may have moved already
MAY_BE_THERE = {"tls", SETUP_DIR, "lost+found"}       # the setup certificate; a file system's own
CLAIM_IDLE_S = 30 * 60
CONFIRM_GROUPS = 2


class FirstBoot:
    """The state of one first boot (in memory: a restart before the commit starts over)."""

    def __init__(self, data_dir: Path, kdf_profile: str = "moderate"):
        self.data_dir = Path(data_dir)
        self.kdf_profile = kdf_profile
        self.step = "start"            # start, making, recovery, confirm, committing, archive, done
        self.owner: str | None = None  # the claiming browser's cookie
        self.active = 0.0              # time.monotonic() of the owner's last request
        self.office = ""
        self.municipality = ""
        self.keeper = ""
        self.recovery_key: str | None = None
        self.groups: list[int] = []    # 1-based numbers of the groups to type back
        self.box: Box | None = None
        self.enrolled: dict | None = None
        self._lock_fd: int | None = None

    # the directory ----------------------------------------------------------------------------------
    @property
    def staging(self) -> Path:
        return self.data_dir / SETUP_DIR / STAGED

    def prepare(self) -> None:
        """Take the lock, clear what an interrupted setup left, and make (or keep) the certificate."""
        if (self.data_dir / CATALOG).exists():
            raise KluisError(f"{self.data_dir} is already a Kluis data directory")
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        strange = sorted(p.name for p in self.data_dir.iterdir() if p.name not in MAY_BE_THERE | MADE_BY_INIT)
        if strange:
            raise KluisError(f"{self.data_dir} is not a Kluis data directory and not empty "
                             f"({', '.join(strange[:5])}): give an empty or new directory")
        blobs = self.data_dir / "blobs"
        if blobs.exists() and any(p.is_file() for p in blobs.rglob("*")):
            raise KluisError(f"{blobs} holds recordings but there is no catalog: restore from a backup")
        (self.data_dir / SETUP_DIR).mkdir(mode=0o700, exist_ok=True)
        fd = os.open(self.data_dir / SETUP_DIR / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise KluisError(f"{self.data_dir} is being set up by another kluis serve") from None
        if (self.data_dir / CATALOG).exists():  # made by the kluis serve that held the lock until just now
            os.close(fd)
            raise KluisError(f"{self.data_dir} is already a Kluis data directory")
        self._lock_fd = fd
        for name in MADE_BY_INIT:  # moved before a power cut, without the catalog: not a box yet
            _remove(self.data_dir / name)
        _remove(self.staging)
        tls.ensure_certificate(self.data_dir)  # kept after setup: the browser's exception stays valid

    def release(self) -> None:
        if self.box is not None:
            self.box.close()
            self.box = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
        if (self.data_dir / CATALOG).exists():
            _remove(self.data_dir / SETUP_DIR)
        else:
            _remove(self.staging)

    def make(self, office: str, keeper: str, password: str, municipality: str = "") -> None:
        """Step 1 (in a worker thread: Argon2id): the box, in the staging directory."""
        box, recovery_key = init_box(self.staging, keeper, password, self.kdf_profile)
        box.close()
        self.municipality = municipality
        named = {"name": office, **({"municipality": municipality} if municipality else {})}
        config_mod.write_template(self.staging, {"security": {"kdf_profile": self.kdf_profile,
                                                              "totp_required": list(TOTP_REQUIRED_NEW_BOX)},
                                                 "box": named})
        _remove(self.staging / "tls")  # the setup certificate in DIR/tls is the box's
        self.recovery_key = recovery_key
        count = len(recovery_key.split("-")) - 1
        self.groups = sorted(secrets.SystemRandom().sample(range(1, count + 1), CONFIRM_GROUPS))

    def commit(self) -> None:
        """Move the staged box into DIR, the catalog last; then it is a box."""
        names = sorted(p.name for p in self.staging.iterdir())
        catalog_files = sorted((n for n in names if n.startswith(CATALOG)), key=lambda n: n == CATALOG)
        for name in [n for n in names if not n.startswith(CATALOG)] + catalog_files:
            os.replace(self.staging / name, self.data_dir / name)
        fsync_dir(self.data_dir)
        self.staging.rmdir()
        self.box = Box(self.data_dir)

    def discard(self) -> None:
        """An abandoned claim before the commit: forget it all, the next browser starts afresh."""
        _remove(self.staging)
        self.step, self.owner, self.recovery_key, self.groups = "start", None, None, []

    # who is asking ------------------------------------------------------------------------------------
    def claim(self, office: str, keeper: str) -> str:
        """Step 1 taken by one browser: the token that proves it from now on."""
        self.owner = secrets.token_urlsafe(32)
        self.step, self.active = "making", time.monotonic()
        self.office, self.keeper = office, keeper
        return self.owner

    def is_owner(self, token: str) -> bool:
        return self.owner is not None and _same(token, self.owner)

    def expire(self) -> None:
        if (self.owner and self.step in ("recovery", "confirm")
                and time.monotonic() - self.active > CLAIM_IDLE_S):
            log.info("setup: the claim of an idle browser expired; starting over")
            self.discard()

    def confirmed(self, client: str) -> None:
        """Step 3 passed and the box committed: forget the only copy of the key in memory, and make the
        box's first audit entry: who became its keeper, from where."""
        self.recovery_key, self.step = None, "archive"
        if self.box is None:
            raise RuntimeError("setup: confirmed before the box was made")
        audit.record(self.box.catalog, actor=self.keeper, action="setup", client=client, clock=self.box.clock,
                     details={"office": self.office, "municipality": self.municipality, "via": "first-boot wizard", "kdf_profile": self.kdf_profile})


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


# The message is the English msgid of webui's Dutch catalog: the wizard shows it translated.
OFFICE_RULE = "the office name is 1 to 64 printable characters, without quotes or backslashes"


def check_office(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 64 or not name.isprintable() or '"' in name or "\\" in name:
        raise KluisError(OFFICE_RULE)
    return name


MUNICIPALITY_RULE = "name the municipality (at most 200 printable characters), e.g. Gemeente Utrecht"


def check_municipality(name: str) -> str:
    """The municipality as the transfer form names the issuing party: required in the wizard."""
    name = " ".join(name.split())
    if not name or len(name) > 200 or not name.isprintable():
        raise KluisError(MUNICIPALITY_RULE)
    return name


def groups_match(recovery_key: str, wanted: list[int], typed: list[str]) -> bool:
    parts = recovery_key.split("-")  # parts[0] is the prefix KLUIS; group n is parts[n]
    return len(typed) == len(wanted) and all(
        _same(_base32(t), parts[n]) for n, t in zip(wanted, typed))


def _same(a: str, b: str) -> bool:
    # compare_digest takes only ASCII str: whatever a browser sends, compare bytes
    return hmac.compare_digest(a.encode(), b.encode())


def _base32(typed: str) -> str:
    # Base32 has no 0, 1 or 8: on paper they are O, I and B.
    return typed.strip().upper().translate(str.maketrans("018", "OIB"))
