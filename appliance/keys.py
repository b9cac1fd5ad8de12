"""The box's keys and the key slots that guard them.

- The X25519 key pair is the recipient of every recording. Its private half exists on disk only wrapped:
  once per user who may read footage (a key slot, derived from the user's password with Argon2id) and
  once under the recovery key printed at init. Without a password or the recovery key nothing on disk
  decrypts footage: a box stolen while off reveals none.
- The Ed25519 signing key signs what the box must sign while nobody is logged in (requests to cameras,
  audit checkpoints, sync requests). It protects integrity, not confidentiality, so it is kept unwrapped
  in a file readable only by the service user. On the appliance with a TPM2 it is sealed to the TPM2
  instead (image/rootfs/usr/lib/kluis/seal-signing-key: keys/signing.tpm2, the plaintext shredded),
  unsealed into memory at boot and handed by systemd to kluis.service ($CREDENTIALS_DIRECTORY): a disk
  carried away holds no signing key. A key that does not unseal is a stated state, not a dead service
  (SigningKeyUnavailable). See box_signing_key().

A slot stores: Argon2id parameters and salt; a verifier (to check a login without trying the secret);
and, for users who hold one, the private key sealed with SecretBox. One Argon2id run yields both the
wrapping key and the verifier, so a login costs one derivation.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import subprocess
from pathlib import Path

import nacl.exceptions
import nacl.pwhash.argon2id as argon2id
import nacl.secret
import nacl.utils
from nacl.public import PrivateKey
from nacl.signing import SigningKey

from .errors import KluisError, WrongSecret

KDF_PROFILES = {
    # name: (opslimit, memlimit). "interactive" is for tests and small boxes; "moderate" the default.
    "interactive": (argon2id.OPSLIMIT_INTERACTIVE, argon2id.MEMLIMIT_INTERACTIVE),
    "moderate": (argon2id.OPSLIMIT_MODERATE, argon2id.MEMLIMIT_MODERATE),
}
RECOVERY_PREFIX = "KLUIS"


def _derive(password: str, salt: bytes, opslimit: int, memlimit: int) -> tuple[bytes, bytes]:
    material = argon2id.kdf(64, password.encode("utf-8"), salt, opslimit=opslimit, memlimit=memlimit)
    wrap_key, auth_key = material[:32], material[32:]
    return wrap_key, hashlib.blake2b(auth_key, digest_size=32).digest()


def new_slot(password: str, secret: bytes | None, profile: str = "moderate") -> dict:
    """A key slot for a password. `secret` None makes a login-only slot (a user who reads no footage)."""
    if not password:
        raise KluisError("a password may not be empty")
    if profile not in KDF_PROFILES:
        raise KluisError(f"unknown KDF profile {profile!r} (choose {', '.join(KDF_PROFILES)})")
    opslimit, memlimit = KDF_PROFILES[profile]
    salt = nacl.utils.random(argon2id.SALTBYTES)
    wrap_key, verifier = _derive(password, salt, opslimit, memlimit)
    sealed = nacl.secret.SecretBox(wrap_key).encrypt(secret) if secret is not None else None
    return {
        "kdf": "argon2id",
        "opslimit": opslimit,
        "memlimit": memlimit,
        "salt": salt.hex(),
        "verifier": verifier.hex(),
        "sealed": bytes(sealed).hex() if sealed is not None else None,
    }


def open_slot(slot: dict, password: str) -> bytes | None:
    """Check the password and return the wrapped secret (None for a login-only slot)."""
    wrap_key, verifier = _derive(password, bytes.fromhex(slot["salt"]), slot["opslimit"], slot["memlimit"])
    if not hmac.compare_digest(verifier.hex(), slot["verifier"]):
        raise WrongSecret("wrong password")
    if slot.get("sealed") is None:
        return None
    try:
        return nacl.secret.SecretBox(wrap_key).decrypt(bytes.fromhex(slot["sealed"]))
    except nacl.exceptions.CryptoError:
        raise WrongSecret("key slot is damaged") from None


def new_recovery_key() -> str:
    """32 random bytes as grouped base32 with a 2-byte checksum, to be written down on paper."""
    raw = os.urandom(32)
    check = hashlib.blake2b(raw, digest_size=2).digest()
    text = base64.b32encode(raw + check).decode().rstrip("=")
    return RECOVERY_PREFIX + "-" + "-".join(text[i : i + 5] for i in range(0, len(text), 5))


def parse_recovery_key(text: str) -> bytes:
    cleaned = "".join(ch for ch in text.upper() if ch.isalnum())
    if cleaned.startswith(RECOVERY_PREFIX):
        cleaned = cleaned[len(RECOVERY_PREFIX) :]
    try:
        data = base64.b32decode(cleaned + "=" * (-len(cleaned) % 8))
    except ValueError:
        raise WrongSecret("that is not a recovery key (check for typing errors)") from None
    if len(data) != 34 or hashlib.blake2b(data[:32], digest_size=2).digest() != data[32:]:
        raise WrongSecret("that is not a recovery key (check for typing errors)")
    return data[:32]


def _recovery_wrap_key(raw: bytes, salt: bytes) -> bytes:
    # The recovery key has 256 bits of entropy: a keyed hash suffices, no password stretching.
    return hashlib.blake2b(raw, key=salt, digest_size=32, person=b"kluis-recovery").digest()


def new_recovery_slot(recovery_key: str, secret: bytes) -> dict:
    salt = nacl.utils.random(16)
    sealed = nacl.secret.SecretBox(_recovery_wrap_key(parse_recovery_key(recovery_key), salt)).encrypt(secret)
    return {"kdf": "blake2b", "salt": salt.hex(), "sealed": bytes(sealed).hex()}


def open_recovery_slot(slot: dict, recovery_key: str) -> bytes:
    wrap_key = _recovery_wrap_key(parse_recovery_key(recovery_key), bytes.fromhex(slot["salt"]))
    try:
        return nacl.secret.SecretBox(wrap_key).decrypt(bytes.fromhex(slot["sealed"]))
    except nacl.exceptions.CryptoError:
        raise WrongSecret("wrong recovery key") from None


def new_box_identity() -> PrivateKey:
    return PrivateKey.generate()


def write_signing_key(path: Path) -> SigningKey:
    key = SigningKey.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(bytes(key))
        f.flush()
        os.fsync(f.fileno())
    return key


def read_signing_key(path: Path) -> SigningKey:
    try:
        return SigningKey(path.read_bytes())
    except FileNotFoundError:
        raise KluisError(f"signing key missing: {path}") from None
    except (ValueError, TypeError, nacl.exceptions.CryptoError):
        raise KluisError(f"signing key damaged: {path}") from None


SIGNING_CREDENTIAL = "kluis-signing-key"  # its name in kluis.service's LoadCredential=
SEALED_SUFFIX = ".tpm2"  # keys/signing.key sealed to the TPM2: keys/signing.tpm2 (image: tpm2-seal.sh)
# keys/signing.cred: sealed by an earlier image with systemd-creds, whose TPM2 seal the TPM's lockout after
# unclean power-offs stopped; seal-signing-key seals it again as signing.tpm2 at the next boot.
LEGACY_SEALED_SUFFIX = ".cred"
UNSEALED = b"unsealed"  # kluis.service's SetCredential= default when there is no sealed key to load
UNAVAILABLE = b"unavailable:"  # unseal-signing-key's word, followed by why, when the sealed key did not unseal
UNSEAL_HELPER = "/usr/lib/kluis/unseal-signing-key"  # the appliance's; as root, for a keeper's shell
UNSEALED_COPY = Path("/run/kluis-signing-key/signing.key")  # where it leaves the key (a ramfs, root's)
_held: dict[Path, SigningKey] = {}  # keys this process read from a plaintext file, by path


class SigningKeyUnavailable(KluisError):
    """The signing key is sealed to the TPM2 but did not unseal (a cleared TPM2, another board, a changed
    Secure Boot state, a damaged file). Kluis runs on: audit entries wait unsigned (audit.record), the
    overview, `kluis status` and an alert say so; what signs must wait for the key (README, "The audit
    signing key")."""

    def __init__(self, why: str):
        self.why = why
        super().__init__(f"the audit signing key sealed to the TPM2 did not unseal ({why}): audit entries wait "
                         "unsigned and cameras are not offloaded until it is back (restore it from a backup)")


def sealed_path(path: Path) -> Path:
    return Path(path).with_suffix(SEALED_SUFFIX)


def sealed_paths(path: Path) -> tuple[Path, Path]:
    """Where a sealed copy of the key at `path` may lie: this image's, and an earlier image's."""
    return sealed_path(path), Path(path).with_suffix(LEGACY_SEALED_SUFFIX)


def _sealed_copies(path: Path) -> list[Path]:
    return [p for p in sealed_paths(path) if p.exists()]


def _from_credential(seed: bytes, what: str) -> SigningKey:
    if seed.startswith(UNAVAILABLE):
        raise SigningKeyUnavailable(seed[len(UNAVAILABLE):].decode("utf-8", "replace").strip() or "no reason given")
    try:
        return SigningKey(seed)
    except (ValueError, TypeError, nacl.exceptions.CryptoError):
        raise KluisError(f"signing key damaged: {what}") from None


def box_signing_key(path: Path) -> SigningKey:
    """The box's signing key (`path`: DIR/keys/signing.key), from the first place that has it:
    1. $CREDENTIALS_DIRECTORY/kluis-signing-key: the TPM2-sealed key, unsealed for this service (or
       "unavailable: WHY": SigningKeyUnavailable);
    2. the plaintext file `path` (no TPM2, or not sealed yet: the first start after the setup wizard);
    3. the key this process read from `path` before it was sealed and shredded while the process ran;
    4. as root (the keeper's shell on the box), the appliance's unseal-signing-key.
    """
    path = Path(path)
    directory = os.environ.get("CREDENTIALS_DIRECTORY")
    if directory:
        try:
            seed = (Path(directory) / SIGNING_CREDENTIAL).read_bytes()
        except FileNotFoundError:
            seed = UNSEALED
        if seed != UNSEALED:
            if seed.startswith(UNAVAILABLE) and path in _held:
                return _held[path]
            return _from_credential(seed, f"credential {SIGNING_CREDENTIAL}")
    try:
        key = read_signing_key(path)
    except KluisError:
        sealed = _sealed_copies(path)
        if path.exists() or not sealed:
            raise
        if path in _held:
            return _held[path]
        return _unseal_as_root(sealed[0])
    _held[path] = key
    return key


def signing_key_unavailable() -> str | None:
    """Why the sealed signing key did not unseal for this service, or None (it did, or nothing is sealed)."""
    directory = os.environ.get("CREDENTIALS_DIRECTORY")
    if not directory:
        return None
    try:
        seed = (Path(directory) / SIGNING_CREDENTIAL).read_bytes()
    except OSError:
        return None
    if not seed.startswith(UNAVAILABLE):
        return None
    return seed[len(UNAVAILABLE):].decode("utf-8", "replace").strip() or "no reason given"


def _unseal_as_root(sealed: Path) -> SigningKey:
    if os.geteuid() != 0:
        raise KluisError(f"the signing key is sealed to this machine's TPM2 ({sealed}): only kluis.service or "
                         "root can use it (on the box: kluis-cli COMMAND)")
    try:
        subprocess.run([UNSEAL_HELPER], capture_output=True, check=True, timeout=120)
        seed = UNSEALED_COPY.read_bytes()
    except (OSError, subprocess.SubprocessError):
        raise KluisError(f"the signing key sealed to the TPM2 ({sealed}) could not be opened") from None
    return _from_credential(seed, str(UNSEALED_COPY))


def signing_key_sealed(path: Path) -> bool:
    """Whether the box's signing key is held only sealed to the TPM2 (no plaintext copy at `path`)."""
    return bool(_sealed_copies(path)) and not Path(path).exists()


def fingerprint(public_key: bytes) -> str:
    """Short, readable fingerprint of a public key (for pairing screens and logs)."""
    digest = hashlib.sha256(public_key).hexdigest()
    return ":".join(digest[i : i + 4] for i in range(0, 32, 4))
