"""Generate the container test vectors in this directory: run ONCE, commit the output, never regenerate.

    .venv/bin/python tests/vectors/generate.py [--force]

A sealed box uses a fresh ephemeral key every time, so the recipient stanzas (and with them the header MAC
and the container's SHA-256) differ on every run: the vector is the committed bytes, not this script's
output. Everything else is fixed so that a second implementation (the camera firmware) can check itself:

- the recipient's X25519 private key, the file key and the payload nonce are SHA-256 of fixed labels, so
  the payload (everything after the header) is reproducible bit for bit from `file_key` and `nonce`;
- the plaintext is SHAKE128("kluis/v1 test vector") truncated to `plaintext_length` bytes.

Output: one `<name>.kluis` container per vector and `vectors.json`, which describes each vector (keys,
plaintext recipe, expected hashes) and the negative cases: byte edits of a good container that every
reader must refuse (tests/vault/test_vectors.py applies and checks them).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
from pathlib import Path

from nacl.public import PrivateKey

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from appliance import container  # noqa: E402

PLAINTEXT_SEED = b"kluis/v1 test vector"


def fixed(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()


def plaintext(length: int) -> bytes:
    return hashlib.shake_128(PLAINTEXT_SEED).digest(length)


def build(name: str, *, chunk_size: int, length: int, metadata: bytes, identities: list[PrivateKey]) -> dict:
    file_key, nonce = fixed(f"kluis/v1 vector {name} file key"), fixed(f"kluis/v1 vector {name} nonce")[:16]
    enc = container.Encryptor([k.public_key for k in identities], chunk_size=chunk_size, metadata=metadata,
                              file_key=file_key, nonce=nonce)
    data = bytearray(enc.header.raw)
    for sealed in enc.chunks(io.BytesIO(plaintext(length))):
        data += sealed
    (HERE / f"{name}.kluis").write_bytes(data)
    header_size = enc.header.size
    return {
        "name": name,
        "file": f"{name}.kluis",
        "identities": [bytes(k).hex() for k in identities],  # X25519 private keys, one per recipient
        "recipients": [bytes(k.public_key).hex() for k in identities],
        "file_key": file_key.hex(),
        "nonce": nonce.hex(),
        "chunk_size": chunk_size,
        "metadata": metadata.decode(),
        "plaintext": {"recipe": "shake_128(b'kluis/v1 test vector').digest(length)", "length": length,
                      "sha256": hashlib.sha256(plaintext(length)).hexdigest()},
        "header_size": header_size,
        "container_size": len(data),
        "container_sha256": hashlib.sha256(data).hexdigest(),
        "payload_sha256": hashlib.sha256(data[header_size:]).hexdigest(),
    }


def negatives(vec: dict) -> list[dict]:
    """Byte edits of the three-chunk vector; each must make decryption fail with ContainerError."""
    h, c = vec["header_size"], vec["chunk_size"]
    stride = c + container.TAG_SIZE
    meta_len = len(vec["metadata"].encode())
    stanza = 38 + meta_len  # first stanza: recipient key (32), sealed file key (80)
    return [
        {"name": "bad magic", "op": "flip", "offset": 0, "bit": 1},
        {"name": "header length changed", "op": "flip", "offset": 11, "bit": 0},
        {"name": "chunk size changed", "op": "flip", "offset": 13, "bit": 0},
        {"name": "payload nonce changed", "op": "flip", "offset": 20, "bit": 7},
        {"name": "metadata changed", "op": "flip", "offset": 40, "bit": 0},
        {"name": "sealed file key changed", "op": "flip", "offset": stanza + 32 + 40, "bit": 3},
        {"name": "header MAC changed", "op": "flip", "offset": h - 1, "bit": 0},
        {"name": "ciphertext of chunk 1 changed", "op": "flip", "offset": h + stride + 100, "bit": 0},
        {"name": "tag of the final chunk changed", "op": "flip", "offset": vec["container_size"] - 1, "bit": 7},
        {"name": "truncated at a chunk boundary", "op": "truncate", "length": h + 2 * stride},
        {"name": "truncated inside a chunk", "op": "truncate", "length": h + stride + 1000},
        {"name": "header only", "op": "truncate", "length": h},
        {"name": "chunks 0 and 1 swapped", "op": "swap_chunks", "a": 0, "b": 1},
        {"name": "trailing byte", "op": "append", "hex": "00"},
        {"name": "trailing copy of the final chunk", "op": "append_chunk", "index": 2},
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="overwrite the committed vectors (new bytes!)")
    args = parser.parse_args()
    if (HERE / "vectors.json").exists() and not args.force:
        sys.exit("vectors.json exists: the committed bytes are the vector; use --force only on purpose")
    one = PrivateKey(fixed("kluis/v1 vector recipient 1"))
    two = PrivateKey(fixed("kluis/v1 vector recipient 2"))
    meta = json.dumps({"camera_serial": "TEST-0001", "recording": "0001", "start": "2026-11-20T13:05:00.000Z"},
                      sort_keys=True, separators=(",", ":")).encode()
    three = build("v1-three-chunks", chunk_size=64 * 1024, length=2 * 64 * 1024 + 1000, metadata=meta,
                  identities=[one])
    three["negative"] = negatives(three)
    empty = build("v1-empty", chunk_size=64 * 1024, length=0, metadata=b"", identities=[one, two])
    second_stanza = 38 + 112  # no metadata; the second stanza's sealed key is covered by the header MAC
    empty["negative"] = [
        {"name": "second recipient's sealed key changed", "op": "flip", "offset": second_stanza + 32 + 5, "bit": 0},
        {"name": "empty final chunk removed", "op": "truncate", "length": empty["header_size"]},
        {"name": "tag of the empty chunk changed", "op": "flip", "offset": empty["container_size"] - 3, "bit": 2},
    ]
    doc = {
        "format": "Kluis container v1 (docs/format.md)",
        "generated_by": "tests/vectors/generate.py (once; the stanzas are random, so the bytes are the vector)",
        "vectors": [three, empty],
    }
    (HERE / "vectors.json").write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {three['file']}, {empty['file']} and vectors.json")


if __name__ == "__main__":
    main()
