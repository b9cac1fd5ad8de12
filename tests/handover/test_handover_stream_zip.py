"""Verifying an encrypted package reads its ZIP as a stream (appliance.package_verify._scan_zip): members written
as a stream end at a data descriptor that must be told apart from footage bytes that look like one."""

from __future__ import annotations

import hashlib
import io
import os
import struct
import zipfile
import zlib

import pytest

from appliance import package, package_verify
from appliance.errors import KluisError


class Unseekable(io.RawIOBase):
    """A pipe-like sink: zipfile then writes each member as a stream (with a data descriptor)."""

    def __init__(self):
        self.data = bytearray()

    def writable(self):
        return True

    def write(self, b):
        self.data += b
        return len(b)


def tricky(size: int) -> bytes:
    """Random bytes holding descriptor signatures, one followed by a descriptor that has the right size at
    that point but the wrong CRC, and one straddling the reader's 1 MiB blocks."""
    data = bytearray(os.urandom(size))
    data[100:104] = b"PK\x07\x08"
    data[5000:5004] = b"PK\x07\x08"
    data[5004:5016] = struct.pack("<LLL", zlib.crc32(b"wrong"), 5000, 5000)
    edge = package.READ_BLOCK - 2
    data[edge:edge + 4] = b"PK\x07\x08"
    return bytes(data)


def test_scan_finds_every_member_and_its_hash():
    members = {"01-a.mp4": tricky(package.READ_BLOCK + 70_000), "02-b.mp4": tricky(9000), "empty.csv": b"",
               "manifest.json": b'{"format": "kluis-handover/1"}\n', "SHA256SUMS": b"x" * 10}
    sink = Unseekable()
    with zipfile.ZipFile(sink, "w") as zf:
        for name, data in members.items():
            info = zipfile.ZipInfo(name)
            info.file_size = len(data)
            with zf.open(info, "w", force_zip64=name == "02-b.mp4") as f:
                f.write(data)
    source = package_verify._StreamedSource()
    package_verify._scan_zip(io.BytesIO(bytes(sink.data)), source)
    assert source.digests == {n: (hashlib.sha256(d).hexdigest(), len(d)) for n, d in members.items()}
    assert source.kept == {"manifest.json": members["manifest.json"], "SHA256SUMS": members["SHA256SUMS"]}
    assert source.damaged == []


def test_a_cut_off_zip_is_an_error():
    sink = Unseekable()
    with zipfile.ZipFile(sink, "w") as zf:
        with zf.open("a.mp4", "w") as f:
            f.write(os.urandom(50_000))
    with pytest.raises(KluisError, match="cut off"):
        package_verify._scan_zip(io.BytesIO(bytes(sink.data[:30_000])), package_verify._StreamedSource())
