"""What the W800 simulator uploads: clips (real MP4 or Matroska, optionally padded to a size) and their
encryption (the spec's per-clip AES key, wrapped with the destination's RSA key). See simulators/axis/w800.py."""

from __future__ import annotations

import base64
import io
import json
import os
import secrets
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import padding as sym_padding
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from appliance.dock.footage import make_mp4

from .protocol import CHUNK, utc


def encrypted_size(plain_size: int) -> int:
    """AES-CBC with PKCS7 always pads: 1 to 16 bytes."""
    return (plain_size // 16 + 1) * 16


class StreamEncryptor:
    """AES-256-CBC with PKCS7 padding over a stream: the padding comes only at the end, so a clip of any size
    is encrypted a chunk at a time."""

    def __init__(self, key: bytes, iv: bytes):
        self._cipher = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
        self._padder = sym_padding.PKCS7(128).padder()

    def update(self, chunk: bytes) -> bytes:
        return self._cipher.update(self._padder.update(chunk))

    def finalize(self) -> bytes:
        return self._cipher.update(self._padder.finalize()) + self._cipher.finalize()


@dataclass(frozen=True)
class ContentKey:
    """One object's content encryption key and IV (a new pair per clip and per GNSS track)."""

    key: bytes
    iv: bytes

    @classmethod
    def new(cls) -> ContentKey:
        return cls(secrets.token_bytes(32), secrets.token_bytes(16))

    def encrypt(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        encryptor = StreamEncryptor(self.key, self.iv)
        for chunk in chunks:
            if out := encryptor.update(chunk):
                yield out
        yield encryptor.finalize()

    def key_object(self, public_key: rsa.RSAPublicKey, public_key_id: str) -> bytes:
        """The key object's body: the AES key wrapped with RSA-OAEP (SHA-1, as `openssl rsautl -oaep`)."""
        wrapped = public_key.encrypt(self.key, padding.OAEP(mgf=padding.MGF1(hashes.SHA1()),
                                                            algorithm=hashes.SHA1(), label=None))
        return json.dumps({"EncryptedKey": base64.b64encode(wrapped).decode(),
                           "ContentEncryptionIV": base64.b64encode(self.iv).decode(),
                           "PublicKeyId": public_key_id}).encode()


# --- clips -------------------------------------------------------------------------------------------------


def _read_file(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            yield block


def _slices(data: bytes) -> Iterator[bytes]:
    view = memoryview(data)
    for offset in range(0, len(data), CHUNK):
        yield bytes(view[offset : offset + CHUNK])


@dataclass
class ClipSource:
    """A clip's plaintext, readable from the start any number of times: every retry sends the whole clip."""

    size: int
    open: Callable[[], Iterator[bytes]]  # a fresh iterator over the bytes
    seconds: float | None = None  # the clip's length, when known (else probed from `path` or `data`)
    path: Path | None = None
    data: bytes | None = None

    @classmethod
    def from_path(cls, path: str | os.PathLike, seconds: float | None = None) -> ClipSource:
        path = Path(path)
        return cls(path.stat().st_size, lambda: _read_file(path), seconds, path)

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview, seconds: float | None = None) -> ClipSource:
        data = bytes(data)
        return cls(len(data), lambda: _slices(data), seconds, data=data)


def _filler_header(container_type: str, filler: int) -> bytes:
    """The start of a `filler`-byte element that players skip: an MP4 `free` box or a Matroska Void."""
    if container_type == "mp4":
        return (struct.pack(">I4s", filler, b"free") if filler < 2**32
                else struct.pack(">I4sQ", 1, b"free", filler))
    return b"\xec\x01" + (filler - 9).to_bytes(7, "big")  # EBML Void, an 8-byte size (0x01 + 7 bytes)


def padded_clip(data: bytes, filler: int, container_type: str, seconds: float | None = None) -> ClipSource:
    """`data` plus `filler` bytes of an element players skip: clips of any size (benchmarks) without encoding
    minutes of video, and without holding or storing the filler (it is zeros made on the fly)."""
    if filler <= 0:
        return ClipSource.from_bytes(data, seconds)
    filler = max(filler, 16)
    head = _filler_header(container_type, filler)
    zeros = bytes(CHUNK)

    def chunks() -> Iterator[bytes]:
        yield from _slices(data + head)
        left = filler - len(head)
        while left > 0:
            n = min(left, CHUNK)
            yield zeros if n == CHUNK else zeros[:n]
            left -= n

    return ClipSource(len(data) + filler, chunks, seconds)


def remux(mp4: bytes, container_format: str = "matroska") -> bytes:
    """The same H.264 stream in another container, without re-encoding (an mkv W800 records Matroska)."""
    import av  # already loaded by footage; imported here to say where it is used

    out_buf = io.BytesIO()
    with av.open(io.BytesIO(mp4), "r") as source, av.open(out_buf, "w", format=container_format) as out:
        video = source.streams.video[0]
        stream = out.add_stream_from_template(video)
        for packet in source.demux(video):
            if packet.dts is None:  # the demuxer's end-of-stream marker
                continue
            packet.stream = stream
            out.mux(packet)
    return out_buf.getvalue()


def make_clip(seconds: float, started_at: datetime, label: str = "", container_type: str = "mp4",
              filler_bytes: int = 0) -> ClipSource:
    """A real, playable clip made with footage.make_mp4 (the camera clock burnt in, UTC), remuxed to Matroska
    for an mkv destination, optionally padded to a large size. Only the video itself is held in memory."""
    buf = io.BytesIO()
    make_mp4(buf, seconds, utc(started_at).replace(tzinfo=None), label)
    data = buf.getvalue()
    if container_type == "mkv":
        data = remux(data)
    return padded_clip(data, filler_bytes, container_type, seconds)


def probe_seconds(clip: str | os.PathLike | bytes) -> float | None:
    """A clip's length from its container (a file, or the bytes), or None if PyAV cannot read it."""
    import av

    try:
        with av.open(io.BytesIO(clip) if isinstance(clip, bytes) else str(clip), "r") as container:
            if container.duration:
                return container.duration / av.time_base
            video = container.streams.video[0]
            if video.duration and video.time_base:
                return float(video.duration * video.time_base)
    except (av.FFmpegError, IndexError, OSError):
        pass
    return None


# --- bodies, replies, results ------------------------------------------------------------------------------
