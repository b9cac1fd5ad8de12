"""Container format v1 (appliance/container.py): round trips, range reads, and every tampering case."""

from __future__ import annotations

import io
import os
import random
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nacl.public import PrivateKey

from appliance import container
from appliance.errors import ContainerError, KluisError, WrongSecret

from vault_helpers import CHUNK, STRIDE, open_all, read_range, seal

MiB = 1024 * 1024
SIZES = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 3 * MiB + 17]


def chunks_of(n: int, chunk: int = CHUNK) -> int:
    return max(1, -(-n // chunk))


# round trips ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("size", SIZES)
def test_round_trip(identity, size):
    plain = os.urandom(size)
    data = seal(plain, [identity], metadata=b'{"camera_serial":"CAM1"}')
    header = container.parse_header(data)
    payload_len = len(data) - header.size
    assert payload_len == size + container.TAG_SIZE * chunks_of(size)
    assert container.plaintext_size(payload_len, CHUNK) == size
    assert container.chunk_count(payload_len, CHUNK) == chunks_of(size)
    assert open_all(data, identity) == plain
    assert header.metadata_json() == {"camera_serial": "CAM1"}


@pytest.mark.parametrize("size", [0, 1, MiB - 1, MiB, MiB + 1, 3 * MiB + 5])
def test_round_trip_default_chunk_size(identity, size):
    plain = os.urandom(size)
    data = seal(plain, [identity], chunk_size=container.DEFAULT_CHUNK_SIZE)
    assert container.parse_header(data).chunk_size == container.DEFAULT_CHUNK_SIZE
    assert open_all(data, identity) == plain


class Trickle(io.RawIOBase):
    """A source that returns short reads of random sizes, like a pipe or a socket."""

    def __init__(self, data: bytes, rng: random.Random):
        self.data, self.pos, self.rng = data, 0, rng

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        n = min(len(buf), self.rng.randint(1, 70_000), len(self.data) - self.pos)
        buf[:n] = self.data[self.pos : self.pos + n]
        self.pos += n
        return n


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(size=st.integers(0, 5 * CHUNK + 3), chunk=st.sampled_from([CHUNK, CHUNK + 1, 100_000, 2 * CHUNK]),
       seed=st.integers(0, 2**32), metadata=st.binary(max_size=64))
def test_round_trip_any_size_and_short_reads(identity, size, chunk, seed, metadata):
    rng = random.Random(seed)
    plain = rng.randbytes(size)
    key, nonce = rng.randbytes(32), rng.randbytes(16)
    data = seal(plain, [identity], chunk_size=chunk, metadata=metadata, file_key=key, nonce=nonce)
    # short reads from the source must not change where chunks are cut
    enc = container.Encryptor([identity.public_key], chunk_size=chunk, metadata=metadata, file_key=key,
                              nonce=nonce)
    trickled = b"".join(bytes(c) for c in enc.chunks(io.BufferedReader(Trickle(plain, rng), 7)))
    header = container.parse_header(data)
    assert trickled == data[header.size:]
    assert header.metadata == metadata
    assert open_all(data, identity) == plain


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(size=st.integers(0, 4 * CHUNK), data=st.data())
def test_read_range_any_range(identity, size, data):
    plain = random.Random(size).randbytes(size)
    sealed = seal(plain, [identity])
    start = data.draw(st.integers(0, size + 2))
    end = data.draw(st.integers(0, size + 2))
    assert read_range(sealed, identity, start, end) == plain[start:end]


def test_read_range_at_every_boundary(identity):
    size = 3 * CHUNK + 5
    plain = os.urandom(size)
    data = seal(plain, [identity])
    points = sorted({p for b in range(0, size + CHUNK, CHUNK) for p in (b - 1, b, b + 1) if 0 <= p}
                    | {size - 1, size, size + 1})
    for start in points:
        for end in points:
            assert read_range(data, identity, start, end) == plain[start:end], (start, end)


def test_read_range_reads_only_covering_chunks(identity):
    """Seeking: a range inside chunk 2 must not touch the other chunks (they are garbage here)."""
    size = 4 * CHUNK
    plain = os.urandom(size)
    data = bytearray(seal(plain, [identity]))
    h = container.parse_header(bytes(data)).size
    for index in (0, 1, 3):
        data[h + index * STRIDE : h + (index + 1) * STRIDE] = os.urandom(STRIDE)
    start, end = 2 * CHUNK + 10, 3 * CHUNK - 10
    assert read_range(bytes(data), identity, start, end) == plain[start:end]
    with pytest.raises(ContainerError, match="chunk 1"):
        read_range(bytes(data), identity, start - CHUNK, end)


def test_read_range_empty_and_out_of_bounds(identity):
    plain = os.urandom(CHUNK + 3)
    data = seal(plain, [identity])
    assert read_range(data, identity, 10, 10) == b""
    assert read_range(data, identity, 20, 10) == b""
    assert read_range(data, identity, -5, 10) == b""
    assert read_range(data, identity, len(plain), len(plain) + 100) == b""
    assert read_range(data, identity, len(plain) - 2, 10**12) == plain[-2:]
    assert read_range(seal(b"", [identity]), identity, 0, 100) == b""


def test_two_recipients_each_open_and_rewrap(identity):
    other = PrivateKey.generate()
    plain = os.urandom(CHUNK + 100)
    data = seal(plain, [identity, other])
    assert open_all(data, identity) == plain == open_all(data, other)
    # rewrap for a third key (the archive): new header, the very same payload chunks
    header = container.parse_header(data)
    file_key = header.unwrap(identity)
    archive = PrivateKey.generate()
    new = header.rewrap(file_key, [archive.public_key])
    assert new.recipients == [bytes(archive.public_key)]
    moved = new.raw + data[header.size:]
    assert open_all(moved, archive) == plain
    with pytest.raises(WrongSecret):
        open_all(moved, identity)
    with pytest.raises(ContainerError):
        header.rewrap(os.urandom(32), [archive.public_key])


def test_wrong_key_is_refused(identity):
    data = seal(b"evidence", [identity])
    with pytest.raises(WrongSecret):
        open_all(data, PrivateKey.generate())


def test_writer_refuses_bad_parameters(identity):
    with pytest.raises(ValueError):
        container.Encryptor([identity.public_key], chunk_size=CHUNK - 1)
    with pytest.raises(ValueError):
        container.Encryptor([identity.public_key], chunk_size=container.MAX_CHUNK_SIZE + 1)
    with pytest.raises(ValueError):
        container.Encryptor([])
    with pytest.raises(ValueError):
        container.Encryptor([identity.public_key] * (container.MAX_RECIPIENTS + 1))
    with pytest.raises(ValueError):
        container.Encryptor([identity.public_key], metadata=b"x" * (container.MAX_METADATA + 1))
    with pytest.raises(ValueError):
        container.Encryptor([b"short"])


def test_metadata_json_errors(identity):
    for meta in (b"not json", b"[1, 2]"):
        header = container.parse_header(seal(b"", [identity], metadata=meta))
        with pytest.raises(ContainerError):
            header.metadata_json()
    assert container.parse_header(seal(b"", [identity])).metadata_json() == {}


def test_memory_is_bounded_by_a_few_chunks(identity, tmp_path):
    """Streaming both ways: 24 MiB through 1 MiB chunks may not hold more than a few chunks at once."""
    chunk = container.DEFAULT_CHUNK_SIZE
    size = 24 * MiB
    src = tmp_path / "plain"
    with open(src, "wb") as f:
        for _ in range(size // MiB):
            f.write(os.urandom(MiB))
    sealed = tmp_path / "sealed"
    tracemalloc.start()
    try:
        enc = container.Encryptor([identity.public_key], chunk_size=chunk)
        with open(src, "rb") as fin, open(sealed, "wb") as fout:
            for part in enc.stream(fin):
                fout.write(part)
        _, enc_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        with open(sealed, "rb") as fin:
            _, dec = container.open_container(fin, identity)
            total = sum(len(block) for block in dec.stream(fin))
        _, dec_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == size
    # a few chunks of buffers (double buffering, read-ahead), never in proportion to the file (24 chunks)
    assert enc_peak < 10 * chunk, enc_peak
    assert dec_peak < 10 * chunk, dec_peak


# tampering --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sample():
    """(identity, plaintext, container) with three full chunks and a short final one, and metadata."""
    ident = PrivateKey.generate()
    plain = os.urandom(3 * CHUNK + 777)
    return ident, plain, seal(plain, [ident], metadata=b'{"camera_serial":"CAM7","recording":"r1"}')


def refuses(data: bytes, identity: PrivateKey) -> None:
    with pytest.raises(ContainerError):
        open_all(data, identity)


def test_sample_is_good(sample):
    ident, plain, data = sample
    assert open_all(data, ident) == plain


def test_truncation_at_every_chunk_boundary(sample):
    ident, _, data = sample
    h = container.parse_header(data).size
    for k in range(0, 4):  # k = 3 drops the final chunk
        refuses(data[: h + k * STRIDE], ident)


def test_truncation_inside_chunks(sample):
    ident, _, data = sample
    h = container.parse_header(data).size
    for cut in (1, 15, 16, 17, STRIDE - 1, STRIDE + 16, 2 * STRIDE + 500, len(data) - h - 1,
                len(data) - h - 16, len(data) - h - 17):
        refuses(data[: h + cut], ident)


def test_truncated_header(sample):
    ident, _, data = sample
    h = container.parse_header(data).size
    for cut in (0, 5, 11, 12, 40, h - 1):
        with pytest.raises(ContainerError):
            container.read_header(io.BytesIO(data[:cut]))
        with pytest.raises(ContainerError):
            container.parse_header(data[:cut])


def test_reordered_swapped_and_duplicated_chunks(sample):
    ident, _, data = sample
    h = container.parse_header(data).size
    head, body = data[:h], data[h:]
    chunks = [body[i : i + STRIDE] for i in range(0, len(body), STRIDE)]
    assert len(chunks) == 4
    variants = {
        "swap 0 and 1": [chunks[1], chunks[0], chunks[2], chunks[3]],
        "swap 1 and 2": [chunks[0], chunks[2], chunks[1], chunks[3]],
        "rotate": chunks[1:3] + [chunks[0], chunks[3]],
        "duplicate 1, drop 2": [chunks[0], chunks[1], chunks[1], chunks[3]],
        "drop 1": [chunks[0], chunks[2], chunks[3]],
        "final moved earlier": [chunks[0], chunks[1], chunks[3], chunks[2]],
    }
    for order in variants.values():
        with pytest.raises(ContainerError):
            open_all(head + b"".join(order), ident)


def test_chunk_from_another_container_with_same_key_is_refused(sample):
    """Same recipient, different file key: a chunk spliced in from another recording fails."""
    ident, plain, data = sample
    other = seal(plain, [ident], metadata=b'{"camera_serial":"CAM7","recording":"r1"}')
    h = container.parse_header(data).size
    refuses(data[: h + STRIDE] + other[h + STRIDE : h + 2 * STRIDE] + data[h + 2 * STRIDE :], ident)


def test_every_header_byte_is_protected(sample):
    """A bit flip anywhere in the header is refused: as damage (ContainerError), or, in the recipient's
    public key, as 'not encrypted to this key' (WrongSecret): the stanza is no longer addressed to us."""
    ident, _, data = sample
    header = container.parse_header(data)
    meta_end = 36 + len(header.metadata)
    pk_range = range(meta_end + 2, meta_end + 2 + 32)
    rng = random.Random(7)
    for pos in range(header.size):
        bad = bytearray(data)
        bad[pos] ^= 1 << rng.randrange(8)
        expected = WrongSecret if pos in pk_range else ContainerError
        with pytest.raises(expected):
            open_all(bytes(bad), ident)
        with pytest.raises(KluisError):
            container.parse_header(bytes(bad)).unwrap(ident)


def test_bit_flips_in_payload_and_tags(sample):
    ident, _, data = sample
    h = container.parse_header(data).size
    positions = []
    for k in range(4):
        start = h + k * STRIDE
        end = min(start + STRIDE, len(data))
        positions += [start, min(start + 1000, end - 17), end - 17, end - 16, end - 1]  # ciphertext and tag bytes
    for pos in positions:
        for bit in (0, 7):
            bad = bytearray(data)
            bad[pos] ^= 1 << bit
            with pytest.raises(ContainerError, match="chunk"):
                open_all(bytes(bad), ident)


def test_trailing_garbage(sample):
    ident, _, data = sample
    h = container.parse_header(data).size
    for tail in (b"\x00", os.urandom(15), os.urandom(16), os.urandom(17), os.urandom(STRIDE),
                 data[h : h + STRIDE], data[-(777 + 16):]):
        refuses(data + tail, ident)


def test_payload_length_rules():
    assert container.plaintext_size(16, CHUNK) == 0  # the empty final chunk
    assert container.plaintext_size(STRIDE, CHUNK) == CHUNK
    assert container.plaintext_size(STRIDE + 17, CHUNK) == CHUNK + 1
    for impossible in (0, 1, 15, STRIDE + 1, STRIDE + 15, STRIDE + 16):
        with pytest.raises(ContainerError):
            container.plaintext_size(impossible, CHUNK)


def test_chunk_nonce_layout():
    assert container.chunk_nonce(0, False) == bytes(12)
    assert container.chunk_nonce(0, True) == bytes(11) + b"\x01"
    assert container.chunk_nonce(258, False) == bytes(9) + b"\x01\x02\x00"


def test_range_read_of_truncated_or_extended_payload_detects_the_end(sample):
    ident, plain, data = sample
    h = container.parse_header(data).size
    cut = data[: h + 3 * STRIDE]  # final chunk dropped: chunk 2 now looks last
    with pytest.raises(ContainerError):
        read_range(cut, ident, 2 * CHUNK, 3 * CHUNK)
    assert read_range(cut, ident, 0, 100) == plain[:100]  # only covering chunks are checked
    longer = data + data[h : h + STRIDE]
    with pytest.raises(ContainerError):
        read_range(longer, ident, 3 * CHUNK, 3 * CHUNK + 10)
