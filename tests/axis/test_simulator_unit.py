"""The W800 simulator's pure parts, no server: content encryption (decrypted here as a content destination
would, with the cryptography library), metadata headers, object and container names, the connection file."""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import ssl
import struct
from urllib.parse import unquote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives import padding as sym_padding
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.x509.oid import NameOID

from simulators.axis import clips
from simulators.axis import protocol as sim
from appliance.errors import KluisError

TRIGGER = dt.datetime(2026, 12, 1, 10, 0, 0, tzinfo=dt.timezone.utc)


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def connection(**changes) -> dict:
    base = {"ConnectionFileVersion": "1.0", "SiteName": "Utrecht", "ApplicationName": "Kluis",
            "ApplicationVersion": "0.1.0", "ContentDestinationAsNTPServer": False,
            "AuthenticationTokenURI": ["http://127.0.0.1:8444/auth/v1.0"], "HTTPSCertificate": [],
            "BlobAPIKey": "key", "BlobAPIUserName": "w800", "ContainerType": "mp4",
            "FullStoreAndReadSupport": False, "WantEncryption": False, "PublicKey": "", "PublicKeyId": ""}
    return {**base, **changes}


def decrypt(key_object: bytes, body: bytes, private_key: rsa.RSAPrivateKey) -> bytes:
    """What a content destination does with a key object and its encrypted object (the spec's openssl recipe)."""
    doc = json.loads(key_object)
    aes_key = private_key.decrypt(base64.b64decode(doc["EncryptedKey"]),
                                  padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None))
    decryptor = Cipher(algorithms.AES(aes_key), modes.CBC(base64.b64decode(doc["ContentEncryptionIV"]))).decryptor()
    unpadder = sym_padding.PKCS7(128).unpadder()
    return unpadder.update(decryptor.update(body) + decryptor.finalize()) + unpadder.finalize()


# --- encryption ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sizes", [[0], [15], [16], [1, 2, 3], [1000, 16, 7, 4096], [sim.CHUNK + 5, 11]])
def test_streamed_encryption_round_trips_through_the_key_object(rsa_key, sizes):
    plain = [bytes([n % 251]) * size for n, size in enumerate(sizes)]
    content_key = clips.ContentKey.new()
    encrypted = b"".join(content_key.encrypt(iter(plain)))
    assert len(encrypted) == clips.encrypted_size(sum(sizes))
    key_object = content_key.key_object(rsa_key.public_key(), "contentkey")
    assert json.loads(key_object)["PublicKeyId"] == "contentkey"
    assert decrypt(key_object, encrypted, rsa_key) == b"".join(plain)


def test_every_object_gets_its_own_key_and_iv():
    a, b = clips.ContentKey.new(), clips.ContentKey.new()
    assert len(a.key) == 32 and len(a.iv) == 16
    assert a.key != b.key and a.iv != b.iv


def test_the_public_key_is_base64_pem_either_spki_or_pkcs1(rsa_key):
    for fmt in (serialization.PublicFormat.SubjectPublicKeyInfo, serialization.PublicFormat.PKCS1):
        pem = rsa_key.public_key().public_bytes(serialization.Encoding.PEM, fmt)
        assert sim.load_public_key(base64.b64encode(pem).decode()).public_numbers() == \
            rsa_key.public_key().public_numbers()
    with pytest.raises(KluisError):
        sim.load_public_key("bm90IGEga2V5")  # "not a key"


# --- metadata headers -------------------------------------------------------------------------------------


def test_metadata_header_names_have_swift_capitalisation():
    assert sim.meta_header("Container", "BWCSerialNumber") == "X-Container-Meta-Bwcserialnumber"
    assert sim.meta_header("Object", "StartTimeISO") == "X-Object-Meta-Starttimeiso"
    assert sim.meta_header("Object", "FileType") == "X-Object-Meta-Filetype"


def test_metadata_values_are_percent_encoded_utf8_except_raw_ones():
    headers = sim.encode_metadata("Object", {"Name": "J. Jänsen / ☃ 100% ok;a=b", "Active": "True",
                                             "Bad": sim.Raw("%zz")})
    assert headers["X-Object-Meta-Name"] == "J.%20J%C3%A4nsen%20%2F%20%E2%98%83%20100%25%20ok%3Ba%3Db"
    assert unquote(headers["X-Object-Meta-Name"], errors="strict") == "J. Jänsen / ☃ 100% ok;a=b"
    assert headers["X-Object-Meta-Active"] == "True"
    assert headers["X-Object-Meta-Bad"] == "%zz"
    assert all(value.isascii() and value.isprintable() for value in headers.values())


# --- names and times ----------------------------------------------------------------------------------------


def test_names_follow_the_spec():
    assert sim.container_name("u-1", "B8A44F000001", TRIGGER) == "u-1_B8A44F000001_20261201T100000Z"
    clip = sim.clip_name(TRIGGER, "ab12", "mkv")
    assert clip == "20261201_100000_ab12.mkv"
    assert sim.clip_key_name(clip) == "20261201_100000_ab12.key"
    track = sim.gnss_name(TRIGGER, "ab12", "B8A44F000001")
    assert track == "20261201_100000_ab12_B8A44F000001_gpstrail.json"
    assert sim.gnss_key_name(track) == track + ".key"
    assert sim.bookmark_name(TRIGGER, "1") == "bookmark_2026-12-01T10:00:00Z_1"


def test_times_are_utc_whole_seconds_and_naive_means_utc():
    amsterdam = dt.timezone(dt.timedelta(hours=1))
    local = dt.datetime(2026, 12, 1, 11, 0, 0, 700_000, tzinfo=amsterdam)
    assert sim.iso(local) == "2026-12-01T10:00:00Z"
    assert sim.epoch(local) == str(int(TRIGGER.timestamp()))
    assert sim.container_name("u", "S", dt.datetime(2026, 12, 1, 10, 0, 0)) == "u_S_20261201T100000Z"


def test_locations_and_the_gnss_track():
    assert sim.location(52.0907, 5.1214, 10, TRIGGER) == f"+52.0907+005.1214+10/{int(TRIGGER.timestamp())}"
    track = sim.gnss_track(TRIGGER, TRIGGER + dt.timedelta(seconds=60))
    entries = track["CoordinateEntries"]
    assert entries[0] == {"LocationWKT": "POINT(5.121400 52.090700)", "SecondsFromStart": 0.0,
                          "Timestamp": "2026-12-01T10:00:00Z"}
    assert entries[-1]["SecondsFromStart"] == 60.0 and entries[-1]["Timestamp"] == "2026-12-01T10:01:00Z"


# --- clips ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("container_type", ["mp4", "mkv"])
def test_padded_clips_are_streamed_to_their_stated_size(container_type):
    head = b"\x00\x00\x00\x18ftypisom" + bytes(12)
    clip = clips.padded_clip(head, sim.CHUNK * 2 + 3, container_type)
    chunks = list(clip.open())
    assert max(len(c) for c in chunks) <= sim.CHUNK
    data = b"".join(chunks)
    assert len(data) == clip.size == len(head) + sim.CHUNK * 2 + 3
    assert b"".join(clip.open()) == data  # read again from the start: a retry sends the same bytes
    if container_type == "mp4":
        assert struct.unpack(">I4s", data[len(head) : len(head) + 8]) == (sim.CHUNK * 2 + 3, b"free")
    else:  # an EBML Void element, its size in 8 bytes
        assert data[len(head)] == 0xEC and int.from_bytes(data[len(head) + 2 : len(head) + 9], "big") == \
            sim.CHUNK * 2 + 3 - 9


# --- the connection file ------------------------------------------------------------------------------------


def test_connection_file_defaults_and_refusals(rsa_key):
    checked = sim.check_connection(connection(ContainerType=None))
    assert checked["ContainerType"] == "mkv" and checked["WantEncryption"] is False
    with pytest.raises(KluisError, match="ConnectionFileVersion"):
        sim.check_connection(connection(ConnectionFileVersion="2.0"))
    with pytest.raises(KluisError, match="HTTPSCertificate"):
        sim.check_connection(connection(AuthenticationTokenURI=["https://127.0.0.1:8444/auth/v1.0"]))
    with pytest.raises(KluisError, match="PublicKey"):
        sim.check_connection(connection(WantEncryption=True))
    pem = rsa_key.public_key().public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    assert sim.check_connection(connection(WantEncryption=True, PublicKey=base64.b64encode(pem).decode(),
                                           PublicKeyId="k1"))["WantEncryption"] is True


def test_tls_trusts_exactly_the_pinned_certificate_not_its_host_name():
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(TRIGGER).not_valid_after(TRIGGER + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    der = cert.public_bytes(serialization.Encoding.DER)
    context = sim.ssl_context([base64.b64encode(der).decode()])
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname is False
    assert context.cert_store_stats()["x509"] == 1  # that certificate (a leaf, not a CA), no system CAs
    assert sim.ssl_context([]) is None
    with pytest.raises(KluisError):
        sim.ssl_context(["not base64!"])
