"""A box: one initialized data directory, with its configuration, catalog, vault and keys.

    DIR/kluis.toml          configuration (commented defaults)
    DIR/catalog.db          the catalog (SQLite, WAL)
    DIR/blobs/ab/<sha256>   recording payloads (ciphertext)
    DIR/tmp/                writes in progress
    DIR/keys/signing.key    Ed25519 seed for unattended signing (0600); on the appliance with a TPM2
                            keys/signing.tpm2 instead, sealed to the TPM2 (appliance.keys.box_signing_key)

Opening a box needs no secret: ingest, retention and sync work with public keys only. Reading footage
needs the X25519 private key, which `unlock` (a user's password) or `unlock_recovery` unwraps.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Sequence

from nacl.public import PrivateKey, PublicKey
from nacl.signing import SigningKey

from . import config as config_mod
from . import keys
from .catalog import Catalog
from .clock import Clock, system_clock, to_iso
from .errors import KluisError, NotInitialized
from .vault import Vault

CATALOG = "catalog.db"
SIGNING_KEY = "keys/signing.key"
KEEPER = "keeper"


class Box:
    def __init__(self, data_dir: Path, clock: Clock = system_clock):
        self.data_dir = NotInitialized.unless(data_dir, CATALOG, "Kluis data directory", "kluis init")
        self.clock = clock
        self.settings = config_mod.load(self.data_dir)
        self.catalog = Catalog(self.data_dir / CATALOG)
        self.catalog.clock = clock  # audit.record stamps entries with the box's (injectable) clock
        # ...and signs each with the box's signing key, read once on the first entry (opening a box needs no
        # key: a process that cannot read it writes unsigned entries, which the next checkpoint signs).
        self._audit_signing: SigningKey | None = None
        self.catalog.audit_key = self._audit_key
        self.vault = Vault(self.data_dir)
        self.public_key = PublicKey(bytes.fromhex(self.catalog.required_meta("box_public_key")))
        if (self.data_dir / SIGNING_KEY).exists():
            # Held in memory from now on: the appliance seals it to the TPM2 and shreds the file (the first
            # time right after the setup wizard), while this process keeps signing.
            with contextlib.suppress(KluisError):
                self.signing_key()

    def close(self) -> None:
        self.catalog.close()

    def __enter__(self) -> Box:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def now_iso(self) -> str:
        return to_iso(self.clock())

    @property
    def default_user(self) -> str:
        return self.catalog.required_meta("init_user")

    def recipients(self) -> list[PublicKey]:
        """Who new recordings are sealed to: the box, plus any key in meta 'extra_recipients' (the archive)."""
        extra = json.loads(self.catalog.get_meta("extra_recipients", "[]"))
        return [self.public_key] + [PublicKey(bytes.fromhex(k)) for k in extra]

    def signing_key(self) -> SigningKey:
        return keys.box_signing_key(self.data_dir / SIGNING_KEY)

    def signing_key_sealed(self) -> bool:
        """Whether the signing key is held only sealed to the TPM2 (no plaintext copy on the disk)."""
        return keys.signing_key_sealed(self.data_dir / SIGNING_KEY)

    def _audit_key(self) -> SigningKey:
        if self._audit_signing is None:
            self._audit_signing = self.signing_key()
        return self._audit_signing

    def authenticate(self, user: str, password: str) -> dict:
        """Check a user's password; returns the user row. Raises WrongSecret or NotFound."""
        row = self.catalog.get_user(user)
        if row["disabled"]:
            raise KluisError(f"user {user!r} is disabled")
        keys.open_slot(row["slot"], password)
        return row

    def unlock(self, user: str, password: str) -> PrivateKey:
        """The box's private key through a user's key slot."""
        row = self.catalog.get_user(user)
        if row["disabled"]:
            raise KluisError(f"user {user!r} is disabled")
        secret = keys.open_slot(row["slot"], password)
        if secret is None:
            raise KluisError(f"user {user!r} holds no key slot and cannot open recordings")
        return self._identity(secret)

    def unlock_recovery(self, recovery_key: str) -> PrivateKey:
        slot = json.loads(self.catalog.required_meta("recovery_slot"))
        return self._identity(keys.open_recovery_slot(slot, recovery_key))

    def _identity(self, secret: bytes) -> PrivateKey:
        identity = PrivateKey(secret)
        if bytes(identity.public_key) != bytes(self.public_key):
            raise KluisError("key slot holds a key of another box")
        return identity


def init_box(
    data_dir: Path,
    admin: str,
    password: str,
    kdf_profile: str = "moderate",
    clock: Clock = system_clock,
    totp_required: Sequence[str] = (),
) -> tuple[Box, str]:
    """Create the data directory, config, catalog, keys and the first user (the keeper, with a key slot).
    Returns the open box and the recovery key, which is shown once and never stored. `totp_required`:
    the roles that must log in with a second factor ([security] totp_required; `kluis init` and the
    first-boot wizard pass config_models.TOTP_REQUIRED_NEW_BOX)."""
    data_dir = Path(data_dir)
    if (data_dir / CATALOG).exists():
        raise KluisError(f"{data_dir} is already a Kluis data directory")
    if data_dir.exists() and any(data_dir.iterdir()):
        raise KluisError(f"{data_dir} exists and is not empty")
    if kdf_profile not in keys.KDF_PROFILES:
        raise KluisError(f"unknown KDF profile {kdf_profile!r}")
    data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(data_dir, 0o700)
    security = {"kdf_profile": kdf_profile, **({"totp_required": list(totp_required)} if totp_required else {})}
    config_mod.write_template(data_dir, {"security": security})
    Vault(data_dir).create()
    from . import tls  # only init and serve need x509: every other command starts faster without it

    tls.create_certificate(data_dir)  # the web UI's HTTPS certificate; `kluis status` shows its fingerprint
    identity = keys.new_box_identity()
    signing = keys.write_signing_key(data_dir / SIGNING_KEY)
    recovery_key = keys.new_recovery_key()
    catalog = Catalog(data_dir / CATALOG)
    now = to_iso(clock())
    with catalog.transaction():
        catalog.set_meta("box_public_key", bytes(identity.public_key).hex())
        catalog.set_meta("signing_public_key", bytes(signing.verify_key).hex())
        catalog.set_meta("recovery_slot", json.dumps(keys.new_recovery_slot(recovery_key, bytes(identity))))
        catalog.set_meta("fingerprint_key", os.urandom(32).hex())
        catalog.set_meta("init_user", admin)
        catalog.set_meta("created_at", now)
        catalog.add_user(admin, KEEPER, keys.new_slot(password, bytes(identity), kdf_profile), now)
    catalog.close()
    return Box(data_dir, clock), recovery_key
