"""The optional end-to-end layer of the Axis API (`WantEncryption`): the box's RSA transport key,
key objects, and AES-256-CBC decryption while a clip streams in.

Why the private key is kept unwrapped (like the TLS key, readable only by the service): it protects
the clip on its way from the W800, not at rest. Kluis never stores the Axis ciphertext with its key:
a clip is decrypted in memory while it is sealed into the Kluis container (docs/format.md, "Axis
clips"), and the key object itself is never written to disk. What rests on the disk is sealed to the
box's X25519 key, whose private half exists only wrapped in the key slots.

Key object (JSON body): {"EncryptedKey": base64 RSA-OAEP(SHA-1) of the 32-byte AES key,
"ContentEncryptionIV": base64 16-byte IV, "PublicKeyId": ...}; the content is AES-256-CBC with PKCS#7
padding (what `openssl enc -aes-256-cbc` writes, as Axis's own decrypt script shows).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, overload

from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.padding import MGF1, OAEP
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from ..durable import write_atomic
from .spec import MAX_SMALL_BODY, AxisError

KEY_FILE = "keys/axis-transport.pem"
KEY_BITS = 3072


def _write_private(path: Path, key: rsa.RSAPrivateKey) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_atomic(path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption()), 0o600)


@overload
def transport_key(data_dir: Path, create: Literal[True]) -> rsa.RSAPrivateKey: ...
@overload
def transport_key(data_dir: Path, create: bool = False) -> rsa.RSAPrivateKey | None: ...
def transport_key(data_dir: Path, create: bool = False) -> rsa.RSAPrivateKey | None:
    """The box's RSA transport key; made on first use when `create`."""
    path = Path(data_dir) / KEY_FILE
    if not path.exists():
        if not create:
            return None
        _write_private(path, rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS))
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise AxisError(500, f"{path} holds no RSA key")
    return key


def public_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def key_id(key: rsa.RSAPrivateKey) -> str:
    """A short, stable name of the public key: what PublicKeyId carries, so a rotated key can be told."""
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "kluis-" + hashlib.sha256(der).hexdigest()[:16]


_OAEP = OAEP(mgf=MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(), label=None)


@dataclass(frozen=True)
class ContentKey:
    key: bytes
    iv: bytes


def unwrap_key_object(body: bytes, private_key: rsa.RSAPrivateKey | None) -> ContentKey:
    """The AES key and IV of a key object; AxisError(400) when it is not one or does not unwrap."""
    if private_key is None:
        raise AxisError(400, "key object: this destination did not ask for encryption (no transport key)")
    if len(body) > MAX_SMALL_BODY:
        raise AxisError(400, "key object: too large")
    try:
        doc = json.loads(body)
        wrapped = base64.b64decode(doc["EncryptedKey"], validate=True)
        iv = base64.b64decode(doc["ContentEncryptionIV"], validate=True)
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
        raise AxisError(400, "key object: not the JSON the spec gives (EncryptedKey, ContentEncryptionIV)") from None
    if len(iv) != 16:
        raise AxisError(400, "key object: the IV is not 16 bytes")
    try:
        key = private_key.decrypt(wrapped, _OAEP)
    except ValueError:
        raise AxisError(400, "key object: the key does not unwrap with this box's transport key") from None
    if len(key) != 32:
        raise AxisError(400, "key object: not an AES-256 key")
    return ContentKey(key, iv)


class CbcStream:
    """Decrypts AES-256-CBC piece by piece; `finish()` checks and strips the PKCS#7 padding."""

    def __init__(self, content_key: ContentKey):
        self._dec = Cipher(algorithms.AES(content_key.key), modes.CBC(content_key.iv)).decryptor()
        self._unpad = padding.PKCS7(128).unpadder()

    def update(self, data: bytes | memoryview) -> bytes:
        return self._unpad.update(self._dec.update(data))

    def finish(self) -> bytes:
        try:
            return self._unpad.update(self._dec.finalize()) + self._unpad.finalize()
        except ValueError:
            raise AxisError(400, "encrypted object: not a whole number of AES blocks, or bad padding "
                                 "(a wrong key?)") from None


def decrypt_small(body: bytes, content_key: ContentKey) -> bytes:
    stream = CbcStream(content_key)
    return stream.update(body) + stream.finish()
