"""Kluis as an Axis Body Worn content destination, driven by the OpenStack project's own Swift client.

python-swiftclient (auth v1.0, the connection file's certificate as its only trust anchor, no retries)
does what a W800 system controller does: authenticate, read System/Capabilities.json, bind its System ID,
register users and devices, create a recording container, upload clips, a bookmark and a GNSS track, and
set the container's Status to Complete. Then the recordings must be in the catalog, verifiable with
`kluis verify`, readable with `kluis cat` by a privacy officer, and nowhere on disk in plaintext.
Also the end-to-end encrypted path (WantEncryption): the clip as AES-256-CBC, its key object wrapped with
RSA-OAEP to the connection file's PublicKey, the key object before its clip and after it.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from swiftclient import client as swift

from appliance import audit, recording_places, retention, sweep
from appliance.clock import from_iso
from appliance.axis import accounts, transport
from tests.axis.conftest import (
    CONTAINER, SERIAL, SYSTEM_ID, T0, USER_UUID, W800, clip_bytes, configure, connection_document,
    container_meta, encrypt_for, files_containing, md5, new_marker, pct, recordings_of, swift_connection,
    unnamed_blobs,
)

CLIP_1 = "20261207_095930_ab12.mp4"  # 09:59:30 .. 10:00:10 (with 30 s of pre-buffer before the trigger)
CLIP_2 = "20261207_100010_ab12.mp4"  # 10:00:10 .. 10:00:50
GNSS = f"20261207_095930_ab12_{SERIAL}_gpstrail.json"
BOOKMARK = "bookmark_2026-12-07T10:00:05Z_1"
TRACK = {"CoordinateEntries": [
    {"LocationWKT": "POINT(5.1214 52.0907)", "SecondsFromStart": 0.0, "Timestamp": "2026-12-07T09:59:30Z"},
    {"LocationWKT": "POINT(5.1220 52.0911)", "SecondsFromStart": 30.0, "Timestamp": "2026-12-07T10:00:00Z"},
]}


def status(call, *args, **kwargs) -> int:
    """The HTTP status of a swiftclient call that succeeds."""
    response: dict = {}
    call(*args, response_dict=response, **kwargs)
    return response["status"]


def cat(kluis, data: Path, recording_id: str, officer_args: list) -> bytes:
    return kluis("cat", "--data", data, recording_id, "--purpose", "complaint", "--case", "K-12",
                 *officer_args).stdout


# --- authentication, capabilities, the System ID -------------------------------------------------------------
def test_auth_round_trip_gives_a_storage_url_and_a_token_that_works(box, start_axis_server, tmp_path):
    srv = start_axis_server()
    doc = connection_document(box, srv)
    conn = swift_connection(doc, tmp_path)

    url, token = conn.get_auth()
    account = doc["BlobAPIUserName"]
    assert url == f"https://127.0.0.1:{srv.port}/v1/AUTH_{account}"
    assert token.startswith(f"kluis_{account}_")
    # The token is what authorises the storage requests: with it the account answers, without it not.
    def with_token(value: str) -> swift.Connection:
        return swift.Connection(preauthurl=url, preauthtoken=value, cacert=conn.cacert, retries=0)

    with_token(token).head_account()
    with pytest.raises(swift.ClientException) as refused:
        with_token(f"kluis_{account}_1_{'0' * 40}").head_account()
    assert refused.value.http_status == 401
    headers, body = conn.get_object("System", "Capabilities.json")
    assert json.loads(body)["StoreAndRead"]["StoreReadSystemID"] is True

    wrong = swift_connection(doc, tmp_path, key=doc["BlobAPIKey"][:-2] + "xx")
    with pytest.raises(swift.ClientException) as refused:
        wrong.get_auth()
    assert refused.value.http_status == 401

    # The key is in the connection file only; the box keeps its hash.
    assert files_containing(box.data_dir, doc["BlobAPIKey"].encode()) == []
    assert accounts.get(box, account)["key_hash"] == hashlib.sha256(doc["BlobAPIKey"].encode()).hexdigest()


def test_capabilities_and_categories_carry_their_md5_as_etag(box, axis_data, start_axis_server, tmp_path):
    configure(axis_data, {"retention.categories": {"incident": 90, "aanhouding": 180}})
    srv = start_axis_server()
    conn = swift_connection(connection_document(box, srv), tmp_path)

    headers, body = conn.get_object("System", "Capabilities.json")
    assert headers["etag"].strip('"') == md5(body)
    capabilities = json.loads(body)
    assert capabilities["StoreAndRead"]["StoreReadSystemID"] is True
    assert capabilities["Store"]["StoreBookmarks"] is True
    assert capabilities["Store"]["StoreGNSSTrackRecording"] is True
    assert capabilities["Store"].get("StoreRejectedContent", False) is False

    headers, body = conn.get_object("System", "Categories.json")
    assert headers["etag"].strip('"') == md5(body)
    assert sorted(c["Name"] for c in json.loads(body)) == ["aanhouding", "incident"]


def test_the_first_system_id_binds_the_account(box, start_axis_server, tmp_path):
    srv = start_axis_server()
    doc = connection_document(box, srv)
    conn = swift_connection(doc, tmp_path)
    account = doc["BlobAPIUserName"]
    assert accounts.get(box, account)["system_id"] is None

    headers = {"X-Object-Meta-Systemname": pct("W800 Noord"), "X-Object-Meta-Connectionid": "c-7"}
    assert status(conn.put_object, "System", SYSTEM_ID, b"", headers=headers) == 201
    bound = accounts.get(box, account)
    assert bound["system_id"] == SYSTEM_ID and bound["system_name"] == "W800 Noord"
    assert bound["connection_id"] == "c-7"
    first = audit.entries(box.catalog, action="axis_first_contact")
    assert len(first) == 1
    assert first[0]["details"]["system_id"] == SYSTEM_ID and first[0]["details"]["account"] == account

    # The same system again (a renamed system, a reconnect) is no new first contact.
    headers["X-Object-Meta-Systemname"] = pct("W800 Noord-Oost")
    assert status(conn.put_object, "System", SYSTEM_ID, b"", headers=headers) == 201
    assert len(audit.entries(box.catalog, action="axis_first_contact")) == 1
    assert accounts.get(box, account)["system_name"] == "W800 Noord-Oost"
    read = conn.head_object("System", SYSTEM_ID)  # swiftclient URL-decodes the values it reads
    assert read["x-object-meta-systemname"] == "W800 Noord-Oost"
    assert read["x-object-meta-connectionid"] == "c-7"


def test_users_and_devices_are_registered_and_renamed(box, start_axis_server, tmp_path):
    srv = start_axis_server()
    doc = connection_document(box, srv)
    conn = swift_connection(doc, tmp_path)
    account = doc["BlobAPIUserName"]

    user_headers = {"X-Object-Meta-Name": pct("Priscilla de Vries-Çelik"), "X-Object-Meta-Userid": "1001",
                    "X-Object-Meta-Active": "True"}
    assert status(conn.put_object, "Users", USER_UUID, b"", headers=user_headers) == 201
    assert status(conn.put_object, "Devices", SERIAL, b"", headers={
        "X-Object-Meta-Name": pct("Cam 1"), "X-Object-Meta-Model": "W101", "X-Object-Meta-Active": "True"}) == 201

    users = list(box.catalog.db.query("SELECT * FROM axis_users WHERE account = ?", [account]))
    assert [(u["uuid"], u["name"], u["user_id"], u["active"]) for u in users] == [
        (USER_UUID, "Priscilla de Vries-Çelik", "1001", 1)]
    devices = list(box.catalog.db.query("SELECT * FROM axis_devices WHERE account = ?", [account]))
    assert [(d["serial"], d["name"], d["model"], d["active"]) for d in devices] == [(SERIAL, "Cam 1", "W101", 1)]

    # A new nice name comes as a POST of the object's metadata (Swift: 202).
    assert status(conn.post_object, "Users", USER_UUID, headers={
        "X-Object-Meta-Name": pct("P. de Vries"), "X-Object-Meta-Userid": "1001",
        "X-Object-Meta-Active": "False"}) == 202
    user = list(box.catalog.db.query("SELECT * FROM axis_users WHERE account = ?", [account]))[0]
    assert (user["name"], user["active"]) == ("P. de Vries", 0)


# --- a whole recording ----------------------------------------------------------------------------------------
def test_a_recording_is_catalogued_when_complete(box, axis_data, start_axis_server, password_file,
                                                 privacy_officer, kluis, tmp_path):
    configure(axis_data, {"retention.categories": {"incident": 90}})
    srv = start_axis_server()
    doc = json.loads(kluis("axis", "connection-file", "--data", axis_data, "--site", "W800 Noord",
                           "--url", srv.url, "--password-file", password_file).stdout)
    assert doc["ConnectionFileVersion"] == "1.0" and doc["SiteName"] == "W800 Noord"
    assert doc["AuthenticationTokenURI"] == [srv.url] and doc["WantEncryption"] is False
    assert "PublicKey" not in doc
    pem = (axis_data / "tls" / "cert.pem").read_bytes()
    assert base64.b64decode(doc["HTTPSCertificate"][0]) == x509.load_pem_x509_certificate(pem).public_bytes(
        serialization.Encoding.DER)

    conn = swift_connection(doc, tmp_path)
    w800 = W800(conn)
    w800.register(name="P. de Vries", user_id="1001")

    assert status(conn.put_container, CONTAINER) == 201
    assert status(conn.put_container, CONTAINER) == 202
    assert status(conn.post_container, CONTAINER, container_meta()) == 204

    markers = [new_marker(), new_marker()]
    first, second = clip_bytes(300_000, markers[0]), clip_bytes(200_001, markers[1])
    assert w800.clip(CONTAINER, CLIP_1, first, T0 - 30, T0 + 10) == md5(first)
    assert w800.clip(CONTAINER, CLIP_1, first, T0 - 30, T0 + 10) == md5(first)  # a retry: the same answer
    assert w800.clip(CONTAINER, CLIP_2, second, T0 + 10, T0 + 50) == md5(second)
    assert status(conn.put_object, CONTAINER, BOOKMARK, "Man schreeuwt".encode(), headers={
        "X-Object-Meta-Categoryname": "incident", "X-Object-Meta-Categoryid": "incident",
        "X-Object-Meta-Starttime": pct("2026-12-07T10:00:05Z"), "X-Object-Meta-Tags": pct("TriggerOn:Button")}) == 201
    track = json.dumps(TRACK).encode()
    assert conn.put_object(CONTAINER, GNSS, track, headers={"X-Object-Meta-Filetype": "json"}) == md5(track)

    # Nothing is in the catalog while the W800 is still transferring.
    assert conn.head_container(CONTAINER)["x-container-meta-status"] == "Transferring"
    assert recordings_of(box, CONTAINER) == []
    assert box.catalog.list_recordings() == []

    assert status(conn.post_container, CONTAINER, {"X-Container-Meta-Status": "Complete"}) == 204
    assert conn.head_container(CONTAINER)["x-container-meta-status"] == "Complete"

    recs = sorted(recordings_of(box, CONTAINER), key=lambda r: r["start_time"])
    assert len(recs) == 2
    for rec, clip, name in zip(recs, (first, second), (CLIP_1, CLIP_2)):
        assert rec["camera_serial"] == SERIAL
        assert rec["officer"] == "P. de Vries (1001)"
        assert rec["source"] == "axis" and rec["source_ref"] == f"{CONTAINER}/{name}"
        assert rec["size"] == len(clip)
        assert box.catalog.get_recording(rec["id"])["category"] == "incident"
    assert (recs[0]["start_time"], recs[0]["end_time"]) == ("2026-12-07T09:59:30.000Z", "2026-12-07T10:00:10.000Z")
    assert (recs[1]["start_time"], recs[1]["end_time"]) == ("2026-12-07T10:00:10.000Z", "2026-12-07T10:00:50.000Z")
    assert recs[0]["pre_record_s"] == 30
    ingests = audit.entries(box.catalog, action="ingest")
    assert sorted(e["recording_id"] for e in ingests) == sorted(r["id"] for r in recs)

    # The GNSS track is kept as its points.
    gnss = list(box.catalog.db.query("SELECT * FROM axis_objects WHERE container = ? AND kind = 'gnss'",
                                     [CONTAINER]))
    points = json.loads(gnss[0]["body"])
    assert [(p["lat"], p["lon"]) for p in points] == [(52.0907, 5.1214), (52.0911, 5.122)]
    # ... and, with the trigger location, as each recording's places (an access request's search by place)
    for rec in recs:
        assert [(p["source"], p["lat"], p["lon"]) for p in recording_places.of(box.catalog.db, rec["id"])] == [
            ("trigger_on", 52.0907, 5.1214), ("track", 52.0907, 5.1214), ("track", 52.0911, 5.122)]

    # A repeated Complete and a repeated clip (the W800 retries what it did not hear) change nothing.
    assert status(conn.post_container, CONTAINER, {"X-Container-Meta-Status": "Complete"}) == 204
    assert w800.clip(CONTAINER, CLIP_1, first, T0 - 30, T0 + 10) == md5(first)
    assert sorted(r["id"] for r in recordings_of(box, CONTAINER)) == sorted(r["id"] for r in recs)
    assert len(audit.entries(box.catalog, action="ingest")) == 2
    assert unnamed_blobs(box) == []

    result = kluis("verify", "--data", axis_data)
    assert b"ok: 2 recording(s)" in result.stdout
    assert cat(kluis, axis_data, recs[0]["id"], privacy_officer) == first
    assert cat(kluis, axis_data, recs[1]["id"], privacy_officer) == second
    views = audit.entries(box.catalog, action="view")
    assert {(v["actor"], v["purpose"], v["case_ref"]) for v in views} == {("fg", "complaint", "K-12")}

    # No plaintext of the footage anywhere in the data directory.
    for marker in markers:
        assert files_containing(axis_data, marker) == []


def test_an_unknown_bookmark_category_leaves_the_recording_uncategorised(box, start_axis_server, tmp_path):
    srv = start_axis_server()  # no [retention.categories]: "incident" is unknown here
    w800 = W800(swift_connection(connection_document(box, srv), tmp_path))
    w800.register()
    w800.open()
    w800.clip(CONTAINER, CLIP_1, clip_bytes(10_000, new_marker()), T0 - 30, T0 + 10)
    w800.conn.put_object(CONTAINER, BOOKMARK, b"", headers={"X-Object-Meta-Categoryname": "incident"})
    w800.complete()
    [rec] = recordings_of(box, CONTAINER)
    assert box.catalog.get_recording(rec["id"])["category"] is None
    assert retention.categories_of(box.catalog, rec["id"]) == []


def test_every_known_bookmark_category_is_set_and_the_longest_term_counts(box, start_axis_server, tmp_path):
    """Two category bookmarks the box knows and one it does not: the recording is in both known categories
    (source 'axis', audited as one change), its term the longer one's."""
    srv = start_axis_server({"retention.categories": {"incident": 90, "aanhouding": 180}})
    w800 = W800(swift_connection(connection_document(box, srv), tmp_path))
    w800.register()
    w800.open()
    w800.clip(CONTAINER, CLIP_1, clip_bytes(10_000, new_marker()), T0 - 30, T0 + 10)
    for number, name in enumerate(("incident", "onbekend", "aanhouding")):
        w800.conn.put_object(CONTAINER, f"{BOOKMARK}{number}", b"",
                             headers={"X-Object-Meta-Categoryname": name})
    w800.complete()
    [rec] = recordings_of(box, CONTAINER)
    rows = retention.categories_of(box.catalog, rec["id"])
    assert [(r["category"], r["source"], r["set_by"]) for r in rows] == [("aanhouding", "axis", "system"),
                                                                       ("incident", "axis", "system")]
    end = from_iso(box.catalog.get_recording(rec["id"])["end_time"])
    assert retention.delete_after(box, rec["id"]) == end + timedelta(days=180)
    [change] = audit.entries(box.catalog, action="category_change", recording_id=rec["id"])
    assert change["details"]["added"] == ["aanhouding", "incident"] and change["details"]["source"] == "axis"


def test_what_an_axis_recording_brought_goes_with_it(box, start_axis_server, tmp_path):
    """Trigger locations, the GNSS track and a bookmark's text are personal data of the recording: when
    its last clip's recording is deleted, the container's rows go too (before: they stayed for ever)."""
    srv = start_axis_server()
    w800 = W800(swift_connection(connection_document(box, srv), tmp_path))
    w800.register()
    w800.open()
    w800.clip(CONTAINER, CLIP_1, clip_bytes(10_000, new_marker()), T0 - 30, T0 + 10)
    w800.clip(CONTAINER, CLIP_2, clip_bytes(10_000, new_marker()), T0 + 10, T0 + 50)
    w800.conn.put_object(CONTAINER, BOOKMARK, "Man schreeuwt".encode(), headers={"X-Object-Meta-Categoryname": "x"})
    w800.conn.put_object(CONTAINER, GNSS, json.dumps(TRACK).encode(), headers={"X-Object-Meta-Filetype": "json"})
    w800.complete()
    first, second = sorted(recordings_of(box, CONTAINER), key=lambda r: r["start_time"])
    db = box.catalog.db

    def rows(table: str) -> int:
        return db.execute(f"SELECT count(*) FROM {table} WHERE container = ?", [CONTAINER]).fetchone()[0]

    assert (rows("axis_objects"), rows("axis_recordings")) == (4, 1)
    sweep.delete_early(box, first["id"], actor="fg", reason="objection upheld", decision_ref="B-1")
    assert recording_places.of(db, first["id"]) == [] and recording_places.of(db, second["id"]) != []
    assert (rows("axis_objects"), rows("axis_recordings")) == (3, 1)  # the other clip still needs its container
    sweep.delete_early(box, second["id"], actor="fg", reason="objection upheld", decision_ref="B-1")
    assert (rows("axis_objects"), rows("axis_recordings")) == (0, 0)
    assert db.execute("SELECT count(*) FROM recording_places").fetchone()[0] == 0


# --- end-to-end encryption (WantEncryption) -------------------------------------------------------------------
@pytest.mark.parametrize("order", ["key_first", "clip_first"])
def test_an_encrypted_clip_is_decrypted_into_the_vault(order, box, axis_data, start_axis_server, privacy_officer,
                                                      kluis, tmp_path):
    srv = start_axis_server()
    doc = connection_document(box, srv, encrypt=True)
    assert doc["WantEncryption"] is True and doc["PublicKeyId"]
    public = serialization.load_pem_public_key(base64.b64decode(doc["PublicKey"]))
    assert isinstance(public, rsa.RSAPublicKey) and public.key_size >= 2048

    conn = swift_connection(doc, tmp_path)
    w800 = W800(conn)
    w800.register()
    w800.open()
    marker = new_marker()
    plain = clip_bytes(250_003, marker)  # not a whole number of AES blocks: the padding matters
    sealed = encrypt_for(doc, plain)
    key_name = CLIP_1.rsplit(".", 1)[0] + ".key"
    key_headers = {"X-Object-Meta-Starttime": str(T0 - 30), "X-Object-Meta-Filetype": "key"}
    account = doc["BlobAPIUserName"]

    def clip_row() -> dict:
        return list(box.catalog.db.query("SELECT * FROM axis_objects WHERE account = ? AND container = ? AND "
                                         "name = ?", [account, CONTAINER, CLIP_1]))[0]

    if order == "key_first":
        assert status(conn.put_object, CONTAINER, key_name, sealed.key_object, headers=key_headers) == 201
        assert w800.clip(CONTAINER, CLIP_1, sealed.ciphertext, T0 - 30, T0 + 10) == md5(sealed.ciphertext)
        assert clip_row()["stored_sha256"] is not None
    else:
        # The clip comes first: its ciphertext is staged as it came, and sealed when the key object comes.
        assert w800.clip(CONTAINER, CLIP_1, sealed.ciphertext, T0 - 30, T0 + 10) == md5(sealed.ciphertext)
        staged = clip_row()
        assert staged["stored_sha256"] is None
        staged_file = axis_data / staged["stored_path"]
        assert staged_file.read_bytes() == sealed.ciphertext
        assert status(conn.put_object, CONTAINER, key_name, sealed.key_object, headers=key_headers) == 201
        assert clip_row()["stored_sha256"] is not None
        assert not staged_file.exists()
    assert files_containing(axis_data, marker) == []

    w800.complete()
    [rec] = recordings_of(box, CONTAINER)
    assert rec["size"] == len(plain) and rec["source"] == "axis"
    assert cat(kluis, axis_data, rec["id"], privacy_officer) == plain

    # Once sealed, neither the plaintext nor the W800's ciphertext nor its key object is left on the disk.
    assert files_containing(axis_data, marker) == []
    assert list((axis_data / "tmp").rglob("*.cbc")) == []
    keys = list(box.catalog.db.query("SELECT body FROM axis_objects WHERE account = ? AND kind = 'key'", [account]))
    assert [k["body"] for k in keys] == [None]
    assert unnamed_blobs(box) == []
    result = kluis("verify", "--data", axis_data)
    assert b"ok: 1 recording(s)" in result.stdout


def test_the_cli_makes_an_encrypting_connection_file_that_stays_encrypting(axis_data, start_axis_server,
                                                                           password_file, kluis):
    srv = start_axis_server()
    args = ["axis", "connection-file", "--data", axis_data, "--site", "W800 Zuid", "--url", srv.url,
            "--password-file", password_file]
    doc = json.loads(kluis(*args, "--encrypt").stdout)
    assert doc["WantEncryption"] is True
    pem = base64.b64decode(doc["PublicKey"])
    assert pem.startswith(b"-----BEGIN PUBLIC KEY-----")
    assert doc["PublicKeyId"] == transport.key_id(transport.transport_key(axis_data))
    # The spec: once a system encrypts, a connection file may not turn it off.
    refused = kluis(*args, check=False)
    assert refused.returncode != 0
    assert json.loads(kluis(*args, "--encrypt").stdout)["PublicKeyId"] == doc["PublicKeyId"]
