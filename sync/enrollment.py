"""Enrollment at the archive (pinning its certificate and keys), and what every signed request of the box
needs: the box's signing key and the signed headers. Reading the enrollment is the domain's
(appliance.outbox): the web UI shows it without the network."""

from __future__ import annotations

import json
import weakref

from nacl.signing import SigningKey

from appliance import audit
from appliance.box import Box
from appliance.canonical import canonical
from appliance.errors import KluisError
from appliance.outbox import META_ARCHIVE

from .link import Link, SyncError
from .protocol import API, box_id_of, sign_request, sha256_hex

def signed_headers(box: Box, box_id: str, method: str, path: str, body: bytes) -> dict:
    headers = sign_request(signing_key_of(box), box_id, method, path, sha256_hex(body), box.clock())
    headers["Content-Type"] = "application/json"
    return headers


_SIGNING_KEYS: weakref.WeakKeyDictionary[Box, SigningKey] = weakref.WeakKeyDictionary()


def signing_key_of(box: Box) -> SigningKey:
    """The box's signing key, read once per Box (not once per 4 MiB part)."""
    key = _SIGNING_KEYS.get(box)
    if key is None:
        key = _SIGNING_KEYS[box] = box.signing_key()
    return key


def parse_token(token: str) -> tuple[str, str]:
    secret, _, fingerprint = token.strip().rpartition(".")
    fingerprint = fingerprint.replace(":", "").lower()
    if not secret or len(fingerprint) != 64 or any(c not in "0123456789abcdef" for c in fingerprint):
        raise KluisError("that is not an enrollment token (from `kluis archive token`)")
    return secret, fingerprint


async def enroll(box: Box, url: str, token: str, actor: str = "system") -> dict:
    """Enroll at the archive: pin its certificate and keys, and make the archive a recipient of every
    recording sealed from now on (cameras paired after this provision it too)."""
    secret, fingerprint = parse_token(token)
    if not url.startswith("https://"):
        raise KluisError("the archive URL must start with https://")
    base = url.rstrip("/")
    signing = box.signing_key()
    box_id = box_id_of(bytes(signing.verify_key))
    body = canonical({"token": secret, "name": box.settings.box.name,
                      "signing_key": bytes(signing.verify_key).hex(), "public_key": bytes(box.public_key).hex()})
    try:
        info = await Link(base, fingerprint).request("POST", f"{API}/enroll",
                                                     signed_headers(box, box_id, "POST", f"{API}/enroll", body), body)
    except SyncError as exc:
        raise KluisError(f"enrollment failed: {exc}") from None
    if info.get("box_id") != box_id:
        raise KluisError("the archive answered for another box")
    enrolled = {"url": base, "cert_sha256": fingerprint, "box_id": box_id, "archive_id": info["archive_id"],
                "archive_name": info["name"], "public_key": info["public_key"], "signing_key": info["signing_key"],
                "enrolled_at": box.now_iso()}
    with box.catalog.transaction():
        box.catalog.set_meta(META_ARCHIVE, json.dumps(enrolled))
        extra = json.loads(box.catalog.get_meta("extra_recipients", "[]"))
        if info["public_key"] not in extra:
            box.catalog.set_meta("extra_recipients", json.dumps(extra + [info["public_key"]]))
        audit.record(box.catalog, actor=actor, action="settings_change", clock=box.clock,
                     details={"sync": "enrolled", "archive": info["archive_id"], "url": base,
                              "cert_sha256": fingerprint})
    return enrolled
