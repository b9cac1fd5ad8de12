"""Unit tests of the dock protocol's messages and signatures (both ends use appliance.dock.protocol)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from nacl.public import PrivateKey
from nacl.signing import SigningKey

from appliance import signing
from appliance.dock import protocol as p
from appliance.errors import KluisError

NOW = datetime(2026, 11, 22, 14, 0, 0, tzinfo=timezone.utc)


@pytest.fixture
def box_key() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture
def camera_key() -> SigningKey:
    return SigningKey.generate()


def entry(n: int = 1, **changes) -> dict:
    fields = dict(recording_id=f"CAM001-{n:06d}", size=1234, sha256="ab" * 32, start=NOW,
                  end=NOW + timedelta(seconds=20), pre_record_s=30, post_record_s=30, officer="J. Jansen")
    fields.update(changes)
    return p.manifest_entry(**fields)


def test_canonical_json_is_sorted_compact_utf8():
    assert p.canonical({"b": 1, "a": ["é", None]}) == '{"a":["é",null],"b":1}'.encode()
    with pytest.raises(ValueError):
        p.canonical({"x": float("nan")})


@pytest.mark.parametrize("body, reason", [
    (b'{"a":1,"a":2}', "duplicate"),
    (b'{"a":NaN}', "NaN"),
    (b"[1,2]", "not a JSON object"),
    (b"{", "not valid JSON"),
    (b'{"a":"\xff"}', "UTF-8"),
    (b"[" * 100_000 + b"]" * 100_000, "too large"),
    (b'{"a":' + b"[" * 20_000 + b"]" * 20_000 + b"}", "nested"),
])
def test_malformed_json_refused(body, reason):
    with pytest.raises(p.ProtocolError, match=reason) as info:
        p.parse_json(body, limit=1_000_000 if reason == "nested" else p.MAX_JSON_BODY)
    assert isinstance(info.value, KluisError)
    assert info.value.status in (400, 413)


def test_txt_round_trip(camera_key):
    props = p.build_txt("CAM001", "Kluis-Sim 1", "1.0.0", camera_key, paired=False)
    wire = {k.encode(): v.encode() for k, v in props.items()}
    record = p.parse_txt(wire, raw_size=sum(len(k) + len(v) + 2 for k, v in wire.items()))
    assert record.serial == "CAM001" and record.proto == p.PROTOCOL_VERSION and record.paired is False
    assert record.fp == p.key_fingerprint(camera_key)


@pytest.mark.parametrize("change, reason", [
    ({b"serial": b"cam 001"}, "serial"),
    ({b"serial": b"C" * 33}, "serial"),
    ({b"serial": None}, "no value"),
    ({b"model": b"x" * 65}, "longer"),
    ({b"fw": b"1.0\n"}, "control"),
    ({b"model": "Kamera\u00e9".encode()}, "ASCII"),
    ({b"proto": b"one"}, "version"),
    ({b"fp": b"deadbeef"}, "fingerprint"),
    ({b"paired": b"yes"}, "paired"),
    ({b"serial": b""}, "serial"),
    ({b"toolongkey": b"1"}, "malformed"),
    ({f"k{i}".encode(): b"1" for i in range(20)}, "keys"),
])
def test_malformed_txt_refused(camera_key, change, reason):
    wire = {k.encode(): v.encode() for k, v in p.build_txt("CAM001", "M", "1", camera_key, False).items()}
    wire.update(change)
    with pytest.raises(p.ProtocolError, match=reason):
        p.parse_txt(wire)


def test_missing_and_oversized_txt_refused(camera_key):
    wire = {k.encode(): v.encode() for k, v in p.build_txt("CAM001", "M", "1", camera_key, False).items()}
    with pytest.raises(p.ProtocolError, match="too large"):
        p.parse_txt(wire, raw_size=p.MAX_TXT_SIZE + 1)
    del wire[b"fp"]
    with pytest.raises(p.ProtocolError, match="lacks 'fp'"):
        p.parse_txt(wire)


def test_manifest_round_trip_and_tamper(camera_key):
    signed = p.build_manifest(camera_key, "CAM001", [entry(1), entry(2)], NOW, "0f" * 16)
    wire = p.canonical(signed)
    manifest = p.verify_manifest(wire, p.key_hex(camera_key), "CAM001", "0f" * 16)
    assert [e["id"] for e in manifest["recordings"]] == ["CAM001-000001", "CAM001-000002"]

    tampered = json.loads(wire)
    tampered["manifest"]["recordings"][0]["sha256"] = "cd" * 32
    with pytest.raises(p.ProtocolError, match="bad signature") as info:
        p.verify_manifest(p.canonical(tampered), camera_key.verify_key, "CAM001")
    assert info.value.status == 401
    hidden = json.loads(wire)
    hidden["manifest"]["recordings"].pop()
    with pytest.raises(p.ProtocolError, match="bad signature"):
        p.verify_manifest(hidden, camera_key.verify_key, "CAM001")


def test_manifest_wrong_key_serial_or_nonce_refused(camera_key):
    signed = p.build_manifest(camera_key, "CAM001", [entry()], NOW, "0f" * 16)
    with pytest.raises(p.ProtocolError, match="bad signature"):
        p.verify_manifest(signed, SigningKey.generate().verify_key, "CAM001")
    with pytest.raises(p.ProtocolError, match="expected CAM002"):
        p.verify_manifest(signed, camera_key.verify_key, "CAM002")
    with pytest.raises(p.ProtocolError, match="replayed"):
        p.verify_manifest(signed, camera_key.verify_key, "CAM001", "1e" * 16)


@pytest.mark.parametrize("changes, reason", [
    ({"size": 0}, "size out of range"),
    ({"size": True}, "integer"),
    ({"sha256": "AB" * 32}, "sha256"),
    ({"recording_id": "../etc/passwd"}, "id"),
    ({"end": NOW - timedelta(seconds=1)}, "ends before"),
    ({"pre_record_s": 601}, "pre_record_s"),
    ({"officer": "x\ny"}, "control"),
    ({"start": "2026-11-22 14:00"}, "start"),
])
def test_manifest_schema_refuses(changes, reason):
    with pytest.raises(p.ProtocolError, match=reason):
        entry(**changes)


def test_manifest_schema_on_the_wire(camera_key):
    signed = p.build_manifest(camera_key, "CAM001", [entry()], NOW, None)
    extra = json.loads(p.canonical(signed))
    extra["manifest"]["recordings"][0]["extra"] = 1
    with pytest.raises(p.ProtocolError, match="unknown field"):
        p.verify_manifest(p.canonical(extra), camera_key.verify_key, "CAM001")
    twice = json.loads(p.canonical(signed))
    twice["manifest"]["recordings"].append(twice["manifest"]["recordings"][0])
    with pytest.raises(p.ProtocolError, match="twice"):
        p.verify_manifest(twice, camera_key.verify_key, "CAM001")
    with pytest.raises(p.ProtocolError, match="too large"):
        p.verify_manifest(b" " * (p.MAX_MANIFEST_BODY + 1), camera_key.verify_key, "CAM001")


def test_request_signature_round_trip_and_replay(box_key):
    cache = p.ReplayCache()
    path = "/dock/v1/recordings/CAM001-000001"
    body = p.build_delete("CAM001-000001", "ab" * 32)
    headers = p.sign_request(box_key, "DELETE", path, body, NOW)
    nonce = p.verify_request(p.key_hex(box_key), "DELETE", path, headers, body, NOW + timedelta(seconds=2), cache)
    assert nonce == headers[p.H_NONCE]
    with pytest.raises(p.ProtocolError, match="replayed") as info:
        p.verify_request(box_key.verify_key, "DELETE", path, headers, body, NOW, cache)
    assert info.value.status == 401 and info.value.code == "replay"


@pytest.mark.parametrize("alter, code", [
    (lambda h, b: ("GET", "/dock/v1/recordings/CAM001-000001", h, b), "bad_signature"),
    (lambda h, b: ("DELETE", "/dock/v1/recordings/CAM001-000002", h, b), "bad_signature"),
    (lambda h, b: ("DELETE", "/dock/v1/recordings/CAM001-000001", h, b + b" "), "bad_signature"),
    (lambda h, b: ("DELETE", "/dock/v1/recordings/CAM001-000001", {**h, p.H_NONCE: "00" * 16}, b), "bad_signature"),
    (lambda h, b: ("DELETE", "/dock/v1/recordings/CAM001-000001",
                   {k: v for k, v in h.items() if k != p.H_SIGNATURE}, b), "unsigned"),
])
def test_altered_request_refused(box_key, alter, code):
    path = "/dock/v1/recordings/CAM001-000001"
    body = p.build_delete("CAM001-000001", "ab" * 32)
    headers = p.sign_request(box_key, "DELETE", path, body, NOW)
    method, path2, headers2, body2 = alter(headers, body)
    with pytest.raises(p.ProtocolError) as info:
        p.verify_request(box_key.verify_key, method, path2, headers2, body2, NOW, p.ReplayCache())
    assert info.value.code == code and info.value.status == 401


def test_request_from_another_box_or_unpaired_refused(box_key):
    headers = p.sign_request(SigningKey.generate(), "GET", "/dock/v1/manifest", b"", NOW)
    with pytest.raises(p.ProtocolError, match="bad signature"):
        p.verify_request(box_key.verify_key, "GET", "/dock/v1/manifest", headers, b"", NOW, p.ReplayCache())
    with pytest.raises(p.ProtocolError, match="not paired") as info:
        p.verify_request(None, "GET", "/dock/v1/manifest", headers, b"", NOW, p.ReplayCache())
    assert info.value.status == 403


def test_time_window_tolerates_camera_drift(box_key):
    headers = p.sign_request(box_key, "GET", "/dock/v1/manifest", b"", NOW)
    # A camera clock 23 h behind or ahead still accepts; 25 h does not.
    p.verify_request(box_key.verify_key, "GET", "/dock/v1/manifest", headers, b"", NOW - timedelta(hours=23),
                     p.ReplayCache())
    p.verify_request(box_key.verify_key, "GET", "/dock/v1/manifest", headers, b"", NOW + timedelta(hours=23),
                     p.ReplayCache())
    with pytest.raises(p.ProtocolError, match="more than") as info:
        p.verify_request(box_key.verify_key, "GET", "/dock/v1/manifest", headers, b"",
                         NOW + timedelta(hours=25), p.ReplayCache())
    assert info.value.code == "stale"


def test_replay_cache_bounded_without_reopening_replays(box_key):
    cache = p.ReplayCache(size=3)
    signed = [p.sign_request(box_key, "GET", "/dock/v1/manifest", b"", NOW + timedelta(seconds=i))
              for i in range(5)]
    for headers in signed:
        p.verify_request(box_key.verify_key, "GET", "/dock/v1/manifest", headers, b"", NOW, cache)
    assert len(cache.seen) == 3
    # The first two nonces were dropped, but their times are at or below the floor: still refused.
    restored = p.ReplayCache.from_json(json.loads(json.dumps(cache.to_json())), size=3)
    for headers in signed:
        with pytest.raises(p.ProtocolError, match="replayed"):
            p.verify_request(box_key.verify_key, "GET", "/dock/v1/manifest", headers, b"", NOW, restored)


def pair_request(box_key, code="12345678", serial="CAM001"):
    recipients = [bytes(PrivateKey.generate().public_key)]
    settings = p.build_settings(1, 30, 30, "J. Jansen")
    return p.build_pair_request(code, serial, box_key, recipients, settings, NOW)


def test_pairing_both_directions(box_key, camera_key):
    request = pair_request(box_key)
    wire = p.parse_json(p.canonical(request))
    pairing = p.verify_pair_request(wire, "1234-5678", "CAM001")
    assert pairing["box_key"] == p.key_hex(box_key) and pairing["settings"]["officer"] == "J. Jansen"
    response = p.build_pair_response("12345678", pairing, "CAM001", camera_key, NOW, "Sim", "1.0")
    got = p.verify_pair_response(p.parse_json(p.canonical(response)), "12345678", request)
    assert got["camera_key"] == p.key_hex(camera_key)


def test_pairing_wrong_code_refused(box_key, camera_key):
    request = pair_request(box_key, code="12345678")
    with pytest.raises(p.ProtocolError, match="does not match") as info:
        p.verify_pair_request(request, "87654321", "CAM001")
    assert info.value.status == 403 and info.value.code == "wrong_code"
    # The box side: a responder that does not know the code cannot answer convincingly.
    response = p.build_pair_response("00000000", request["pairing"], "CAM001", camera_key, NOW, "Sim", "1.0")
    with pytest.raises(p.ProtocolError, match="does not match"):
        p.verify_pair_response(response, "12345678", request)


def test_pairing_tampered_or_misdirected_refused(box_key, camera_key):
    request = pair_request(box_key)
    evil = json.loads(p.canonical(request))
    evil["pairing"]["recipients"] = [bytes(PrivateKey.generate().public_key).hex()]  # attacker's key
    with pytest.raises(p.ProtocolError, match="does not match"):
        p.verify_pair_request(evil, "12345678", "CAM001")
    with pytest.raises(p.ProtocolError, match="not CAM002"):
        p.verify_pair_request(request, "12345678", "CAM002")
    response = p.build_pair_response("12345678", request["pairing"], "CAM001", camera_key, NOW, "Sim", "1.0")
    swapped = json.loads(p.canonical(response))
    swapped["signature"] = p.sign(SigningKey.generate(), signing.DOCK_PAIR_RESPONSE, swapped["pairing"])
    with pytest.raises(p.ProtocolError, match="bad signature"):
        p.verify_pair_response(swapped, "12345678", request)
    with pytest.raises(p.ProtocolError, match="8 digits"):
        p.normalize_code("1234567")


def test_settings_monotonic_and_valid():
    settings = p.build_settings(3, 10, 20, None, "pooled")
    p.check_settings_newer(2, settings)
    with pytest.raises(p.ProtocolError, match="not newer") as info:
        p.check_settings_newer(3, settings)
    assert info.value.status == 409
    with pytest.raises(p.ProtocolError, match="assignment"):
        p.build_settings(4, assignment="shared")
    with pytest.raises(p.ProtocolError, match="unknown field"):
        p.parse_settings({**settings, "wifi": "on"})


def test_delete_and_confirmation(camera_key):
    body = p.build_delete("CAM001-000001", "ab" * 32)
    assert p.parse_delete(body, "CAM001-000001") == "ab" * 32
    with pytest.raises(p.ProtocolError, match="another recording"):
        p.parse_delete(body, "CAM001-000002")
    confirmation = p.build_deleted(camera_key, "CAM001", "CAM001-000001", "ab" * 32, NOW, "0f" * 16)
    p.verify_deleted(p.canonical(confirmation), camera_key.verify_key, "CAM001", "CAM001-000001", "ab" * 32)
    with pytest.raises(p.ProtocolError, match="another recording"):
        p.verify_deleted(confirmation, camera_key.verify_key, "CAM001", "CAM001-000001", "cd" * 32)


def test_recording_metadata_matches_manifest():
    e = entry()
    meta = json.loads(p.recording_metadata("CAM001", e))
    p.check_recording_metadata(meta, "CAM001", e)
    with pytest.raises(p.ProtocolError, match="officer"):
        p.check_recording_metadata({**meta, "officer": "X"}, "CAM001", e)


def test_info_round_trip(camera_key, box_key):
    info = p.build_info("CAM001", "Sim", "1.0", camera_key, True, p.key_hex(box_key), NOW, 2)
    assert p.parse_info(p.parse_json(p.canonical(info)))["box_fp"] == p.key_fingerprint(box_key)
    with pytest.raises(p.ProtocolError, match="fp does not match"):
        p.parse_info({**info, "fp": p.key_fingerprint(box_key)})


@pytest.mark.parametrize("header, expected", [
    (None, None), ("bytes=0-", (0, 100)), ("bytes=10-", (10, 100)), ("bytes=10-19", (10, 20)),
    ("bytes=90-500", (90, 100)),
])
def test_range(header, expected):
    assert p.parse_range(header, 100) == expected


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=-5", "bytes=0-1,5-6", "items=0-", "bytes=5-4"])
def test_bad_range(header):
    with pytest.raises(p.ProtocolError) as info:
        p.parse_range(header, 100)
    assert info.value.status == 416


# --- whatever a rogue device sends, the answer is a ProtocolError, never another exception; and what is
# --- accepted round-trips: its canonical form parses to the same value, and is accepted again ---------

from hypothesis import example, given, settings as hsettings, strategies as st  # noqa: E402

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=6),
    max_leaves=8,
)
_FIELDS = ["id", "size", "sha256", "start", "end", "pre_record_s", "post_record_s", "officer", "serial",
           "manifest", "signature", "recordings", "proto", "camera_time", "request_nonce", "pairing", "mac",
           "version", "assignment", "box_key", "recipients", "settings", "nonce", "time", "box_name"]
# Objects with the right field names and random values reach deeper than random objects.
_shaped = st.dictionaries(st.sampled_from(_FIELDS), _json, max_size=8)
_KEY = SigningKey(bytes(32))
_ROOM = 16 * p.MAX_MANIFEST_BODY  # canonical form may be longer than what was sent ("1E5" -> "100000.0")


def _accepted(call, *args):
    """What `call` returns, or None when it refuses with a ProtocolError (any other exception fails)."""
    try:
        return call(*args)
    except p.ProtocolError:
        return None


def _same_again(value: dict) -> None:
    """The round trip: canonical JSON of an accepted value parses to that value, and is a fixed point."""
    encoded = p.canonical(value)
    again = p.parse_json(encoded, limit=_ROOM)
    assert again == value
    assert p.canonical(again) == encoded


_VALID_TXT = {k.encode(): v.encode() for k, v in p.build_txt("CAM001", "M", "1", _KEY, False).items()}
_VALID_SETTINGS = p.build_settings(1)
_VALID_INFO = p.build_info("CAM001", "M", "1", _KEY, False, None, NOW, 1)


@hsettings(max_examples=300, deadline=None)
@given(st.dictionaries(st.binary(max_size=12), st.none() | st.binary(max_size=80), max_size=20))
@example(_VALID_TXT)  # random bytes are almost never a valid record: this one takes the round trip
def test_any_txt_is_parsed_or_refused(props):
    record = _accepted(p.parse_txt, props)
    if record is not None:
        assert p.parse_txt(record.properties()) == record


@hsettings(max_examples=300, deadline=None)
@given(st.binary(max_size=300) | _json.map(lambda v: json.dumps(v).encode()))
@example(b'{"a":1e400}')          # JSON, but reads as Infinity: refused
@example(b'{"a":-1E999}')
@example(b'{"a":"\\ud800"}')      # a lone surrogate: no UTF-8 form, refused
@example('{"a":"\ud800"}')
@example(b'{"a":"\\ud83d\\ude00","b":1E5,"c":-0.0}')  # a surrogate pair and odd numbers: accepted
def test_any_bytes_are_parsed_or_refused(body):
    value = _accepted(p.parse_json, body)
    if value is not None:
        _same_again(value)
    manifest = _accepted(p.verify_manifest, body, _KEY.verify_key, "CAM001")
    assert manifest is None  # nothing random carries the camera's signature
    _accepted(p.parse_delete, body, "CAM001-000001")
    assert _accepted(p.verify_deleted, body, _KEY.verify_key, "CAM001", "CAM001-000001", "ab" * 32) is None


def test_the_fuzz_examples_are_accepted_so_their_round_trips_run():
    assert _accepted(p.parse_txt, _VALID_TXT) is not None
    assert _accepted(p.parse_settings, _VALID_SETTINGS) is not None
    assert _accepted(p.parse_info, _VALID_INFO) is not None
    assert _accepted(p.parse_range, "bytes=10-19", 100) == (10, 20)


def test_out_of_range_numbers_and_lone_surrogates_are_refused():
    for body, reason in ((b'{"a":1e400}', "out of range"), (b'{"a":"\\udc00x"}', "surrogate"),
                         ('{"a":"\ud800"}', "UTF-8")):
        with pytest.raises(p.ProtocolError, match=reason):
            p.parse_json(body)


_REQUEST = p.build_pair_request("12345678", "CAM001", _KEY, ["cd" * 32], p.build_settings(1), NOW)


@hsettings(max_examples=150, deadline=None)
@given(_shaped | _json, _shaped)
@example(_VALID_SETTINGS, {})  # accepted by parse_settings: the round trip below runs
@example(_VALID_INFO, {})      # accepted by parse_info
def test_any_object_is_checked_or_refused(obj, inner):
    request = _REQUEST
    for outer in (obj, {"manifest": {**inner, "recordings": [obj]}, "signature": "00" * 64},
                  {"pairing": inner, "mac": "00" * 32}, {"pairing": inner, "mac": "00" * 32, "signature": "0"}):
        assert _accepted(p.verify_manifest, outer, _KEY.verify_key, "CAM001") is None
        assert _accepted(p.verify_pair_request, outer, "12345678", "CAM001") is None
        assert _accepted(p.verify_pair_response, outer, "12345678", request) is None
        for parse in (p.parse_settings, p.parse_info):
            accepted = _accepted(parse, outer)
            if accepted is not None:  # accepted once: its canonical form is accepted as the same value
                assert parse(p.parse_json(p.canonical(outer))) == accepted


@hsettings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from([p.H_TIME, p.H_NONCE, p.H_SIGNATURE, "X"]), st.text(max_size=140)),
       st.text(max_size=40))
@example({}, "bytes=10-19")
def test_any_request_headers_are_checked_or_refused(headers, range_header):
    assert _accepted(p.verify_request, _KEY.verify_key, "GET", "/dock/v1/manifest", headers, b"", NOW,
                     p.ReplayCache()) is None
    accepted = _accepted(p.parse_range, range_header, 100)
    if accepted is not None:
        start, end = accepted
        assert 0 <= start < end <= 100
        assert p.parse_range(f"bytes={start}-{end - 1}", 100) == accepted


# --- what the encoders build, the parsers accept: the same value, after the wire ---------------------

_times = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 1, 1),
                      timezones=st.just(timezone.utc)).map(lambda t: t.replace(microsecond=t.microsecond // 1000 * 1000))
_officers = st.none() | st.text(st.characters(min_codepoint=32, exclude_categories=("Cs",)), min_size=1,
                                max_size=64).filter(lambda s: s.strip() and "\x7f" not in s)
_ids = st.from_regex(p.RECORDING_ID_RE, fullmatch=True)
_serials = st.from_regex(p.SERIAL_RE, fullmatch=True)
_hex64 = st.binary(min_size=32, max_size=32).map(bytes.hex)
_pre_post = st.integers(0, p.MAX_PRE_POST_S)


@st.composite
def _entries(draw) -> list[dict]:
    ids = draw(st.lists(_ids, max_size=5, unique=True))
    entries = []
    for recording_id in ids:
        start = draw(_times)
        entries.append(p.manifest_entry(recording_id, draw(st.integers(1, p.MAX_RECORDING_SIZE)), draw(_hex64),
                                        start, start + timedelta(seconds=draw(st.integers(0, 86_400))),
                                        draw(_pre_post), draw(_pre_post), draw(_officers)))
    return entries


@hsettings(max_examples=150, deadline=None)
@given(_serials, _entries(), _times, st.none() | st.binary(min_size=16, max_size=16).map(bytes.hex))
def test_built_manifests_are_accepted_as_built(serial, entries, camera_time, nonce):
    built = p.build_manifest(_KEY, serial, entries, camera_time, nonce)
    wire = p.canonical(built)
    assert p.verify_manifest(wire, _KEY.verify_key, serial, nonce) == built["manifest"]
    for entry in entries:  # and the container metadata a camera writes matches its manifest entry
        p.check_recording_metadata(p.parse_json(p.recording_metadata(serial, entry)), serial, entry)


@hsettings(max_examples=150, deadline=None)
@given(st.integers(1, 2**53), _pre_post, _pre_post, _officers, st.sampled_from(p.ASSIGNMENTS))
def test_built_settings_are_accepted_as_built(version, pre, post, officer, assignment):
    built = p.build_settings(version, pre, post, officer, assignment)
    assert p.parse_settings(p.parse_json(p.canonical(built))) == built


@hsettings(max_examples=100, deadline=None)
@given(_serials, st.from_regex(r"[\x20-\x7e]{0,64}", fullmatch=True), st.booleans(), _times,
       st.integers(0, 2**53))
def test_built_info_and_txt_are_accepted_as_built(serial, model, paired, camera_time, version):
    info = p.build_info(serial, model, model, _KEY, paired, "cd" * 32 if paired else None, camera_time, version)
    assert p.parse_info(p.parse_json(p.canonical(info))) == info
    txt = p.build_txt(serial, model, model, _KEY, paired)
    wire = {k.encode(): v.encode() for k, v in txt.items()}
    assert p.parse_txt(wire).properties() == txt


@hsettings(max_examples=100, deadline=None)
@given(_serials, _ids, _hex64, _times, st.binary(min_size=16, max_size=16).map(bytes.hex))
def test_built_deletes_and_confirmations_are_accepted_as_built(serial, recording_id, sha256, now, nonce):
    assert p.parse_delete(p.build_delete(recording_id, sha256), recording_id) == sha256
    built = p.build_deleted(_KEY, serial, recording_id, sha256, now, nonce)
    assert p.verify_deleted(p.canonical(built), _KEY.verify_key, serial, recording_id, sha256) == built["deleted"]


@hsettings(max_examples=100, deadline=None)
@given(st.sampled_from(["GET", "POST", "DELETE"]), st.from_regex(r"/dock/v1/[a-z0-9/._-]{0,40}", fullmatch=True),
       st.binary(max_size=200))
def test_built_requests_are_accepted_as_built(method, path, body):
    headers = p.sign_request(_KEY, method, path, body, NOW)
    assert p.verify_request(_KEY.verify_key, method, path, headers, body, NOW, p.ReplayCache()) == headers[p.H_NONCE]


@hsettings(max_examples=5, deadline=None)  # two Argon2id derivations per example
@given(_serials, st.lists(_hex64, min_size=1, max_size=3, unique=True), _officers)
def test_built_pairings_are_accepted_as_built(serial, recipients, officer):
    request = p.build_pair_request("12345678", serial, _KEY, recipients, p.build_settings(1, officer=officer), NOW)
    assert p.verify_pair_request(p.parse_json(p.canonical(request)), "12345678", serial) == request["pairing"]
    camera = SigningKey(bytes(range(32)))
    response = p.build_pair_response("12345678", request["pairing"], serial, camera, NOW, "M", "1")
    assert p.verify_pair_response(p.parse_json(p.canonical(response)), "12345678", request) == response["pairing"]


def test_pairing_key_is_stretched_and_bound_to_the_exchange():
    import hashlib
    import hmac

    import nacl.pwhash.argon2id as argon2id

    key = p.pairing_key("1234 5678", "CAM001", "0f" * 16)
    salt = hashlib.sha256(b"kluis-dock/1 pairing\nCAM001\n" + b"0f" * 16).digest()[:16]
    assert key == argon2id.kdf(32, b"12345678", salt, opslimit=p.PAIRING_KDF[0], memlimit=p.PAIRING_KDF[1])
    assert p.PAIRING_KDF[1] >= 16 * 1024 * 1024  # memory-hard: no cheap GPU search of the 10^8 codes
    assert key != p.pairing_key("12345678", "CAM001", "1e" * 16) != p.pairing_key("12345678", "CAM002", "0f" * 16)
    # A MAC keyed with the bare code (cheap to search offline) is not accepted.
    request = pair_request(SigningKey.generate())
    cheap = hmac.new(b"12345678", p.D_PAIR_REQUEST.encode() + b"\n" + p.canonical(request["pairing"]),
                     hashlib.sha256).hexdigest()
    with pytest.raises(p.ProtocolError, match="does not match"):
        p.verify_pair_request({**request, "mac": cheap}, "12345678", "CAM001")
