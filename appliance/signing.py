"""Ed25519 signatures that name their kind. Every signature the box, the archive or a release maintainer
makes is over

    label || "\n" || payload

where `label` is the kind's label (`kluis/v1/<kind>`, in the manner of age's stanza labels) and `payload`
the canonical JSON of the signed object (appliance/canonical.py), or the exact bytes for a kind that signs
a file. A label holds no newline, so the message says its kind unambiguously, and a signature made for
one kind never verifies as another. Every kind is listed in docs/format.md, "Signature kinds".

The dock protocol's kinds keep the labels its published specification (docs/dock-protocol.md) gives them:
cameras implement that specification, so its bytes on the wire do not change.

Artefacts signed before labels existed (audit checkpoints, backup manifests and journal entries, update
bundles, handover packages, archive receipts, sync requests) carried an unlabelled signature over the bare
payload. Their kinds are `legacy`: verification accepts that form too. That cannot pass one kind off as
another: a labelled message starts with "kluis/" and never parses as JSON, and the bare payloads of the
legacy kinds have distinct shapes (a `type` field, or field sets no other kind has).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import nacl.exceptions
from nacl.signing import SigningKey, VerifyKey

from .canonical import canonical
from .errors import KluisError
from .keys import fingerprint

PREFIX = "kluis/v1/"


class BadSignature(KluisError):
    """A signature that does not verify (wrong key, altered payload, another kind, or malformed)."""


@dataclass(frozen=True)
class Kind:
    name: str
    label: str
    signer: str
    payload: str
    legacy: bool = False  # also accept the unlabelled signature issued before labels

    def message(self, payload: Any) -> bytes:
        data = bytes(payload) if isinstance(payload, (bytes, bytearray, memoryview)) else canonical(payload)
        return self.label.encode("ascii") + b"\n" + data


KINDS: dict[str, Kind] = {}


def _kind(name: str, signer: str, payload: str, *, legacy: bool = False, label: str | None = None) -> Kind:
    kind = Kind(name, label or PREFIX + name, signer, payload, legacy)
    if "\n" in kind.label or name in KINDS:  # a label must end where the payload starts, and name one kind
        raise ValueError(f"signature kind {name!r}: label with a newline, or registered twice")
    KINDS[name] = kind
    return kind


_BOX = "box (signing key)"
_CAMERA = "camera (device key)"
# The kinds from before this module sign under PREFIX + name; the dock's under its protocol's own labels.
(AUDIT_CHECKPOINT, BACKUP_MANIFEST, BACKUP_JOURNAL, UPDATE_MANIFEST, HANDOVER_MANIFEST, SYNC_REQUEST,
 SYNC_RECEIPT) = (_kind(name, signer, payload, legacy=True) for name, signer, payload in (
    ("audit-checkpoint", _BOX, "the checkpoint {type, v, signer, count, head, time}"),
    ("backup-manifest", _BOX, "a backup's manifest.json without its signature field"),
    ("backup-journal", _BOX, "one kluis-journal.jsonl entry without its signature field"),
    ("update-manifest", "release maintainer (release key)", "an update bundle's manifest without its signature field"),
    ("handover-manifest", _BOX, "the exact bytes of a handover package's manifest.json"),
    ("sync-request", _BOX, "{box, method, path, time, nonce, body_sha256} of a request to the archive"),
    ("sync-receipt", "archive (archive key)", "{archive, box, recording_id, sha256, size, received_at}"),
))
# The archive's counter-signature of a box's audit checkpoint (sync/archive/checkpoints.py, appliance/witness.py).
AUDIT_WITNESS = _kind("audit-witness", "archive (archive key)",
                      "{type, v, archive, box, count, head, checkpoint_time, witnessed_at} of a box's checkpoint")
# Signed per audit entry, so the payload is the entry's hash alone (64 lowercase hex characters, as ASCII):
# the hash covers every field and the previous entry's hash; no JSON, so record() stays cheap.
AUDIT_ENTRY = _kind("audit-entry", _BOX, "the exact bytes of the entry's `hash` (64 lowercase hex characters)")
# A recording's or a case's chain of custody (appliance/custody.py), verified by `kluis export verify`.
CUSTODY_REPORT = _kind("custody-report", _BOX, "a custody report's JSON without its signature field")
# What pruning the audit log removed, so that the chain is checked on from its last entry (appliance/audit_prunes.py).
AUDIT_PRUNE = _kind("audit-prune", _BOX, "the pruning checkpoint {type, v, signer, first, last, count, actions, "
                                         "prev_hash, last_hash, first_time, last_time, cutoff, term_days, time}")
DOCK_REQUEST, DOCK_PAIR_RESPONSE, DOCK_MANIFEST, DOCK_DELETED = (
    _kind(name, signer, payload, label=label) for name, signer, payload, label in (
        ("dock-request", _BOX, "{method, path, time, nonce, body_sha256} of a request to a camera",
         "kluis-dock/1 request"),
        ("dock-pair-response", _CAMERA, "the camera's `pairing` answer", "kluis-dock/1 pair-response"),
        ("dock-manifest", _CAMERA, "the `manifest` object", "kluis-dock/1 manifest"),
        ("dock-deleted", _CAMERA, "the `deleted` confirmation", "kluis-dock/1 deleted"),
    ))


def sign_raw(key: SigningKey, kind: Kind, payload: Any) -> bytes:
    return key.sign(kind.message(payload)).signature


def sign(key: SigningKey, kind: Kind, payload: Any) -> str:
    """The signature of `payload` as `kind`, hex."""
    return sign_raw(key, kind, payload).hex()


def is_valid(public_key: VerifyKey | bytes | str, kind: Kind, payload: Any, signature: bytes | str) -> bool:
    """Whether `signature` (raw or hex) is `public_key`'s over `payload` as `kind` (or, for a legacy
    kind, over the bare payload). Malformed keys and signatures are simply not valid."""
    try:
        key = public_key if isinstance(public_key, VerifyKey) else \
            VerifyKey(bytes.fromhex(public_key) if isinstance(public_key, str) else bytes(public_key))
        raw = bytes.fromhex(signature) if isinstance(signature, str) else bytes(signature)
        if len(raw) != 64:
            return False
        messages = [kind.message(payload)]
        if kind.legacy:
            messages.append(bytes(payload) if isinstance(payload, (bytes, bytearray, memoryview))
                            else canonical(payload))
    except (ValueError, TypeError, nacl.exceptions.CryptoError):
        return False
    for message in messages:
        try:
            key.verify(message, raw)
            return True
        except (nacl.exceptions.CryptoError, ValueError, TypeError):
            continue
    return False


def verify(public_key: VerifyKey | bytes | str, kind: Kind, payload: Any, signature: bytes | str) -> None:
    """As is_valid, raising BadSignature when not."""
    if not is_valid(public_key, kind, payload, signature):
        raise BadSignature(f"the {kind.name} signature does not match")


def signed(body: dict, key: SigningKey, kind: Kind) -> dict:
    """`body` with a `signature` field: the hex signature of the rest as `kind` (backups, their journal,
    update bundles, receipts carry their signature so)."""
    return {**body, "signature": sign(key, kind, body)}


def check_signed(item: dict, kind: Kind, signer: str | None = None) -> str | None:
    """None when `item` carries a good `kind` signature by the key in its own `signer` field (and that is
    `signer`, if given); else what is wrong."""
    body = {k: v for k, v in item.items() if k != "signature"}
    if not is_valid(str(item.get("signer")), kind, body, str(item.get("signature"))):
        return "signature does not match"
    if signer is not None and item["signer"] != signer:
        return f"signed by {fingerprint(bytes.fromhex(item['signer']))}, not by the expected key"
    return None
