"""The box-to-archive protocol: signed requests and signed receipts (shared by client and archive).

Every request a box makes carries four headers. The signature is Ed25519 (the box's unattended signing
key) of kind
`kluis/v1/sync-request` over {box, method, path, time, nonce, body_sha256} (appliance/signing.py), so neither the target, the
body nor the moment can be changed, and the archive refuses a nonce it has seen (a replay) and a time
outside MAX_SKEW (so that it need remember nonces only that long).

Uploads stream. A box sends the rest of a container, bytes [offset, size), in one PUT of
`uploads/{sha256}/stream?offset=N` (N: the offset the archive answered as committed). Its signed body
hash is the SHA-256 of that range, as the box claims it. From offset 0 the range is the whole container,
so the claimed hash must be the declared container hash, which the box has in its catalog (no hashing
on the box) and the archive computes anyway (one hash per byte on the archive, for both checks). A
resumed range is hashed by the box before it sends it, and by the archive besides the container hash.
The signature (headers) is checked before a byte of the body is read, so nobody but the enrolled box
can put bytes in its upload. The archive writes the body as it arrives, fsyncs every
stream.SYNC_EVERY bytes (durable offsets to resume from) and at the end checks the range against its
signed hash before the range counts: a mismatch takes the request's bytes out again (422). A stream cut
midway cannot be checked against its range hash: the archive keeps what arrived (it came from the
signed request over the pinned TLS connection) as the offset to resume from, and the container hash,
checked before the upload is stored and receipted, covers those bytes too; a mismatch there discards
the whole upload, so no unverified byte is ever stored or receipted. Only the part file staged under
tmp/ can hold bytes not yet verified. While streaming, the box follows `GET uploads/{sha256}/progress`
(signed, on a second connection; the archive answers a line per MiB it writes and when writing pauses,
for as long as the stream runs) and keeps at most CHUNK_SIZE beyond the last offset in flight: without
it the kernel's socket buffers on the way grow to many MiB, all lost and sent again on a cut. (Asking `GET uploads/{sha256}`
again and again instead took ~200 signed requests per GiB at loopback speed, a third of both ends'
CPU.) This replaces a request per 4 MiB part, whose hash on both ends
(three SHA-256 passes per byte in all) and round trip held sync to a third of a plain upload's rate.
Parts (`PUT uploads/{sha256}?offset=N`, at most MAX_CHUNK, each checked before it counts) remain in
the API for a client that wants every request verified on its own.

A receipt is the archive's signed statement that it holds a recording: {archive, box, recording_id,
sha256, size, received_at}, signed (kind `kluis/v1/sync-receipt`) with the archive's Ed25519 key, which the
box pinned at enrollment.

Pure: no HTTP, no storage. Canonical JSON: sorted keys, compact, UTF-8.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import datetime, timedelta

from nacl.signing import SigningKey

from appliance import errors, signing
from appliance.clock import from_iso, to_iso

API = "/api/v1"
CHUNK_SIZE = 16 * 1024 * 1024  # a streaming box keeps at most this much beyond what the archive wrote
MAX_CHUNK = 4 * 1024 * 1024  # the archive refuses a larger part body (PUT uploads/{sha256}?offset=N)
MAX_JSON = 256 * 1024  # the archive refuses a larger JSON body
MAX_SKEW = timedelta(minutes=5)

SIGNED_HEADERS = H_BOX, H_TIME, H_NONCE, H_BODY, H_SIG = (
    "X-Kluis-Box", "X-Kluis-Time", "X-Kluis-Nonce", "X-Kluis-Body-SHA256", "X-Kluis-Signature")

RECEIPT_FIELDS = ("archive", "box", "recording_id", "sha256", "size", "received_at")


class ProtocolError(errors.ProtocolError):
    """A request or receipt the archive protocol does not allow (message, then the HTTP status)."""


NOT_A_CONTAINER = "not_a_container"  # the code of a body the archive can never store (not kept for resuming)


def sha256_hex(data: bytes | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


def box_id_of(verify_key: bytes) -> str:
    """A box's name at the archive: derived from its signing key, so it cannot be claimed by another."""
    return hashlib.sha256(b"kluis-box\0" + bytes(verify_key)).hexdigest()[:20]


def _request_payload(box: str, method: str, path: str, time: str, nonce: str, body_sha256: str) -> dict:
    return {"box": box, "method": method.upper(), "path": path, "time": time, "nonce": nonce,
            "body_sha256": body_sha256}


def sign_request(key: SigningKey, box: str, method: str, path: str, body_sha256: str, now: datetime) -> dict:
    """Headers for one request. `path` includes the query string exactly as sent."""
    time, nonce = to_iso(now), os.urandom(16).hex()
    signature = signing.sign(key, signing.SYNC_REQUEST, _request_payload(box, method, path, time, nonce, body_sha256))
    return {H_BOX: box, H_TIME: time, H_NONCE: nonce, H_BODY: body_sha256, H_SIG: signature}


@dataclass(frozen=True)
class SignedRequest:
    box: str
    time: datetime
    nonce: str


def check_request(headers, method: str, path: str, body_sha256: str, verify_key: bytes, now: datetime
                  ) -> SignedRequest:
    """Verify a request's signature, body hash and time. The caller then refuses a nonce seen before.
    Raises ProtocolError with the status to answer."""
    missing = [h for h in SIGNED_HEADERS if not headers.get(h)]
    if missing:
        raise ProtocolError(f"unsigned request (missing {', '.join(missing)})", 401)
    if headers[H_BODY].lower() != body_sha256:
        raise ProtocolError("body does not match its signed hash (altered in transit)", 422)
    try:
        moment = from_iso(headers[H_TIME])
    except ValueError:
        raise ProtocolError("request time is not ISO 8601", 401) from None
    if abs(moment - now) > MAX_SKEW:
        raise ProtocolError(f"request time {headers[H_TIME]} too far from the archive's clock {to_iso(now)}", 401)
    nonce = headers[H_NONCE]
    if not 16 <= len(nonce) <= 64:
        raise ProtocolError("bad nonce", 401)
    payload = _request_payload(headers[H_BOX], method, path, headers[H_TIME], nonce, body_sha256)
    if not signing.is_valid(verify_key, signing.SYNC_REQUEST, payload, headers[H_SIG]):
        raise ProtocolError("bad request signature", 401)
    return SignedRequest(headers[H_BOX], moment, nonce)


def sign_receipt(key: SigningKey, fields: dict) -> dict:
    body = {name: fields[name] for name in RECEIPT_FIELDS}
    return signing.signed(body, key, signing.SYNC_RECEIPT)


def verify_receipt(receipt: dict, archive_verify_key: bytes) -> dict:
    """The receipt's fields if the archive's signature holds; else ProtocolError."""
    try:
        body = {name: receipt[name] for name in RECEIPT_FIELDS}
        valid = signing.is_valid(archive_verify_key, signing.SYNC_RECEIPT, body, receipt["signature"])
    except (KeyError, TypeError):
        valid = False
    if not valid:
        raise ProtocolError("receipt does not carry the archive's valid signature", 502)
    return body
