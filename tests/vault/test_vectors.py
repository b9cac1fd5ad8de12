"""The committed test vectors (tests/vectors/, made once by generate.py) open with today's code, and
every negative case derived from them is refused. If this fails after a change to appliance/container.py,
the change broke format v1: recordings already on boxes and cameras would no longer open."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import pytest
from nacl.public import PrivateKey

from appliance import container
from appliance.errors import ContainerError
from appliance.vault import Vault

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
DOC = json.loads((VECTORS / "vectors.json").read_text())
BY_NAME = {v["name"]: v for v in DOC["vectors"]}


def vector_bytes(vec: dict) -> bytes:
    return (VECTORS / vec["file"]).read_bytes()


def vector_plaintext(vec: dict) -> bytes:
    assert vec["plaintext"]["recipe"] == "shake_128(b'kluis/v1 test vector').digest(length)"
    return hashlib.shake_128(b"kluis/v1 test vector").digest(vec["plaintext"]["length"])


def decrypt(data: bytes, identity: PrivateKey) -> bytes:
    header, decryptor = container.open_container(io.BytesIO(data), identity)
    src = io.BytesIO(data)
    src.seek(header.size)
    return b"".join(decryptor.stream(src))


def apply(data: bytes, case: dict, vec: dict) -> bytes:
    out = bytearray(data)
    stride = vec["chunk_size"] + container.TAG_SIZE
    h = vec["header_size"]
    op = case["op"]
    if op == "flip":
        out[case["offset"]] ^= 1 << case["bit"]
    elif op == "truncate":
        del out[case["length"]:]
    elif op == "append":
        out += bytes.fromhex(case["hex"])
    elif op == "append_chunk":
        start = h + case["index"] * stride
        out += data[start : start + stride]
    elif op == "swap_chunks":
        a, b = (h + case[k] * stride for k in ("a", "b"))
        out[a : a + stride], out[b : b + stride] = data[b : b + stride], data[a : a + stride]
    else:
        raise AssertionError(f"unknown op {op!r} in vectors.json")
    return bytes(out)


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_vector_decrypts_with_every_recipient(name):
    vec = BY_NAME[name]
    data = vector_bytes(vec)
    assert len(data) == vec["container_size"]
    assert hashlib.sha256(data).hexdigest() == vec["container_sha256"]
    plain = vector_plaintext(vec)
    assert hashlib.sha256(plain).hexdigest() == vec["plaintext"]["sha256"]
    for secret in vec["identities"]:
        identity = PrivateKey(bytes.fromhex(secret))
        assert decrypt(data, identity) == plain
        header = container.parse_header(data)
        assert header.unwrap(identity).hex() == vec["file_key"]
    header = container.parse_header(data)
    assert header.size == vec["header_size"]
    assert header.chunk_size == vec["chunk_size"]
    assert header.nonce.hex() == vec["nonce"]
    assert header.metadata.decode() == vec["metadata"]
    assert [pk.hex() for pk in header.recipients] == vec["recipients"]
    assert container.plaintext_size(len(data) - header.size, header.chunk_size) == len(plain)


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_payload_is_reproducible_from_file_key_and_nonce(name):
    """The encryption side too: today's Encryptor, given the vector's file key and nonce, must produce
    the committed payload bit for bit (only the sealed stanzas are random)."""
    vec = BY_NAME[name]
    data = vector_bytes(vec)
    enc = container.Encryptor([bytes.fromhex(pk) for pk in vec["recipients"]], chunk_size=vec["chunk_size"],
                              metadata=vec["metadata"].encode(), file_key=bytes.fromhex(vec["file_key"]),
                              nonce=bytes.fromhex(vec["nonce"]))
    payload = b"".join(bytes(c) for c in enc.chunks(io.BytesIO(vector_plaintext(vec))))
    assert hashlib.sha256(payload).hexdigest() == vec["payload_sha256"]
    assert payload == data[vec["header_size"]:]
    assert enc.header.size == vec["header_size"]


def test_vector_metadata_is_json():
    vec = BY_NAME["v1-three-chunks"]
    header = container.parse_header(vector_bytes(vec))
    assert header.metadata_json() == {"camera_serial": "TEST-0001", "recording": "0001",
                                      "start": "2026-11-20T13:05:00.000Z"}


def test_vector_range_reads():
    vec = BY_NAME["v1-three-chunks"]
    data, plain = vector_bytes(vec), vector_plaintext(vec)
    identity = PrivateKey(bytes.fromhex(vec["identities"][0]))
    header, decryptor = container.open_container(io.BytesIO(data), identity)
    c = vec["chunk_size"]
    for start, end in [(0, 1), (c - 1, c + 1), (2 * c, len(plain)), (5, len(plain) + 50), (c, 2 * c)]:
        got = b"".join(decryptor.read_range(io.BytesIO(data), len(data) - header.size, start, end,
                                            payload_offset=header.size))
        assert got == plain[start:end]


def test_vector_through_the_vault(tmp_path):
    """Stored as the box stores it: payload-only blob named by the whole container's hash."""
    vec = BY_NAME["v1-three-chunks"]
    data = vector_bytes(vec)
    vault = Vault(tmp_path)
    vault.create()
    stored = vault.ingest(io.BytesIO(data), expected_sha256=vec["container_sha256"])
    assert stored.stored_path == f"blobs/{vec['container_sha256'][:2]}/{vec['container_sha256']}"
    assert (tmp_path / stored.stored_path).read_bytes() == data[vec["header_size"]:]
    assert stored.header.raw == data[: vec["header_size"]]
    assert vault.check(stored.stored_path, stored.header.raw, vec["container_sha256"]) is None


NEGATIVE = [(v["name"], case) for v in DOC["vectors"] for case in v.get("negative", [])]


@pytest.mark.parametrize("name,case", NEGATIVE, ids=[f"{n}: {c['name']}" for n, c in NEGATIVE])
def test_negative_vectors_are_refused(name, case):
    vec = BY_NAME[name]
    bad = apply(vector_bytes(vec), case, vec)
    assert bad != vector_bytes(vec)
    with pytest.raises(ContainerError):
        decrypt(bad, PrivateKey(bytes.fromhex(vec["identities"][0])))
