"""The box's keys and the key slots that guard them.

- The X25519 key pair is the recipient of every recording. Its private half exists on disk only wrapped:
  once per user who may read footage (a key slot, derived from the user's password with Argon2id) and
  once under the recovery key printed at init. Without a password or the recovery key nothing on disk
  decrypts footage: a box stolen while off reveals none.
- The Ed25519 signing key signs what the box must sign while nobody is logged in (requests to cameras,
  audit checkpoints, sync requests). It protects integrity, not confidentiality, so it is kept unwrapped
  in a file readable only by the service user. On the appliance with a TPM2 it is sealed to the TPM2
  instead (image/rootfs/usr/lib/kluis/seal-signing-key: keys/signing.cred, the plaintext shredded), and
  systemd hands it to kluis.service decrypted, in memory ($CREDENTIALS_DIRECTORY): a disk carried away
  holds no signing key. See box_signing_key().

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


SIGNING_CREDENTIAL = "kluis-signing-key"  # its name in kluis.service's LoadCredentialEncrypted=
SEALED_SUFFIX = ".cred"  # keys/signing.key sealed to the TPM2: keys/signing.cred (systemd-creds encrypt)
UNSEALED = b"unsealed"  # kluis.service's SetCredential= default when there is no sealed key to load
_held: dict[Path, SigningKey] = {}  # keys this process read from a plaintext file, by path


def sealed_path(path: Path) -> Path:
    return Path(path).with_suffix(SEALED_SUFFIX)


def box_signing_key(path: Path) -> SigningKey:
    """The box's signing key (`path`: DIR/keys/signing.key), from the first place that has it:
    1. $CREDENTIALS_DIRECTORY/kluis-signing-key: systemd decrypted the TPM2-sealed key for this service;
    2. the plaintext file `path` (no TPM2, or not sealed yet: the first start after the setup wizard);
    3. the key this process read from `path` before it was sealed and shredded while the process ran;
    4. as root (the keeper's shell on the box), `systemd-creds decrypt` of the sealed copy.
    """
    path = Path(path)
    directory = os.environ.get("CREDENTIALS_DIRECTORY")
    if directory:
        try:
            seed = (Path(directory) / SIGNING_CREDENTIAL).read_bytes()
        except FileNotFoundError:
            seed = UNSEALED
        if seed != UNSEALED:
            try:
                return SigningKey(seed)
            except (ValueError, TypeError, nacl.exceptions.CryptoError):
                raise KluisError(f"signing key damaged: credential {SIGNING_CREDENTIAL}") from None
    try:
        key = read_signing_key(path)
    except KluisError:
        if path.exists() or not sealed_path(path).exists():
            raise
        if path in _held:
            return _held[path]
        return _decrypt_sealed(sealed_path(path))
    _held[path] = key
    return key


def _decrypt_sealed(sealed: Path) -> SigningKey:
    if os.geteuid() != 0:
        raise KluisError(f"the signing key is sealed to this machine's TPM2 ({sealed}): only kluis.service or "
                         "root can use it (on the box: kluis-cli COMMAND)")
    try:
        seed = subprocess.run(["systemd-creds", "decrypt", f"--name={SIGNING_CREDENTIAL}", str(sealed), "-"],
                              capture_output=True, check=True, timeout=60).stdout
        return SigningKey(seed)
    except (OSError, subprocess.SubprocessError, ValueError, TypeError, nacl.exceptions.CryptoError):
        raise KluisError(f"the signing key sealed to the TPM2 ({sealed}) could not be opened") from None


def signing_key_sealed(path: Path) -> bool:
    """Whether the box's signing key is held only sealed to the TPM2 (no plaintext copy at `path`)."""
    return sealed_path(path).exists() and not Path(path).exists()


def fingerprint(public_key: bytes) -> str:
    """Short, readable fingerprint of a public key (for pairing screens and logs)."""
    digest = hashlib.sha256(public_key).hexdigest()
    return ":".join(digest[i : i + 4] for i in range(0, 32, 4))
