"""Helpers for the vault tests: sealing and opening whole containers in memory.
(A module of its own, not conftest: test modules import it by this unique name.)"""

from __future__ import annotations

import io

from nacl.public import PrivateKey

from appliance import container

CHUNK = container.MIN_CHUNK_SIZE  # small chunks: many boundaries in little data
STRIDE = CHUNK + container.TAG_SIZE


def seal(plain: bytes, recipients, chunk_size: int = CHUNK, metadata: bytes = b"", **kw) -> bytes:
    enc = container.Encryptor([getattr(r, "public_key", r) for r in recipients], chunk_size=chunk_size,
                              metadata=metadata, **kw)
    # chunks() reuses its buffers: copy each before asking for the next
    return b"".join(bytes(part) for part in enc.stream(io.BytesIO(plain)))


def open_all(data: bytes, identity: PrivateKey) -> bytes:
    src = io.BytesIO(data)
    _, decryptor = container.open_container(src, identity)
    return b"".join(decryptor.stream(src))


def read_range(data: bytes, identity: PrivateKey, start: int, end: int) -> bytes:
    header, decryptor = container.open_container(io.BytesIO(data), identity)
    return b"".join(decryptor.read_range(io.BytesIO(data), len(data) - header.size, start, end,
                                         payload_offset=header.size))
