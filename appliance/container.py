"""The recording container, format version 1 (specified in docs/format.md).

A container is an authenticated header followed by the payload cut into fixed-size chunks, each sealed
with ChaCha20-Poly1305 under a STREAM nonce (chunk counter + last-chunk flag, as in age). The random
file key is wrapped per recipient with a libsodium sealed box, so writing a container needs only the
recipients' public keys: a camera can produce it without any secret of the box.

This module is pure: it encrypts and decrypts streams and parses bytes. Where the bytes live, and
who may read them, is the vault's and the catalog's business.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import os
import queue
import struct
import threading
from dataclasses import dataclass
from typing import BinaryIO, Iterator, Protocol, Sequence

import nacl.exceptions
from nacl.public import PrivateKey, PublicKey, SealedBox

from .errors import ContainerError, WrongSecret

MAGIC = b"KLUISv1\n"
PREFIX = struct.Struct(">8sI")  # magic, total header length
FIXED = struct.Struct(">I16sI")  # chunk size, payload nonce, metadata length
COUNT = struct.Struct(">H")  # number of recipient stanzas
KEY_SIZE = 32
TAG_SIZE = 16
SEALED_KEY_SIZE = 80  # crypto_box_SEALBYTES (48) + 32-byte file key
STANZA_SIZE = 32 + SEALED_KEY_SIZE  # recipient public key, sealed file key
MAC_SIZE = 32

MIN_CHUNK_SIZE = 64 * 1024
MAX_CHUNK_SIZE = 4 * 1024 * 1024
DEFAULT_CHUNK_SIZE = 1024 * 1024  # chosen by bench/: see docs/format.md
READAHEAD = 2  # chunks Encryptor.chunks seals ahead of its consumer
_END = object()
MAX_RECIPIENTS = 16
MAX_METADATA = 64 * 1024
MIN_HEADER = PREFIX.size + FIXED.size + COUNT.size + STANZA_SIZE + MAC_SIZE
MAX_HEADER = PREFIX.size + FIXED.size + MAX_METADATA + COUNT.size + MAX_RECIPIENTS * STANZA_SIZE + MAC_SIZE

_HEADER_INFO = b"kluis/v1 header"
_PAYLOAD_INFO = b"kluis/v1 payload"


# cryptography (~8 MB resident, ~15 ms) is loaded on first use rather than at import: commands that only
# read the catalog or log in (Argon2id's work area on top) start faster and stay smaller.
def _hkdf(key: bytes, salt: bytes, info: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(key)


def _payload_aead(file_key: bytes, nonce: bytes):
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

    return ChaCha20Poly1305(_hkdf(file_key, nonce, _PAYLOAD_INFO))


def chunk_nonce(index: int, last: bool) -> bytes:
    """STREAM nonce: 11-byte big-endian chunk counter, then 0x01 for the final chunk, else 0x00."""
    return index.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


def _public_bytes(key: PublicKey | bytes) -> bytes:
    raw = bytes(key)
    if len(raw) != 32:
        raise ValueError("a recipient is a 32-byte X25519 public key")
    return raw


@dataclass(frozen=True)
class Header:
    """A parsed container header. `raw` is exactly the bytes on the wire, MAC included."""

    raw: bytes
    chunk_size: int
    nonce: bytes
    metadata: bytes
    stanzas: tuple[tuple[bytes, bytes], ...]  # (recipient public key, sealed file key)

    @property
    def size(self) -> int:
        return len(self.raw)

    @property
    def recipients(self) -> list[bytes]:
        return [pk for pk, _ in self.stanzas]

    def metadata_json(self) -> dict:
        if not self.metadata:
            return {}
        try:
            value = json.loads(self.metadata)
        except ValueError as exc:
            raise ContainerError(f"container metadata is not JSON: {exc}") from None
        if not isinstance(value, dict):
            raise ContainerError("container metadata is not a JSON object")
        return value

    def verify(self, file_key: bytes) -> None:
        """Check the header MAC: proves the header was written by whoever made this file key."""
        mac_key = _hkdf(file_key, b"", _HEADER_INFO)
        expected = hmac.new(mac_key, self.raw[:-MAC_SIZE], hashlib.sha256).digest()
        if not hmac.compare_digest(expected, self.raw[-MAC_SIZE:]):
            raise ContainerError("header authentication failed (header altered)")

    def unwrap(self, identity: PrivateKey) -> bytes:
        """Recover the file key with a recipient's private key and authenticate the header."""
        mine = bytes(identity.public_key)
        for recipient, sealed in self.stanzas:
            if recipient == mine:
                try:
                    file_key = SealedBox(identity).decrypt(sealed)
                except nacl.exceptions.CryptoError:
                    raise ContainerError("wrapped file key does not open (damaged key stanza)") from None
                self.verify(file_key)
                return file_key
        raise WrongSecret("this recording is not encrypted to this key")

    def rewrap(self, file_key: bytes, recipients: Sequence[PublicKey | bytes]) -> Header:
        """The same payload for other recipients (e.g. the archive): a new header, same chunks."""
        self.verify(file_key)
        return seal_header(file_key, recipients, self.chunk_size, self.metadata, self.nonce)


def header_length(prefix: bytes) -> int:
    """Total header length from the first PREFIX.size bytes, with sanity limits."""
    if len(prefix) < PREFIX.size:
        raise ContainerError("too short to be a Kluis container")
    magic, length = PREFIX.unpack_from(prefix)
    if magic != MAGIC:
        raise ContainerError("not a Kluis container (bad magic)")
    if not MIN_HEADER <= length <= MAX_HEADER:
        raise ContainerError(f"corrupt header (length {length} out of range)")
    return length


def parse_header(raw: bytes) -> Header:
    """Parse exactly one header (`raw` may be longer; the rest is ignored)."""
    length = header_length(raw)
    if len(raw) < length:
        raise ContainerError("truncated header")
    raw = bytes(raw[:length])
    pos = PREFIX.size
    chunk_size, nonce, meta_len = FIXED.unpack_from(raw, pos)
    pos += FIXED.size
    if not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE:
        raise ContainerError(f"corrupt header (chunk size {chunk_size} out of range)")
    if meta_len > MAX_METADATA:
        raise ContainerError("corrupt header (metadata too long)")
    metadata = raw[pos : pos + meta_len]
    pos += meta_len
    if pos + COUNT.size > length:
        raise ContainerError("corrupt header (fields overrun its length)")
    (count,) = COUNT.unpack_from(raw, pos)
    pos += COUNT.size
    if not 1 <= count <= MAX_RECIPIENTS:
        raise ContainerError(f"corrupt header ({count} recipients)")
    if pos + count * STANZA_SIZE + MAC_SIZE != length:
        raise ContainerError("corrupt header (length does not match its fields)")
    stanzas = []
    for _ in range(count):
        stanzas.append((raw[pos : pos + 32], raw[pos + 32 : pos + STANZA_SIZE]))
        pos += STANZA_SIZE
    return Header(raw, chunk_size, nonce, metadata, tuple(stanzas))


def read_header(src: Readable) -> Header:
    prefix = _read_exact(src, PREFIX.size)
    length = header_length(prefix)
    return parse_header(prefix + _read_exact(src, length - PREFIX.size))


def seal_header(
    file_key: bytes,
    recipients: Sequence[PublicKey | bytes],
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    metadata: bytes = b"",
    nonce: bytes | None = None,
) -> Header:
    if len(file_key) != KEY_SIZE:
        raise ValueError("file key must be 32 bytes")
    if not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE:
        raise ValueError(f"chunk size must be between {MIN_CHUNK_SIZE} and {MAX_CHUNK_SIZE}")
    if not 1 <= len(recipients) <= MAX_RECIPIENTS:
        raise ValueError(f"a container has 1 to {MAX_RECIPIENTS} recipients")
    if len(metadata) > MAX_METADATA:
        raise ValueError("metadata too long")
    nonce = nonce if nonce is not None else os.urandom(16)
    body = bytearray(FIXED.pack(chunk_size, nonce, len(metadata)))
    body += metadata
    body += COUNT.pack(len(recipients))
    for recipient in recipients:
        raw_pk = _public_bytes(recipient)
        body += raw_pk + SealedBox(PublicKey(raw_pk)).encrypt(file_key)
    length = PREFIX.size + len(body) + MAC_SIZE
    unsigned = PREFIX.pack(MAGIC, length) + bytes(body)
    mac = hmac.new(_hkdf(file_key, b"", _HEADER_INFO), unsigned, hashlib.sha256).digest()
    return parse_header(unsigned + mac)


def plaintext_size(payload_len: int, chunk_size: int) -> int:
    """Plaintext length from the payload's ciphertext length; rejects impossible lengths."""
    stride = chunk_size + TAG_SIZE
    full, rest = divmod(payload_len, stride)
    if rest == 0:
        if full == 0:
            raise ContainerError("truncated: no payload")
        return full * chunk_size
    if rest < TAG_SIZE:
        raise ContainerError("truncated payload (partial chunk)")
    if rest == TAG_SIZE and full > 0:
        raise ContainerError("corrupt payload (empty final chunk)")
    return full * chunk_size + rest - TAG_SIZE


def chunk_count(payload_len: int, chunk_size: int) -> int:
    return -(-payload_len // (chunk_size + TAG_SIZE))


class Readable(Protocol):
    """What a container is read from: a file, or a wrapper that hashes what passes through."""

    def read(self, size: int = ..., /) -> bytes: ...


class ReadableInto(Protocol):
    """What plaintext is sealed from: a file, a pipe, or a wrapper that hashes what passes through."""

    def readinto(self, buffer: memoryview, /) -> int | None: ...


def _read_exact(src: Readable, n: int) -> bytes:
    data = src.read(n)
    while len(data) < n:
        more = src.read(n - len(data))
        if not more:
            raise ContainerError("truncated container")
        data += more
    return data


def _fill(src: ReadableInto, buf: bytearray) -> int:
    """Read until `buf` is full or the source ends (pipes and sockets return short reads)."""
    view = memoryview(buf)
    got = 0
    while got < len(buf):
        n = src.readinto(view[got:])
        if not n:
            break
        got += n
    return got


class Encryptor:
    """Streams plaintext into a container. Needs only public keys; memory is a few chunks."""

    def __init__(
        self,
        recipients: Sequence[PublicKey | bytes],
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        metadata: bytes = b"",
        file_key: bytes | None = None,
        nonce: bytes | None = None,
    ):
        self.file_key = file_key if file_key is not None else os.urandom(KEY_SIZE)
        self.header = seal_header(self.file_key, recipients, chunk_size, metadata, nonce)
        self._aead = _payload_aead(self.file_key, self.header.nonce)

    def chunks(self, src: ReadableInto, *, readahead: bool = True) -> Iterator[memoryview]:
        """Yield the sealed chunks of `src` (not the header). Each view stays valid until the item after
        the next one is requested. Output buffers are reused, so nothing is allocated per chunk.

        With `readahead`, a helper thread reads and seals up to READAHEAD chunks ahead of the consumer:
        file reads and ChaCha20Poly1305 release the GIL, so they run on the second core while the
        consumer hashes and writes (bench/bench_import.py). `src` is then read only by that thread until
        the iterator ends or is closed."""
        if not readahead:
            outputs = [bytearray(self.header.chunk_size + TAG_SIZE) for _ in range(2)]
            yield from self._seal(src, itertools.cycle(outputs).__next__)
            return
        yield from self._chunks_ahead(src)

    def _seal(self, src: ReadableInto, next_output) -> Iterator[memoryview]:
        """Seal chunk after chunk into buffers from `next_output()`; stops early if it returns None."""
        size = self.header.chunk_size
        inputs = [bytearray(size), bytearray(size)]
        cur, index = 0, 0
        n = _fill(src, inputs[0])
        while True:
            # The last-chunk flag needs to know whether more follows: read one chunk ahead.
            nxt = _fill(src, inputs[1 - cur]) if n == size else 0
            last = nxt == 0
            output = next_output()
            if output is None:
                return
            out = memoryview(output)[: n + TAG_SIZE]
            self._aead.encrypt_into(chunk_nonce(index, last), memoryview(inputs[cur])[:n], None, out)
            yield out
            if last:
                return
            cur, n, index = 1 - cur, nxt, index + 1

    def _chunks_ahead(self, src: ReadableInto) -> Iterator[memoryview]:
        # A ring of READAHEAD + 2 output buffers: two held by the consumer (the current view and the one
        # before it), the rest filled ahead by the producer. Memory stays at a few chunks.
        free: queue.SimpleQueue = queue.SimpleQueue()
        for _ in range(READAHEAD + 2):
            free.put(bytearray(self.header.chunk_size + TAG_SIZE))
        ready: queue.SimpleQueue = queue.SimpleQueue()
        stop = threading.Event()

        def next_output():
            output = free.get()
            return None if stop.is_set() else output

        def produce() -> None:
            try:
                for view in self._seal(src, next_output):
                    ready.put(view)
                ready.put(_END)
            except BaseException as exc:  # handed to the consumer, raised there
                ready.put(exc)

        producer = threading.Thread(target=produce, name="kluis-seal", daemon=True)
        producer.start()
        held: list[bytearray] = []
        try:
            while (item := ready.get()) is not _END:
                if isinstance(item, BaseException):
                    raise item
                held.append(item.obj)
                yield item
                if len(held) == 2:  # the consumer asks for the next view: the one before last is free
                    free.put(held.pop(0))
        finally:
            stop.set()
            free.put(None)  # wakes the producer if it waits for a buffer
            producer.join()

    def stream(self, src: ReadableInto) -> Iterator[bytes | memoryview]:
        """The whole container: header, then chunks."""
        yield self.header.raw
        yield from self.chunks(src)


class Decryptor:
    """Opens the chunks of one container, sequentially or by plaintext byte range."""

    def __init__(self, header: Header, file_key: bytes):
        self.header = header
        self.chunk_size = header.chunk_size
        self._aead = _payload_aead(file_key, header.nonce)

    def open_chunk(self, index: int, sealed: bytes | memoryview, last: bool) -> bytes:
        from cryptography.exceptions import InvalidTag

        try:
            return self._aead.decrypt(chunk_nonce(index, last), sealed, None)
        except InvalidTag:
            raise ContainerError(
                f"chunk {index} failed authentication (altered, reordered, swapped or truncated)"
            ) from None

    def stream(self, payload: Readable) -> Iterator[bytes]:
        """Decrypt from the current position to the end; truncation and trailing data are errors."""
        stride = self.chunk_size + TAG_SIZE
        index = 0
        sealed = payload.read(stride)
        while True:
            following = payload.read(stride) if len(sealed) == stride else b""
            last = not following
            if len(sealed) < TAG_SIZE or (last and index > 0 and len(sealed) == TAG_SIZE):
                raise ContainerError("truncated or corrupt payload")
            yield self.open_chunk(index, sealed, last)
            if last:
                return
            sealed, index = following, index + 1

    def read_range(
        self, payload: BinaryIO, payload_len: int, start: int, end: int, payload_offset: int = 0
    ) -> Iterator[bytes]:
        """Plaintext bytes [start, end) reading only the chunks that cover them (for video seeking)."""
        size = plaintext_size(payload_len, self.chunk_size)
        end = min(end, size)
        if start < 0 or start >= end:
            return
        stride = self.chunk_size + TAG_SIZE
        total = chunk_count(payload_len, self.chunk_size)
        first, final = start // self.chunk_size, (end - 1) // self.chunk_size
        for index in range(first, final + 1):
            payload.seek(payload_offset + index * stride)
            sealed = _read_exact(payload, min(stride, payload_len - index * stride))
            plain = self.open_chunk(index, sealed, index == total - 1)
            base = index * self.chunk_size
            yield plain[max(start - base, 0) : min(end - base, len(plain))]


def open_container(src: BinaryIO, identity: PrivateKey) -> tuple[Header, Decryptor]:
    """Read the header of a whole container file and unwrap its file key; `src` is left at the payload."""
    header = read_header(src)
    return header, Decryptor(header, header.unwrap(identity))
