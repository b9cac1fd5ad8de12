"""Which hashes the content destination computes of a clip, and what a repeated clip is known by.

The Axis spec asks for no hash of a clip (the Etag it requires is of the System JSON documents), and its
reference server answers a clip PUT with no Etag. So a W800's clip gets no MD5: it is known by the SHA-256
of the bytes as they came, which also tells a retry of the same clip from other bytes under its name. A
client that sends an ETag has it checked (422 on a mismatch, as in Swift: tests/axis/test_axis_bad_input.py),
and python-swiftclient, which compares the answer's Etag with its own MD5, gets the MD5 unasked: its own
`SwiftService.upload` checks it here. Real parts: the server on a socket, python-swiftclient, the catalog.
"""

from __future__ import annotations

import hashlib

import pytest
from swiftclient import client as swift
from swiftclient.service import SwiftService, SwiftUploadObject

from appliance.axis import spec
from tests.axis.conftest import (
    CONTAINER, T0, W800, cacert_from, clip_bytes, clip_headers, connection_document, md5, new_marker,
    recordings_of, swift_connection, unnamed_blobs,
)
from tests.conftest import PASSWORD, plaintext

CLIP = "20261207_095930_ab12.mp4"
W800_AGENT = {"User-Agent": "AXIS W800 (firmware 11.2)"}  # not a client known to check an Etag


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def clip_row(box, name: str = CLIP) -> dict:
    [row] = box.catalog.db.query("SELECT * FROM axis_objects WHERE container = ? AND name = ?", [CONTAINER, name])
    return row


def put(conn: swift.Connection, body: bytes, headers: dict | None = None) -> tuple[int, str | None]:
    """PUT the clip; (status, the answer's Etag or None)."""
    answer: dict = {}
    try:
        conn.put_object(CONTAINER, CLIP, body, headers={**clip_headers(T0 - 30, T0 + 10), **(headers or {})},
                        response_dict=answer)
    except swift.ClientException as exc:
        return exc.http_status, None
    return answer["status"], answer["headers"].get("etag")


@pytest.fixture
def w800(box, start_axis_server, tmp_path):
    srv = start_axis_server()
    conn = swift_connection(connection_document(box, srv), tmp_path)
    w800 = W800(conn)
    w800.register()
    w800.open()
    return w800


def test_a_w800_clip_gets_no_md5_and_a_retry_is_known_by_its_sha256(box, w800):
    body = clip_bytes(300_000, new_marker())
    assert put(w800.conn, body, W800_AGENT) == (201, None)  # no ETag sent, none answered (as Axis's server)
    row = clip_row(box)
    assert row["md5"] is None and row["received_sha256"] == sha256(body)
    assert "etag" not in w800.conn.head_object(CONTAINER, CLIP)  # no MD5 to show either
    # A retry of the same bytes (the W800 did not hear the 201) keeps the first copy.
    first_blob = row["stored_path"]
    assert put(w800.conn, body, W800_AGENT) == (201, None)
    assert clip_row(box)["stored_path"] == first_blob and unnamed_blobs(box) == []
    w800.complete()
    [rec] = recordings_of(box, CONTAINER)
    assert plaintext(box, box.unlock("admin", PASSWORD), rec["id"]) == body

    # After Complete: the same bytes are answered like the first time, other bytes are refused.
    assert put(w800.conn, body, W800_AGENT) == (201, None)
    other = clip_bytes(len(body), new_marker())
    assert put(w800.conn, other, W800_AGENT) == (403, None)
    assert recordings_of(box, CONTAINER) == [rec] and unnamed_blobs(box) == []


def test_a_clip_sent_with_an_etag_is_checked_and_answered_with_it(box, w800):
    body = clip_bytes(200_000, new_marker())
    assert put(w800.conn, body, {**W800_AGENT, "ETag": md5(body)}) == (201, md5(body))
    assert clip_row(box)["md5"] == md5(body)
    assert put(w800.conn, body, {**W800_AGENT, "ETag": md5(body[1:])}) == (422, None)
    assert clip_row(box)["md5"] == md5(body)  # the damaged transfer changed nothing
    # The same bytes again without an ETag: the stored MD5 is still the answer (it is of these bytes).
    assert put(w800.conn, body, W800_AGENT) == (201, md5(body))


def test_swiftclients_own_upload_gets_the_md5_it_checks(box, start_axis_server, tmp_path):
    srv = start_axis_server()
    doc = connection_document(box, srv)
    w800 = W800(swift_connection(doc, tmp_path))
    w800.register()
    w800.open()
    body = clip_bytes(250_000, new_marker())
    source = tmp_path / "clip.mp4"
    source.write_bytes(body)
    headers = [f"{k}:{v}" for k, v in clip_headers(T0 - 30, T0 + 10).items()]
    options = {"auth": doc["AuthenticationTokenURI"][0], "user": doc["BlobAPIUserName"], "key": doc["BlobAPIKey"],
               "auth_version": "1", "os_cacert": str(cacert_from(doc, tmp_path)), "retries": 0}
    with SwiftService(options=options) as service:
        results = list(service.upload(CONTAINER, [SwiftUploadObject(str(source), object_name=CLIP)],
                                      options={"header": headers, "checksum": True}))
    [uploaded] = [r for r in results if r.get("action") == "upload_object"]
    assert uploaded["success"], uploaded.get("error")
    # The Etag came back, so swiftclient compared it with the MD5 it took of the file (not skipped).
    assert uploaded["response_dict"]["headers"]["etag"] == md5(body)
    assert clip_row(box)["md5"] == md5(body) and clip_row(box)["received_sha256"] == sha256(body)


def test_a_clip_stored_before_sha256s_were_kept_is_known_by_its_md5(box, w800):
    body = clip_bytes(100_000, new_marker())
    assert put(w800.conn, body)[0] == 201  # python-swiftclient: its MD5 is computed
    w800.complete()
    # As a row of a box from before the received_sha256 step: an MD5 only.
    with box.catalog.transaction():
        box.catalog.db.execute("UPDATE axis_objects SET received_sha256 = NULL WHERE name = ?", [CLIP])
    assert put(w800.conn, body, W800_AGENT) == (201, md5(body))  # the MD5 is taken to know it
    assert put(w800.conn, clip_bytes(len(body), new_marker()), W800_AGENT) == (403, None)
    assert len(recordings_of(box, CONTAINER)) == 1


@pytest.mark.parametrize(("headers", "wanted"), [
    ({}, False),
    (W800_AGENT, False),
    ({"ETag": "d41d8cd98f00b204e9800998ecf8427e"}, True),
    ({"ETag": ""}, True),
    ({"User-Agent": "python-swiftclient-4.11.0"}, True),
    ({"User-Agent": "curl/8.5.0"}, False),
])
def test_when_the_md5_is_wanted(headers, wanted):
    assert spec.wants_md5(headers) is wanted
