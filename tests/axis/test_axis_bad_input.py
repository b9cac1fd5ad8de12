"""Everything a W800 (or anything pretending to be one) may send wrong, against the real server.

Each bad request must get the status code the Axis spec (or Swift) names, exactly one log line on
"kluis.axis" at INFO or WARNING about it, no traceback anywhere in the log, and must leave what the box
already stored as it was: a recording catalogued before the bad request still verifies
(appliance.recordings.verify) and its row and blob are unchanged.
"""

from __future__ import annotations

import base64
import concurrent.futures
import contextlib
import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

import pytest
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.padding import MGF1, OAEP
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from swiftclient import client as swift

from appliance import audit, recordings
from appliance.axis import accounts
from appliance.box import Box
from appliance.clock import system_clock
from appliance.dock import devices
from tests.axis.conftest import (
    CONTAINER, SERIAL, SYSTEM_ID, T0, USER_UUID, W800, AxisServer, RawClient, clip_bytes, clip_headers,
    configure, connection_document, encrypt_for, files_containing, md5, new_marker, pct, recordings_of,
    request, swift_connection, unnamed_blobs,
)
from tests.conftest import PASSWORD, plaintext
from tests.moving_clock import Clock

STORED = f"{USER_UUID}_{SERIAL}_20261207T090000Z"  # the recording stored before each bad request
STORED_CLIP = "20261207_085930_st01.mp4"
CLIP = "20261207_095930_ab12.mp4"
CLIP_2 = "20261207_100010_ab12.mp4"


def swift_status(call, *args, **kwargs) -> int:
    """The HTTP status of a swiftclient call, success or not."""
    response: dict = {}
    try:
        call(*args, response_dict=response, **kwargs)
    except swift.ClientException as exc:
        return exc.http_status
    return response["status"]


@dataclass
class Attempt:
    """One request and what the log said while it was handled."""
    status: int
    lines: list  # kluis.axis records at INFO or WARNING
    records: list  # every captured record
    text: str

    def assert_logged_once(self) -> None:
        traced = tracebacks(self.records, self.text)
        assert len(self.lines) == 1 and not traced, (
            f"{self.status}: wanted one kluis.axis line and no traceback, got lines "
            f"{[r.getMessage()[:200] for r in self.lines]} and tracebacks {traced}")
        assert str(self.status) in self.lines[0].getMessage()


def tracebacks(records: list, text: str) -> list[str]:
    """The records logged with a traceback (exc_info, stack), and any traceback in the captured text."""
    found = []
    for r in records:
        if r.exc_info or r.exc_text or r.stack_info:
            error = r.exc_info[1] if r.exc_info else None
            found.append(f"{r.name} {r.levelname} {r.getMessage()[:120]!r} ({type(error).__name__}: {error})"[:300])
    if not found and "Traceback" in text:
        found.append("'Traceback' in the log text")
    return found


def assert_no_traceback(records: list, text: str) -> None:
    traced = tracebacks(records, text)
    assert traced == [], f"tracebacks logged: {traced}"


@dataclass
class Scene:
    """A destination with one account, its W800 registered, one recording stored and Complete, and the
    recording container CONTAINER created (Transferring, no clips yet)."""
    srv: AxisServer
    box: Box  # the test's own view of the box
    doc: dict
    conn: swift.Connection
    w800: W800
    caplog: pytest.LogCaptureFixture
    tmp_path: object
    stored_clip: bytes = b""
    stored: dict = field(default_factory=dict)
    stored_blob: str = ""

    @property
    def account(self) -> str:
        return self.doc["BlobAPIUserName"]

    @property
    def token(self) -> str:
        return self.conn.token

    def path(self, container: str, obj: str | None = None) -> str:
        return f"/v1/AUTH_{self.account}/{container}" + (f"/{obj}" if obj is not None else "")

    def raw(self, method: str, path: str, headers: dict | None = None, body: bytes = b"", token: str | None = None,
            source: str | None = None) -> int:
        """A request exactly as given (path, headers), with the account's token unless told otherwise."""
        headers = {"X-Auth-Token": self.token if token is None else token, **(headers or {})}
        if token == "":
            del headers["X-Auth-Token"]
        return request(self.srv.port, method, path, headers, body, source=source)[0]

    def auth(self, key: str | None = None, user: str | None = None, source: str | None = None) -> int:
        return request(self.srv.port, "GET", "/auth/v1.0", {
            "X-Auth-User": self.account if user is None else user,
            "X-Auth-Key": self.doc["BlobAPIKey"] if key is None else key}, source=source)[0]

    def attempt(self, call, *args, **kwargs) -> Attempt:
        self.caplog.clear()
        got = call(*args, **kwargs)
        time.sleep(0.02)  # whatever the server logs after its answer is in the log too
        records = list(self.caplog.records)
        lines = [r for r in records if r.name == "kluis.axis" and r.levelno in (logging.INFO, logging.WARNING)]
        return Attempt(got, lines, records, self.caplog.text)

    def refused(self, status: int, call, *args, **kwargs) -> Attempt:
        """`call` (returning a status) answers `status`, with one log line and no traceback."""
        attempt = self.attempt(call, *args, **kwargs)
        assert attempt.status == status, [r.getMessage() for r in attempt.records]
        attempt.assert_logged_once()
        return attempt

    def store_recording(self) -> None:
        self.w800.open(STORED, T0 - 3600)
        self.stored_clip = clip_bytes(64 * 1024, new_marker())
        self.upload(STORED, STORED_CLIP, self.stored_clip, T0 - 3630, T0 - 3590)
        self.w800.complete(STORED)
        [rec] = recordings_of(self.box, STORED)
        self.stored = self.box.catalog.get_recording(rec["id"])
        self.stored_blob = hashlib.sha256((self.box.data_dir / self.stored["stored_path"]).read_bytes()).hexdigest()

    def upload(self, container: str, name: str, plain: bytes, start: int, stop: int) -> str:
        """A clip as this account's W800 sends it (with its key object first when it encrypts)."""
        if not self.doc["WantEncryption"]:
            return self.w800.clip(container, name, plain, start, stop)
        sealed = encrypt_for(self.doc, plain)
        self.conn.put_object(container, name.rsplit(".", 1)[0] + ".key", sealed.key_object,
                             headers={"X-Object-Meta-Starttime": str(start), "X-Object-Meta-Filetype": "key"})
        return self.w800.clip(container, name, sealed.ciphertext, start, stop)

    def unharmed(self) -> None:
        """The recording stored before still verifies and is as it was."""
        assert recordings.verify(self.box) == []
        assert self.box.catalog.get_recording(self.stored["id"]) == self.stored
        blob = (self.box.data_dir / self.stored["stored_path"]).read_bytes()
        assert hashlib.sha256(blob).hexdigest() == self.stored_blob
        identity = self.box.unlock("admin", PASSWORD)
        assert plaintext(self.box, identity, self.stored["id"]) == self.stored_clip
        assert unnamed_blobs(self.box) == []
        # Nothing half-written is left in DATA/tmp (a clip staged until its key object comes is named).
        named = self.box.catalog.stored_paths()
        leftovers = [p for p in (self.box.data_dir / "tmp").rglob("*")
                     if p.is_file() and str(p.relative_to(self.box.data_dir)) not in named]
        assert leftovers == []

    def clip_rows(self, container: str = CONTAINER) -> list[dict]:
        return list(self.box.catalog.db.query(
            "SELECT * FROM axis_objects WHERE account = ? AND container = ? AND kind = 'clip'",
            [self.account, container]))

    def restart(self, settings: dict) -> None:
        """The same box served again with other settings in kluis.toml."""
        self.srv.close()
        configure(self.box.data_dir, settings)
        self.srv = AxisServer(self.box.data_dir, self.srv.box.clock)
        self.doc = {**self.doc, "AuthenticationTokenURI": [self.srv.url]}  # a new port
        self.conn = swift_connection(self.doc, self.tmp_path)
        self.w800 = W800(self.conn)
        self.conn.url, self.conn.token = self.conn.get_auth()


@pytest.fixture
def make_scene(box, start_axis_server, axis_log, tmp_path):
    scenes = []

    def make(settings: dict | None = None, encrypt: bool = False, clock=system_clock) -> Scene:
        srv = start_axis_server(settings, clock)
        doc = connection_document(box, srv, encrypt=encrypt)
        conn = swift_connection(doc, tmp_path)
        conn.url, conn.token = conn.get_auth()
        scene = Scene(srv, box, doc, conn, W800(conn), axis_log, tmp_path)
        scene.w800.register()
        scene.store_recording()
        scene.w800.open(CONTAINER)
        axis_log.clear()
        scenes.append(scene)
        return scene

    yield make
    for scene in scenes:
        scene.srv.close()  # a restarted one; start_axis_server closes those it started (twice is harmless)


@pytest.fixture
def scene(make_scene) -> Scene:
    return make_scene()


# --- credentials and tokens -----------------------------------------------------------------------------------
def test_wrong_credentials_are_refused_audited_and_alerted(scene):
    wrong = swift_connection(scene.doc, scene.tmp_path, key="not-the-key")

    def log_in() -> int:
        try:
            wrong.get_auth()
        except swift.ClientException as exc:
            return exc.http_status
        return 200

    scene.refused(401, log_in)
    refusals = audit.entries(scene.box.catalog, action="axis_auth_refused")
    assert len(refusals) == 1
    assert refusals[0]["details"]["kind"] == "axis_auth_refused"
    assert refusals[0]["details"]["address"] == "127.0.0.1"
    assert [a["kind"] for a in devices.alerts(scene.box.catalog)] == ["axis_auth_refused"]

    scene.refused(401, scene.auth, user="nobody", key="whatever")
    scene.refused(401, scene.auth, key="")
    assert len(audit.entries(scene.box.catalog, action="axis_auth_refused")) == 3
    assert [a["kind"] for a in devices.alerts(scene.box.catalog)] == ["axis_auth_refused"] * 3
    assert scene.auth() == 200  # three wrong ones do not lock the W800 out
    scene.unharmed()


def test_an_address_with_five_wrong_keys_is_throttled_and_alerted_once(scene):
    for _ in range(5):
        scene.refused(401, scene.auth, key="guess")
    assert [a["kind"] for a in devices.alerts(scene.box.catalog)] == ["axis_auth_refused"] * 5

    # Now even the right key is refused from this address, without a check; the throttle is alerted once.
    scene.refused(401, scene.auth)
    scene.refused(401, scene.auth)
    scene.refused(401, scene.auth, key="guess")
    kinds = [a["kind"] for a in devices.alerts(scene.box.catalog)]
    assert kinds.count("axis_auth_throttled") == 1
    assert kinds.count("axis_auth_refused") == 5
    # Another address is not held up by this one.
    assert scene.auth(source="127.0.0.2") == 200
    scene.unharmed()


def test_an_expired_token_is_refused(make_scene):
    clock = Clock(datetime.now(timezone.utc))
    scene = make_scene(clock=clock)
    assert scene.raw("HEAD", scene.path(CONTAINER)) == 204
    clock.advance(hours=accounts.TOKEN_TTL_S // 3600, seconds=1)
    scene.refused(401, scene.raw, "HEAD", scene.path(CONTAINER))
    scene.refused(401, scene.raw, "PUT", scene.path("Users", "u-5678"), {"X-Object-Meta-Name": "X"})
    assert list(scene.box.catalog.db.query("SELECT * FROM axis_users WHERE uuid = 'u-5678'")) == []
    assert scene.auth() == 200  # a new token is to be had
    scene.unharmed()


def test_a_forged_token_is_refused(scene):
    prefix, mac = scene.token.rsplit("_", 1)
    account, expires = prefix.split("_")[1], int(prefix.split("_")[2])
    flipped = mac[:-1] + ("0" if mac[-1] != "0" else "1")
    for token in (f"{prefix}_{flipped}",                                 # another MAC
                  f"kluis_{account}_{expires + 10 ** 6}_{mac}",          # a later expiry under the old MAC
                  f"kluis_{account}_{expires}_{mac.upper()}",            # not the token's form
                  "kluis_" + account,                                    # no token at all really
                  "", "AUTH_tk" + "0" * 32):                              # none; a Swift tempauth-like one
        scene.refused(401, scene.raw, "PUT", scene.path(CONTAINER, CLIP), clip_headers(T0 - 30, T0 + 10),
                      b"data", token=token)
    assert scene.clip_rows() == []
    scene.unharmed()


def test_a_token_of_another_account_is_refused(scene, box):
    other = connection_document(box, scene.srv, site="W800 Zuid")
    other_conn = swift_connection(other, scene.tmp_path)
    _, other_token = other_conn.get_auth()
    scene.refused(401, scene.raw, "POST", scene.path(CONTAINER), {"X-Container-Meta-Triggeron": "Evil"},
                  token=other_token)
    scene.refused(401, scene.raw, "PUT", scene.path("System", "0badc0de-0000-0000-0000-000000000000"),
                  token=other_token)
    # A renewed connection file (a new key) ends the tokens of the old one.
    connection_document(box, scene.srv, site=scene.doc["SiteName"])
    scene.refused(401, scene.raw, "HEAD", scene.path(CONTAINER))
    assert accounts.get(box, scene.account)["system_id"] == SYSTEM_ID
    scene.unharmed()


# --- names and metadata ---------------------------------------------------------------------------------------
def test_names_outside_the_spec_are_refused(scene):
    acct = f"/v1/AUTH_{scene.account}"
    bad = [
        ("PUT", f"{acct}/../etc", 400),
        ("PUT", f"{acct}/%2e%2e", 400),
        ("PUT", f"{acct}/%2e%2e/%2e%2e/catalog.db", 400),
        ("PUT", f"{acct}/u-1234_B8A4%2F4F000001_20261207T100000Z", 400),  # a '/' inside the container name
        ("PUT", f"{acct}/u-1234_B8A4/4F000001_20261207T100000Z", 400),
        ("PUT", f"{acct}/{USER_UUID}_{'A' * 33}_20261207T100000Z", 400),   # a serial longer than 32
        ("PUT", f"{acct}/{USER_UUID}_{SERIAL}_2026-12-07T10:00:00Z", 400),
        ("PUT", f"{acct}/RejectedContent_20261207T100000Z_6f1c", 403),
        ("PUT", f"{acct}/{CONTAINER}/..%2F..%2Fcatalog.db", 400),
        ("PUT", f"{acct}/{CONTAINER}/20261207_095930_ab12.exe", 400),
        ("PUT", f"{acct}/{CONTAINER}/sub/20261207_095930_ab12.mp4", 400),
        ("PUT", f"{acct}/Users/..%2Fu-1", 400),
        ("PUT", f"{acct}/Devices/{'B' * 33}", 400),
        ("PUT", f"{acct}/System/..", 400),
        ("PUT", f"{acct}/System/Capabilities.json", 403),  # the destination's own document
    ]
    for method, path, expected in bad:
        scene.refused(expected, scene.raw, method, path, clip_headers(T0 - 30, T0 + 10), b"x" * 100)
    assert scene.clip_rows() == []
    assert list(scene.box.catalog.db.query("SELECT container FROM axis_recordings ORDER BY container")) == [
        {"container": STORED}, {"container": CONTAINER}]
    assert not (scene.box.data_dir.parent / "etc").exists()
    scene.unharmed()


def test_metadata_too_long_undecodable_or_with_control_characters_is_refused(scene):
    before = scene.conn.head_container(CONTAINER)
    bad = [
        ("POST", scene.path(CONTAINER), {"X-Container-Meta-Triggeron": "B" * 65}),
        ("POST", scene.path(CONTAINER), {"X-Container-Meta-Triggeronlocation": "%2B52.0907" + "0" * 60}),
        ("POST", scene.path(CONTAINER), {"X-Container-Meta-Triggeron": "%zz"}),
        ("POST", scene.path(CONTAINER), {"X-Container-Meta-Triggeron": "Button%"}),
        ("POST", scene.path(CONTAINER), {"X-Container-Meta-Triggeron": "a%0Ab"}),
        ("POST", scene.path(CONTAINER), {"X-Container-Meta-Triggeron": "a%7Fb"}),
        ("POST", scene.path(CONTAINER), {"X-Container-Meta-Triggeron": "%C3%28"}),  # not UTF-8
        ("POST", scene.path(CONTAINER), {"X-Container-Meta-Triggerontime": "gisteren"}),
        ("PUT", scene.path("Users", "u-5678"), {"X-Object-Meta-Name": pct("N" * 101)}),
        ("PUT", scene.path("Users", "u-5678"), {"X-Object-Meta-Name": "Jan%00"}),
        ("PUT", scene.path("Devices", "B8A44F000002"), {"X-Object-Meta-Name": "%G1"}),
        ("PUT", scene.path(CONTAINER, CLIP), {**clip_headers(T0 - 30, T0 + 10), "X-Object-Meta-Starttime": "nu"}),
        ("PUT", scene.path(CONTAINER, CLIP), {**clip_headers(T0 - 30, T0 + 10),
                                              "X-Object-Meta-Startlocation": "%ZZ"}),
    ]
    for method, path, headers in bad:
        scene.refused(400, scene.raw, method, path, headers, b"x" * 64 if "mp4" in path else b"")
    after = scene.conn.head_container(CONTAINER)
    assert {k: v for k, v in after.items() if k.startswith("x-container-meta")} == {
        k: v for k, v in before.items() if k.startswith("x-container-meta")}
    assert list(scene.box.catalog.db.query("SELECT uuid FROM axis_users")) == [{"uuid": USER_UUID}]
    assert list(scene.box.catalog.db.query("SELECT serial FROM axis_devices")) == [{"serial": SERIAL}]
    assert scene.clip_rows() == []
    scene.unharmed()


def test_metadata_or_names_beyond_the_http_line_limit_are_400_without_a_traceback(scene):
    # Longer than any limit of the spec, and longer than the HTTP parser's line limit (8190 bytes): the
    # request is refused before it reaches the destination's handlers, but still as one refusal.
    long_value = scene.attempt(scene.raw, "POST", scene.path(CONTAINER), {"X-Container-Meta-Triggeron": "B" * 10_000})
    long_name = scene.attempt(scene.raw, "PUT", scene.path(CONTAINER, "2" * 9_000 + ".mp4"), clip_headers(T0 - 30, T0))
    assert (long_value.status, long_name.status) == (400, 400)
    assert scene.conn.head_container(CONTAINER)["x-container-meta-triggeron"] == "Button"
    assert scene.clip_rows() == []
    scene.unharmed()
    long_value.assert_logged_once()
    long_name.assert_logged_once()


def test_a_recording_of_an_unknown_user_or_device_is_400(scene):
    unknown_user = f"u-9999_{SERIAL}_20261207T100000Z"
    unknown_device = f"{USER_UUID}_B8A44F00FFFF_20261207T100000Z"
    scene.refused(400, swift_status, scene.conn.put_container, unknown_user)
    scene.refused(400, swift_status, scene.conn.put_container, unknown_device)
    assert list(scene.box.catalog.db.query("SELECT container FROM axis_recordings ORDER BY container")) == [
        {"container": STORED}, {"container": CONTAINER}]
    scene.unharmed()


def test_a_clip_for_an_unknown_user_or_device_is_400(scene):
    # The spec: "If the information in the recording doesn't match existing users or devices, a 400 Bad
    # Request error response should be sent" (400: never storable, the W800 gives up and keeps it), for a
    # clip of such a recording as for its container.
    for container in (f"u-9999_{SERIAL}_20261207T100000Z", f"{USER_UUID}_B8A44F00FFFF_20261207T100000Z"):
        scene.refused(400, swift_status, scene.conn.put_object, container, CLIP, b"x" * 1000,
                      headers=clip_headers(T0 - 30, T0 + 10))
        assert scene.clip_rows(container) == []
    assert unnamed_blobs(scene.box) == []
    scene.unharmed()


# --- bodies ---------------------------------------------------------------------------------------------------
def test_a_declared_huge_clip_is_400_without_reading_it(make_scene):
    scene = make_scene({"axis": {"max_clip_mb": 1}})
    client = RawClient(scene.srv.port, timeout=5)

    def huge() -> int:
        began = time.monotonic()
        client.head("PUT", scene.path(CONTAINER, CLIP), {
            "X-Auth-Token": scene.token, "Content-Length": str((1 << 20) + 1), **clip_headers(T0 - 30, T0 + 10)})
        response = client.response()  # no byte of the body was sent: the answer may not wait for it
        assert time.monotonic() - began < 3
        return response.status

    try:
        scene.refused(400, huge)
    finally:
        client.close()
    scene.srv.wait_uploads(0)
    assert scene.clip_rows() == []
    # A clip just under the limit is taken.
    assert scene.w800.clip(CONTAINER, CLIP, b"y" * ((1 << 20) - 1), T0 - 30, T0 + 10)
    scene.unharmed()


def test_an_endless_chunked_clip_is_400_once_it_crosses_the_limit(make_scene):
    scene = make_scene({"axis": {"max_clip_mb": 1}})
    client = RawClient(scene.srv.port, timeout=10)
    sent = 0

    def endless() -> int:
        nonlocal sent
        client.head("PUT", scene.path(CONTAINER, CLIP), {
            "X-Auth-Token": scene.token, "Transfer-Encoding": "chunked", **clip_headers(T0 - 30, T0 + 10)})
        piece = os.urandom(64 * 1024)
        frame = b"%x\r\n" % len(piece) + piece + b"\r\n"
        try:
            while not client.readable() and sent < 64 << 20:
                client.send(frame)
                sent += len(piece)
        except OSError:
            pass  # the server may stop reading once it has answered
        return client.response().status

    try:
        scene.refused(400, endless)
    finally:
        client.close()
    assert 1 << 20 < sent < 64 << 20
    scene.srv.wait_uploads(0)
    assert scene.clip_rows() == []
    scene.unharmed()


def test_a_clip_that_does_not_match_its_etag_is_422(scene):
    body = clip_bytes(100_000, new_marker())
    scene.refused(422, swift_status, scene.conn.put_object, CONTAINER, CLIP, body,
                  headers=clip_headers(T0 - 30, T0 + 10), etag=md5(body[:-1]))
    assert scene.clip_rows() == []
    scene.unharmed()
    assert scene.w800.clip(CONTAINER, CLIP, body, T0 - 30, T0 + 10, etag=md5(body)) == md5(body)


def test_a_key_object_that_does_not_unwrap_is_400(make_scene):
    scene = make_scene(encrypt=True)
    sealed = encrypt_for(scene.doc, b"plain")
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    to_stranger = stranger.public_key().encrypt(os.urandom(32), OAEP(MGF1(hashes.SHA1()), hashes.SHA1(), None))
    good = json.loads(sealed.key_object)
    key_name = CLIP.rsplit(".", 1)[0] + ".key"
    bad = [
        {**good, "EncryptedKey": base64.b64encode(to_stranger).decode()},  # wrapped to another key
        {**good, "EncryptedKey": base64.b64encode(os.urandom(384)).decode()},
        {**good, "EncryptedKey": "not base64!"},
        {**good, "ContentEncryptionIV": base64.b64encode(os.urandom(8)).decode()},
        {"ContentEncryptionIV": good["ContentEncryptionIV"]},
    ]
    for document in bad:
        scene.refused(400, swift_status, scene.conn.put_object, CONTAINER, key_name, json.dumps(document).encode(),
                      headers={"X-Object-Meta-Filetype": "key"})
    scene.refused(400, swift_status, scene.conn.put_object, CONTAINER, key_name, b"\x00not json",
                  headers={"X-Object-Meta-Filetype": "key"})
    assert list(scene.box.catalog.db.query("SELECT name FROM axis_objects WHERE container = ?", [CONTAINER])) == []
    scene.unharmed()


def test_a_key_object_that_does_not_fit_its_staged_clip_is_400_and_the_right_one_still_works(make_scene):
    scene = make_scene(encrypt=True)
    marker = new_marker()
    plain = clip_bytes(100_000, marker)
    sealed = encrypt_for(scene.doc, plain)
    key_name = CLIP.rsplit(".", 1)[0] + ".key"
    key_headers = {"X-Object-Meta-Starttime": str(T0 - 30), "X-Object-Meta-Filetype": "key"}
    assert scene.w800.clip(CONTAINER, CLIP, sealed.ciphertext, T0 - 30, T0 + 10) == md5(sealed.ciphertext)

    # Another AES key, wrapped to this box (so it unwraps), under which the clip's padding is wrong.
    public = serialization.load_pem_public_key(base64.b64decode(scene.doc["PublicKey"]))
    good = json.loads(sealed.key_object)
    iv = base64.b64decode(good["ContentEncryptionIV"])
    while True:
        wrong_key = os.urandom(32)
        dec = Cipher(algorithms.AES(wrong_key), modes.CBC(iv)).decryptor()
        tail = (dec.update(sealed.ciphertext) + dec.finalize())[-16:]
        unpadder = padding.PKCS7(128).unpadder()
        try:
            unpadder.update(tail)
            unpadder.finalize()
        except ValueError:
            break
    wrong = {**good, "EncryptedKey": base64.b64encode(public.encrypt(
        wrong_key, OAEP(MGF1(hashes.SHA1()), hashes.SHA1(), None))).decode()}
    scene.refused(400, swift_status, scene.conn.put_object, CONTAINER, key_name, json.dumps(wrong).encode(),
                  headers=key_headers)
    assert [r["stored_sha256"] for r in scene.clip_rows()] == [None]  # still staged, as it came
    assert unnamed_blobs(scene.box) == []
    scene.unharmed()
    refused_key_head = scene.raw("HEAD", scene.path(CONTAINER, key_name))

    # The right key object still opens it.
    assert swift_status(scene.conn.put_object, CONTAINER, key_name, sealed.key_object, headers=key_headers) == 201
    scene.w800.complete()
    [rec] = recordings_of(scene.box, CONTAINER)
    identity = scene.box.unlock("admin", PASSWORD)
    assert plaintext(scene.box, identity, rec["id"]) == plain
    assert files_containing(scene.box.data_dir, marker) == []
    assert list((scene.box.data_dir / "tmp").rglob("*.cbc")) == []
    # A refused PUT stores nothing (Swift): the key object answered 400 was not there afterwards.
    assert refused_key_head == 404


def test_a_gnss_track_that_is_not_the_spec_json_is_400(scene):
    name = f"20261207_095930_ab12_{SERIAL}_gpstrail.json"
    for body in (b"<gpx></gpx>", b'{"Points": []}', b'{"CoordinateEntries": {}}',
                 json.dumps({"CoordinateEntries": [{"LocationWKT": "LINESTRING(5 52, 6 53)"}]}).encode(),
                 json.dumps({"CoordinateEntries": [{"LocationWKT": "POINT(500 52)"}]}).encode(),
                 json.dumps({"CoordinateEntries": [{"LocationWKT": "POINT(5 52)",
                                                    "SecondsFromStart": "soon"}]}).encode(),
                 b"\xff\xfe\x00"):
        scene.refused(400, swift_status, scene.conn.put_object, CONTAINER, name, body,
                      headers={"X-Object-Meta-Filetype": "json"})
    assert list(scene.box.catalog.db.query("SELECT name FROM axis_objects WHERE container = ?", [CONTAINER])) == []
    scene.unharmed()


# --- the recording's life -------------------------------------------------------------------------------------
def test_complete_before_any_clip_is_400(scene):
    scene.refused(400, swift_status, scene.conn.post_container, CONTAINER, {"X-Container-Meta-Status": "Complete"})
    assert recordings_of(scene.box, CONTAINER) == []
    assert [r["status"] for r in scene.box.catalog.db.query(
        "SELECT status FROM axis_recordings WHERE container = ?", [CONTAINER])] == ["transferring"]
    status_after_refusal = scene.conn.head_container(CONTAINER)["x-container-meta-status"]
    scene.unharmed()
    # The recording can still arrive.
    scene.upload(CONTAINER, CLIP, b"late clip", T0 - 30, T0 + 10)
    scene.w800.complete()
    assert len(recordings_of(scene.box, CONTAINER)) == 1
    scene.unharmed()
    # ... and the refused Complete did not change what the container says of itself.
    assert status_after_refusal == "Transferring"


def test_a_second_system_id_on_a_bound_account_is_403_and_alerted(scene):
    other = "0badc0de-1111-2222-3333-444455556666"
    headers = {"X-Object-Meta-Systemname": pct("W800 Elders"), "X-Object-Meta-Connectionid": "c-9"}
    scene.refused(403, swift_status, scene.conn.put_object, "System", other, b"", headers=headers)
    alerts = [a for a in devices.alerts(scene.box.catalog) if a["kind"] == "axis_system_id_refused"]
    assert len(alerts) == 1 and other in alerts[0]["message"]
    row = accounts.get(scene.box, scene.account)
    assert (row["system_id"], row["system_name"]) == (SYSTEM_ID, "W800 Noord")
    assert len(audit.entries(scene.box.catalog, action="axis_first_contact")) == 1
    scene.refused(403, swift_status, scene.conn.post_object, "System", other, headers=headers)
    assert swift_status(scene.conn.put_object, "System", SYSTEM_ID, b"", headers={
        "X-Object-Meta-Systemname": pct("W800 Noord")}) == 201
    scene.unharmed()


@contextlib.contextmanager
def one_slot_held(make_scene, queue_wait_s: float):
    """A scene with one upload slot ([axis] max_uploads = 1, queue_wait_s), taken by a raw client that starts
    uploading a 200 000-byte clip and sends only its first 50 000 bytes (the rest later). Yields (scene,
    the clip, the client); closes the client at the end."""
    scene = make_scene({"axis": {"max_uploads": 1, "queue_wait_s": queue_wait_s}})
    first = clip_bytes(200_000, new_marker())
    holder = RawClient(scene.srv.port)
    try:
        holder.head("PUT", scene.path(CONTAINER, CLIP), {
            "X-Auth-Token": scene.token, "Content-Length": str(len(first)), **clip_headers(T0 - 30, T0 + 10)})
        holder.send(first[:50_000])
        scene.srv.wait_uploads(1)
        yield scene, first, holder
    finally:
        holder.close()


def test_too_many_uploads_at_once_is_503(make_scene):
    with one_slot_held(make_scene, queue_wait_s=0.5) as (scene, first, holder):
        second = clip_bytes(10_000, new_marker())
        attempt = scene.refused(503, swift_status, scene.conn.put_object, CONTAINER, CLIP_2, second,
                                headers=clip_headers(T0 + 10, T0 + 50))
        assert attempt.lines[0].levelno == logging.INFO  # busy is no fault of anyone
        holder.send(first[50_000:])
        response = holder.response()
        # A client that sent no ETag and is not known to check one (as a W800) is answered with none.
        assert response.status == 201 and response.getheader("Etag") is None
    scene.srv.wait_uploads(0)
    # The W800 tries again soon, and then it goes.
    assert scene.w800.clip(CONTAINER, CLIP_2, second, T0 + 10, T0 + 50) == md5(second)
    scene.w800.complete()
    assert len(recordings_of(scene.box, CONTAINER)) == 2
    scene.unharmed()


def test_an_upload_waits_for_a_slot_instead_of_503(make_scene):
    # With a slot coming free within [axis] queue_wait_s, the second clip is held, not refused.
    with one_slot_held(make_scene, queue_wait_s=30) as (scene, first, holder):
        second = clip_bytes(10_000, new_marker())
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(swift_status, scene.conn.put_object, CONTAINER, CLIP_2, second,
                                  headers=clip_headers(T0 + 10, T0 + 50))
            time.sleep(1.0)
            assert not waiting.done()  # held while the first clip streams
            holder.send(first[50_000:])
            assert holder.response().status == 201
            assert waiting.result(timeout=30) == 201
    scene.w800.complete()
    assert len(recordings_of(scene.box, CONTAINER)) == 2
    scene.unharmed()


def test_no_room_is_507(scene):
    scene.restart({"storage": {"reserve_mb": 10 ** 9}})
    body = clip_bytes(50_000, new_marker())
    attempt = scene.attempt(swift_status, scene.conn.put_object, CONTAINER, CLIP, body,
                            headers=clip_headers(T0 - 30, T0 + 10))
    assert attempt.status == 507
    assert scene.clip_rows() == []
    scene.unharmed()
    attempt.assert_logged_once()


@pytest.mark.parametrize("mode", ["plain", "encrypted_key_first", "encrypted_clip_first"])
def test_a_connection_cut_mid_clip_leaves_nothing_and_the_clip_comes_again(make_scene, mode):
    scene = make_scene(encrypt=mode != "plain")
    marker = new_marker()
    plain = clip_bytes(400_000, marker)
    key_name = CLIP.rsplit(".", 1)[0] + ".key"
    key_headers = {"X-Object-Meta-Starttime": str(T0 - 30), "X-Object-Meta-Filetype": "key"}
    if mode == "plain":
        body = plain
    else:
        sealed = encrypt_for(scene.doc, plain)
        body = sealed.ciphertext
        if mode == "encrypted_key_first":
            scene.conn.put_object(CONTAINER, key_name, sealed.key_object, headers=key_headers)
    client = RawClient(scene.srv.port)

    def cut() -> int:
        client.head("PUT", scene.path(CONTAINER, CLIP), {
            "X-Auth-Token": scene.token, "Content-Length": str(len(body)), **clip_headers(T0 - 30, T0 + 10)})
        client.send(body[:len(body) // 2])
        scene.srv.wait_uploads(1)
        client.close()  # the W800 loses its link half-way
        scene.srv.wait_uploads(0)
        return 0  # no status: nobody is there to hear one

    attempt = scene.attempt(cut)
    assert scene.clip_rows() == []
    assert recordings_of(scene.box, CONTAINER) == []
    assert unnamed_blobs(scene.box) == []
    assert list((scene.box.data_dir / "tmp").rglob("*.cbc")) == []  # no staged ciphertext either
    scene.unharmed()

    # The W800 sends the clip again, and then it arrives whole.
    assert scene.w800.clip(CONTAINER, CLIP, body, T0 - 30, T0 + 10) == md5(body)
    if mode == "encrypted_clip_first":
        scene.conn.put_object(CONTAINER, key_name, sealed.key_object, headers=key_headers)
    scene.w800.complete()
    [rec] = recordings_of(scene.box, CONTAINER)
    identity = scene.box.unlock("admin", PASSWORD)
    assert plaintext(scene.box, identity, rec["id"]) == plain
    assert unnamed_blobs(scene.box) == []
    assert files_containing(scene.box.data_dir, marker) == []

    # One line about the cut upload, and no traceback.
    assert_no_traceback(attempt.records, attempt.text)
    assert len(attempt.lines) == 1, [r.getMessage() for r in attempt.lines]


def test_a_complete_recording_takes_its_own_clip_again_but_no_other(scene):
    other = clip_bytes(len(scene.stored_clip), new_marker())
    scene.refused(403, swift_status, scene.conn.put_object, STORED, STORED_CLIP, other,
                  headers=clip_headers(T0 - 3630, T0 - 3590))
    scene.unharmed()
    # The same bytes again (a W800 that did not hear the first 201) are answered like the first time.
    assert scene.w800.clip(STORED, STORED_CLIP, scene.stored_clip, T0 - 3630, T0 - 3590) == md5(scene.stored_clip)
    # Nor may anything else of the complete recording change.
    scene.refused(403, swift_status, scene.conn.put_object, STORED, "20261207_085950_st01.mp4", other,
                  headers=clip_headers(T0 - 3590, T0 - 3580))
    scene.refused(403, swift_status, scene.conn.post_container, STORED, {"X-Container-Meta-Triggeron": "Other"})
    scene.refused(403, swift_status, scene.conn.put_object, STORED, "bookmark_2026-12-07T09:00:05Z_9", b"later")
    # The same bytes under a wrong ETag are a damaged transfer (422), and change nothing either.
    scene.refused(422, swift_status, scene.conn.put_object, STORED, STORED_CLIP, scene.stored_clip,
                  headers=clip_headers(T0 - 3630, T0 - 3590), etag=md5(other))
    assert len(recordings_of(scene.box, STORED)) == 1
    scene.unharmed()


def test_the_w800_credentials_do_not_read_footage_back(scene):
    """A W800's key stores recordings; it opens none (nor removes one) through the API."""
    for method in ("GET", "DELETE"):
        answer: dict = {}

        def ask(method: str = method, answer: dict = answer) -> int:  # this round's, not the loop's last
            answer["status"], answer["body"] = request(scene.srv.port, method, scene.path(STORED, STORED_CLIP),
                                                       {"X-Auth-Token": scene.token})
            return answer["status"]

        scene.refused(403, ask)
        assert scene.stored_clip[:1024] not in answer["body"]
    scene.unharmed()


def test_oversized_small_objects_are_400_whether_declared_or_endless(scene):
    """Key objects, bookmarks, GNSS tracks, users and devices have the spec's small sizes: a body declared
    larger is refused before it is read, one that never ends is refused once it crosses the limit."""
    from appliance.axis import spec

    gnss = f"20261207_095930_ab12_{SERIAL}_gpstrail.json"
    objects = [(scene.path(CONTAINER, CLIP.rsplit(".", 1)[0] + ".key"), spec.MAX_SMALL_BODY),
               (scene.path(CONTAINER, "bookmark_2026-12-07T10:00:05Z_1"), spec.MAX_BOOKMARK_BODY),
               (scene.path(CONTAINER, gnss), spec.MAX_GNSS_BODY),
               (scene.path("Users", "u-5678"), spec.MAX_SMALL_BODY),
               (scene.path("Devices", "B8A44F000002"), spec.MAX_SMALL_BODY)]

    def declared(path: str, limit: int) -> int:
        client = RawClient(scene.srv.port, timeout=10)
        try:
            client.head("PUT", path, {"X-Auth-Token": scene.token, "Content-Length": str(limit + 1)})
            return client.response().status  # no byte of the body was sent: the answer does not wait for it
        finally:
            client.close()

    def endless(path: str, limit: int) -> int:
        client = RawClient(scene.srv.port, timeout=10)
        sent = 0
        try:
            client.head("PUT", path, {"X-Auth-Token": scene.token, "Transfer-Encoding": "chunked"})
            piece = b"{" * 4096
            frame = b"%x\r\n" % len(piece) + piece + b"\r\n"
            try:
                while not client.readable() and sent < limit + (32 << 20):
                    client.send(frame)
                    sent += len(piece)
            except OSError:
                pass  # the server may stop reading once it has answered
            # it answered long before the end (socket buffers hold some MiB the server never read)
            assert limit < sent < limit + (32 << 20), (path, sent)
            return client.response().status
        finally:
            client.close()

    for path, limit in objects:
        for attempt in (scene.refused(400, declared, path, limit), scene.refused(400, endless, path, limit)):
            assert f"body of {limit + 1} bytes" in attempt.lines[0].getMessage() or \
                f"body over {limit} bytes" in attempt.lines[0].getMessage(), (path, attempt.lines[0].getMessage())
    assert list(scene.box.catalog.db.query("SELECT name FROM axis_objects WHERE container = ?", [CONTAINER])) == []
    assert [r["uuid"] for r in scene.box.catalog.db.query("SELECT uuid FROM axis_users")] == [USER_UUID]
    assert [r["serial"] for r in scene.box.catalog.db.query("SELECT serial FROM axis_devices")] == [SERIAL]
    scene.unharmed()
