"""The age file format (age-encryption.org/v1) for handover packages, streamed with bounded memory.

- To the receiver's X25519 key (`age1...`): pyrage (bindings to rage, the Rust age), whose `encrypt_io`
  and `decrypt_io` stream between file-like objects.
- To a passphrase (the scrypt recipient): pyrage offers only whole-bytes functions for it, which would
  hold a whole package in memory; so this module writes the scrypt stanza, header MAC and STREAM
  payload itself, per the age spec, with `cryptography`'s primitives. The tests decrypt its output with
  the real `age` CLI and with pyrage, and decrypt age's and pyrage's output with it.

Memory: one 64 KiB chunk at a time here; pyrage buffers a few chunks. Nothing is written but `dst`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from typing import BinaryIO, Protocol, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from .errors import KluisError

MAGIC = b"age-encryption.org/v1\n"
CHUNK = 64 * 1024
TAG = 16
SCRYPT_LABEL = b"age-encryption.org/v1/scrypt"
WORK_FACTOR = 18           # log2 of scrypt's N, as the age CLI chooses (about 256 MiB and a second)
MAX_WORK_FACTOR = 22       # refuse headers that would make us spend more (as age does)


class AgeError(KluisError):
    """An age file that cannot be decrypted (wrong key or passphrase, damaged, not age)."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    if "=" in text or any(c in text for c in "\r\n "):
        raise AgeError("not an age file: bad base64 in the header")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except ValueError:
        raise AgeError("not an age file: bad base64 in the header") from None


def _hkdf(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(ikm)


def _scrypt(passphrase: str, salt: bytes, work_factor: int) -> bytes:
    return Scrypt(salt=SCRYPT_LABEL + salt, length=32, n=2 ** work_factor, r=8, p=1).derive(
        passphrase.encode("utf-8"))


def _body_lines(body: bytes) -> bytes:
    text = _b64(body)
    lines = [text[i:i + 64] for i in range(0, len(text), 64)]
    if not lines or len(lines[-1]) == 64:
        lines.append("")  # the body ends with a line shorter than 64 columns
    return "".join(line + "\n" for line in lines).encode()


def generate_passphrase() -> str:
    """A passphrase to read out or print once: 200 random bits as 8 groups of 5 letters and digits
    (base32, no padding), e.g. 'k3d7q-...'. scrypt on top; strength comes from the randomness."""
    text = base64.b32encode(secrets.token_bytes(25)).decode().lower()
    return "-".join(text[i:i + 5] for i in range(0, 40, 5))


# Encryption -------------------------------------------------------------------------------------------

class Writable(Protocol):
    """Where ciphertext goes: a file, or a wrapper that hashes what passes through."""

    def write(self, data: bytes, /) -> object: ...


def encrypt_to_recipient(src: BinaryIO, dst: Writable, recipient: str) -> None:
    """Encrypt `src` (read to its end) to an age X25519 recipient ('age1...') into `dst`, streaming."""
    import pyrage

    try:
        pyrage.encrypt_io(src, dst, [parse_recipient(recipient)])
    except pyrage.EncryptError as exc:
        raise AgeError(f"age encryption failed: {exc}") from None


def parse_recipient(text: str):
    from pyrage import RecipientError, x25519

    try:
        return x25519.Recipient.from_str((text or "").strip())
    except (RecipientError, ValueError):
        raise KluisError(f"not an age public key: {text!r} (it starts with age1)") from None


def encrypt_with_passphrase(src: BinaryIO, dst: Writable, passphrase: str, work_factor: int = WORK_FACTOR) -> None:
    """Encrypt `src` to an age scrypt recipient into `dst`, one 64 KiB chunk at a time."""
    file_key = os.urandom(16)
    salt = os.urandom(16)
    wrapped = ChaCha20Poly1305(_scrypt(passphrase, salt, work_factor)).encrypt(b"\x00" * 12, file_key, None)
    header = MAGIC + f"-> scrypt {_b64(salt)} {work_factor}\n".encode() + _body_lines(wrapped) + b"---"
    mac = hmac.new(_hkdf(file_key, b"", b"header"), header, hashlib.sha256).digest()
    nonce = os.urandom(16)
    dst.write(header + b" " + _b64(mac).encode() + b"\n" + nonce)
    aead = ChaCha20Poly1305(_hkdf(file_key, nonce, b"payload"))
    counter = 0
    chunk = _read_full(src, CHUNK)
    while True:
        following = _read_full(src, CHUNK) if len(chunk) == CHUNK else b""
        last = not following
        dst.write(aead.encrypt(counter.to_bytes(11, "big") + (b"\x01" if last else b"\x00"), chunk, None))
        if last:
            return
        chunk, counter = following, counter + 1


def _read_full(src: BinaryIO, n: int) -> bytes:
    """Exactly n bytes unless the stream ends (pipes return short reads)."""
    parts, have = [], 0
    while have < n:
        part = src.read(n - have)
        if not part:
            break
        parts.append(part)
        have += len(part)
    return b"".join(parts)


# Decryption -------------------------------------------------------------------------------------------

def is_age(prefix: bytes) -> bool:
    return prefix.startswith(MAGIC) or prefix.startswith(b"-----BEGIN AGE ENCRYPTED FILE-----")


def read_identities(path) -> list[str]:
    """AGE-SECRET-KEY-1... lines of an identity file as age-keygen writes it (comments skipped)."""
    try:
        lines = open(path, encoding="utf-8").read().splitlines()
    except OSError as exc:
        raise KluisError(f"cannot read {path}: {exc.strerror}") from None
    found = [line.strip() for line in lines if line.strip().startswith("AGE-SECRET-KEY-")]
    if not found:
        raise KluisError(f"{path}: no age identity in it (AGE-SECRET-KEY-1...)")
    return found


def decrypt(src: BinaryIO, dst: BinaryIO, identities: Sequence[str] = (), passphrase: str | None = None) -> None:
    """Decrypt an age file to `dst`, streaming: with X25519 identities (pyrage) or a passphrase."""
    if passphrase is not None:
        return decrypt_with_passphrase(src, dst, passphrase)
    import pyrage
    from pyrage import x25519

    try:
        keys = [x25519.Identity.from_str(text) for text in identities]
    except (pyrage.IdentityError, ValueError):
        raise KluisError("not an age identity (AGE-SECRET-KEY-1...)") from None
    if not keys:
        raise KluisError("the package is age-encrypted: give --identity FILE or --passphrase-file FILE")
    try:
        pyrage.decrypt_io(src, dst, keys)
    except pyrage.DecryptError as exc:
        raise AgeError(f"cannot decrypt the package with this identity: {exc}") from None
    except OSError as exc:  # a damaged payload surfaces from rage's reader as an I/O error
        raise AgeError(f"cannot decrypt the package: it is damaged or cut off ({exc})") from None


def _read_line(src: BinaryIO, limit: int = 4096) -> bytes:
    line = bytearray()
    while not line.endswith(b"\n"):
        byte = src.read(1)
        if not byte or len(line) > limit:
            raise AgeError("not an age file: the header is cut off or malformed")
        line += byte
    return bytes(line)


def decrypt_with_passphrase(src: BinaryIO, dst: BinaryIO, passphrase: str) -> None:
    """The scrypt recipient, per the age spec: header, MAC, then the STREAM payload chunk by chunk."""
    header = bytearray(_read_line(src))
    if bytes(header) != MAGIC:
        raise AgeError("not an age file (or an armored one: decrypt it with age first)")
    stanzas = []
    while True:
        line = _read_line(src)
        if line.startswith(b"---"):
            header += b"---"
            mac_text = line[3:].strip().decode("ascii", "replace")
            break
        if not line.startswith(b"-> "):
            raise AgeError("not an age file: malformed header")
        header += line
        args = line[3:-1].decode("ascii", "replace").split(" ")
        body = b""
        while True:
            body_line = _read_line(src)
            header += body_line
            body += body_line[:-1]
            if len(body_line) - 1 < 64:
                break
        stanzas.append((args, _unb64(body.decode("ascii", "replace"))))
    scrypt_stanzas = [(a, b) for a, b in stanzas if a and a[0] == "scrypt"]
    if not scrypt_stanzas:
        raise AgeError("the package is not encrypted to a passphrase: use --identity FILE")
    if len(stanzas) != 1:
        raise AgeError("malformed age header: a scrypt stanza must be the only one")
    args, body = scrypt_stanzas[0]
    if len(args) != 3 or not args[2].isdigit() or str(int(args[2])) != args[2]:
        raise AgeError("malformed scrypt stanza")
    salt, work_factor = _unb64(args[1]), int(args[2])
    if len(salt) != 16 or not 0 < work_factor <= MAX_WORK_FACTOR or len(body) != 32:
        raise AgeError("malformed scrypt stanza (or a work factor above 2^22)")
    try:
        file_key = ChaCha20Poly1305(_scrypt(passphrase, salt, work_factor)).decrypt(b"\x00" * 12, body, None)
    except InvalidTag:
        raise AgeError("wrong passphrase") from None
    mac = hmac.new(_hkdf(file_key, b"", b"header"), bytes(header), hashlib.sha256).digest()
    if not hmac.compare_digest(_b64(mac), mac_text):
        raise AgeError("the age header was changed (its MAC does not match)")
    nonce = _read_full(src, 16)
    if len(nonce) != 16:
        raise AgeError("the age file is cut off")
    aead = ChaCha20Poly1305(_hkdf(file_key, nonce, b"payload"))
    counter = 0
    sealed = _read_full(src, CHUNK + TAG)
    while True:
        following = _read_full(src, CHUNK + TAG) if len(sealed) == CHUNK + TAG else b""
        last = not following
        if len(sealed) < TAG or (last and counter > 0 and len(sealed) == TAG):
            raise AgeError("the age file is cut off or damaged")
        try:
            plain = aead.decrypt(counter.to_bytes(11, "big") + (b"\x01" if last else b"\x00"), sealed, None)
        except InvalidTag:
            raise AgeError(f"the age file is damaged (chunk {counter} fails authentication)") from None
        dst.write(plain)
        if last:
            return
        sealed, counter = following, counter + 1
