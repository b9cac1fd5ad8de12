"""One signing module: every signature names its kind, a signature of one kind never verifies as another,
and the unlabelled signatures issued before labels existed still verify for the artefacts that had them."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st
from nacl.signing import SigningKey

from appliance import audit, signing, update
from appliance.canonical import canonical

KEY = SigningKey(bytes(range(32)))
PAYLOAD = {"type": "x", "n": 1, "text": "é"}
KINDS = list(signing.KINDS.values())


def test_labels_are_distinct_and_name_their_kind():
    labels = [k.label for k in KINDS]
    assert len(set(labels)) == len(labels)
    for kind in KINDS:
        assert "\n" not in kind.label
        assert kind.label == signing.PREFIX + kind.name or kind.label.startswith("kluis-dock/1 ")


@pytest.mark.parametrize("a", KINDS, ids=lambda k: k.name)
def test_a_signature_of_one_kind_never_verifies_as_another(a):
    signature = signing.sign(KEY, a, PAYLOAD)
    assert signing.is_valid(KEY.verify_key, a, PAYLOAD, signature)
    for b in KINDS:
        if b is not a:
            assert not signing.is_valid(KEY.verify_key, b, PAYLOAD, signature), (a.name, b.name)
    with pytest.raises(signing.BadSignature):
        signing.verify(KEY.verify_key, a, {**PAYLOAD, "n": 2}, signature)


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)
def test_unlabelled_signatures_verify_only_for_legacy_kinds(kind):
    old = KEY.sign(canonical(PAYLOAD)).signature.hex()  # how every signature was made before labels
    assert signing.is_valid(KEY.verify_key, kind, PAYLOAD, old) is kind.legacy


def test_legacy_kinds_are_the_artefacts_issued_before_labels():
    assert {k.name for k in KINDS if k.legacy} == {
        "audit-checkpoint", "backup-manifest", "backup-journal", "update-manifest", "handover-manifest",
        "sync-request", "sync-receipt"}


def test_bytes_payload_is_signed_as_is():
    data = b'{\n  "format": "x"\n}\n'
    signature = signing.sign_raw(KEY, signing.HANDOVER_MANIFEST, data)
    KEY.verify_key.verify(b"kluis/v1/handover-manifest\n" + data, signature)  # the documented construction
    assert signing.is_valid(bytes(KEY.verify_key).hex(), signing.HANDOVER_MANIFEST, data, signature)
    assert signing.is_valid(KEY.verify_key, signing.HANDOVER_MANIFEST, data, KEY.sign(data).signature)


@pytest.mark.parametrize("key, signature", [
    ("zz", "00" * 64), ("00" * 31, "00" * 64), (bytes(KEY.verify_key).hex(), "00" * 63),
    (bytes(KEY.verify_key).hex(), "not hex"), (bytes(KEY.verify_key).hex(), None), (None, "00" * 64),
])
def test_malformed_keys_and_signatures_are_not_valid(key, signature):
    assert not signing.is_valid(key, signing.AUDIT_CHECKPOINT, PAYLOAD, signature)


def test_every_kind_is_listed_in_the_format_reference():
    text = (Path(__file__).parent.parent / "docs" / "format.md").read_text(encoding="utf-8")
    section = text.split("## Signature kinds", 1)[1].split("\n## ", 1)[0]
    for kind in KINDS:
        assert f"| `{kind.label}` |" in section, kind.label


def test_an_audit_checkpoint_signed_the_old_way_still_verifies():
    body = {"type": audit.CHECKPOINT_TYPE, "v": 1, "signer": bytes(KEY.verify_key).hex(), "count": 3,
            "head": "ab" * 32, "time": "2026-01-01T00:00:00.000Z"}
    old = {**body, "signature": KEY.sign(canonical(body)).signature.hex()}
    assert audit.check_signature(old, KEY.verify_key) is None
    labelled = {**body, "signature": signing.sign(KEY, signing.AUDIT_CHECKPOINT, body)}
    assert audit.check_signature(labelled, KEY.verify_key) is None
    as_receipt = {**body, "signature": signing.sign(KEY, signing.SYNC_RECEIPT, body)}
    assert audit.check_signature(as_receipt, KEY.verify_key) == "signature does not match"


def _bundle(tmp_path: Path, manifest: dict, wheel: bytes, name: str) -> Path:
    out = tmp_path / "old.kluis-update"
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for member, content in ((update.MANIFEST_NAME, canonical(manifest)), (name, wheel)):
            info = tarfile.TarInfo(member)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return out


def test_an_update_bundle_signed_the_old_way_still_verifies(tmp_path):
    wheel = tmp_path / "kluis-9.9.9-py3-none-any.whl"
    wheel.write_bytes(b"PK not really a wheel")
    manifest = update.build(KEY, wheel, tmp_path / "new.kluis-update")
    trusted = [bytes(KEY.verify_key).hex()]
    assert update.verify(tmp_path / "new.kluis-update", trusted).version == "9.9.9"
    body = {k: v for k, v in manifest.items() if k != "signature"}
    old = {**body, "signature": KEY.sign(canonical(body)).signature.hex()}
    assert update.verify(_bundle(tmp_path, old, wheel.read_bytes(), wheel.name), trusted).version == "9.9.9"
    wrong = {**body, "signature": signing.sign(KEY, signing.BACKUP_MANIFEST, body)}
    with pytest.raises(update.UpdateRefused, match="signature"):
        update.verify(_bundle(tmp_path, wrong, wheel.read_bytes(), wheel.name), trusted)


# --- canonical JSON ---------------------------------------------------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(_json)
def test_canonical_bytes_are_those_signed_before(value):
    # The encoding audit hashes and existing signatures were made with: unchanged for every JSON value.
    before = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    assert canonical(value) == before


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), {"a": [float("nan")]}])
def test_canonical_refuses_nan_and_infinity(value):
    with pytest.raises(ValueError):
        canonical(value)
