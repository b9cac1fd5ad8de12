"""Fixtures of the Axis content destination tests: the real server (appliance.axis.server.start_axis, HTTPS
with the box's own certificate) on 127.0.0.1 in a thread of its own, a real W800-side Swift client
(python-swiftclient, as a Swift-speaking system controller would use it), and a raw TLS client for the
requests no well-behaved client sends (odd paths, cut bodies, endless chunked bodies).

Nothing of Kluis is mocked: the server runs its own event loop on a real socket over the real catalog;
the test thread looks at the box through a Box of its own (its own SQLite connection).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import http.client
import json
import logging
import os
import select
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import tomlkit
from cryptography import x509
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric.padding import MGF1, OAEP
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from swiftclient import client as swift

from appliance.axis import accounts, server
from appliance.box import Box
from appliance.clock import system_clock
from tests.processes import stopped_at_end

T0 = 1796637600  # 2026-12-07T10:00:00Z: when the trigger was pressed in the recordings of these tests
SYSTEM_ID = "f81d4fae-7dec-11d0-a765-00a0c91e6bf6"
USER_UUID = "u-1234"
SERIAL = "B8A44F000001"
CONTAINER = f"{USER_UUID}_{SERIAL}_20261207T100000Z"


def configure(data: Path, settings: dict) -> None:
    """Set values in kluis.toml, e.g. {"axis": {"max_clip_mb": 1}}, keeping the commented template."""
    path = data / "kluis.toml"
    doc = tomlkit.parse(path.read_text())
    for section, values in settings.items():
        table = doc
        for part in section.split("."):
            if part not in table:
                table[part] = tomlkit.table()
            table = table[part]
        for key, value in values.items():
            table[key] = value
    path.write_text(tomlkit.dumps(doc))


class AxisServer:
    """The content destination, in-process: its own Box and event loop in a thread, on a free port."""

    def __init__(self, data: Path, clock=system_clock):
        self.data = data
        self.box = Box(data, clock=clock)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="axis-server", daemon=True)
        self.thread.start()
        self.runner = self._call(server.start_axis(self.box, "127.0.0.1", 0))
        self.port = self.runner.addresses[0][1]
        self.url = f"https://127.0.0.1:{self.port}/auth/v1.0"

    def _call(self, coro, timeout: float = 20):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    @property
    def destination(self):
        return self.runner.app[server.DESTINATION]

    def wait_uploads(self, count: int, timeout: float = 10) -> None:
        """Until `count` clip uploads are in flight in the server (read across threads: one int)."""
        deadline = time.monotonic() + timeout
        while self.destination.uploads != count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.destination.uploads} uploads in flight, waited for {count}")
            time.sleep(0.01)

    def close(self) -> None:
        if self.loop.is_closed():
            return
        try:
            self._call(self.runner.cleanup())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()
            self.box.close()


@pytest.fixture
def axis_data(box_dir) -> Path:
    return box_dir[0]


@pytest.fixture
def start_axis_server(axis_data):
    """start_axis_server(settings=None, clock=system_clock): set kluis.toml values, then serve the destination."""
    def start(settings: dict | None = None, clock=system_clock) -> AxisServer:
        if settings:
            configure(axis_data, settings)
        return AxisServer(axis_data, clock)

    yield from stopped_at_end(start, stop=AxisServer.close)


@pytest.fixture
def axis_log(caplog):
    """caplog, recording the destination's INFO lines too."""
    caplog.set_level(logging.INFO, logger="kluis.axis")
    return caplog


def connection_document(box: Box, srv: AxisServer, site: str = "W800 Noord", encrypt: bool = False) -> dict:
    """The connection file a keeper hands to the Body Worn Manager (what `kluis axis connection-file` prints)."""
    return accounts.connection_file(box, site, [srv.url], encrypt=encrypt, actor="admin").document


def cacert_from(document: dict, directory: Path) -> Path:
    """The certificate of the connection file (base64 DER) as the PEM file a Swift client trusts."""
    der = base64.b64decode(document["HTTPSCertificate"][0])
    pem = x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)
    path = directory / f"ca-{hashlib.sha256(der).hexdigest()[:8]}.pem"
    path.write_bytes(pem)
    return path


def swift_connection(document: dict, directory: Path, key: str | None = None) -> swift.Connection:
    return swift.Connection(authurl=document["AuthenticationTokenURI"][0], user=document["BlobAPIUserName"],
                            key=document["BlobAPIKey"] if key is None else key,
                            cacert=str(cacert_from(document, directory)), auth_version="1", retries=0,
                            timeout=30)


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def pct(text: str) -> str:
    """A metadata value as the W800 sends it: URL-encoded UTF-8."""
    from urllib.parse import quote

    return quote(text, safe="")


def clip_bytes(size: int, marker: bytes) -> bytes:
    """Random bytes with a marker inside (to look for in the data directory afterwards)."""
    body = bytearray(os.urandom(size))
    body[size // 3:size // 3 + len(marker)] = marker
    return bytes(body)


def new_marker() -> bytes:
    return b"KLUIS-PLAINTEXT-MARKER-" + os.urandom(12).hex().encode()


def clip_headers(start: int, stop: int) -> dict:
    return {"X-Object-Meta-Starttime": str(start), "X-Object-Meta-Stoptime": str(stop),
            "X-Object-Meta-Containertype": "mp4"}


def container_meta(t0: int = T0, status: str = "Transferring") -> dict:
    return {"X-Container-Meta-Triggerontime": str(t0), "X-Container-Meta-Triggerofftime": str(t0 + 20),
            "X-Container-Meta-Starttime": str(t0 - 30), "X-Container-Meta-Stoptime": str(t0 + 50),
            "X-Container-Meta-Triggeron": "Button", "X-Container-Meta-Status": status,
            "X-Container-Meta-Bwcserialnumber": SERIAL, "X-Container-Meta-Userid": USER_UUID,
            "X-Container-Meta-Timezone": pct("Europe/Amsterdam"),
            "X-Container-Meta-Triggeronlocation": pct("+52.0907+005.1214+10/1796637600")}


class W800:
    """What an Axis W800 system controller does over the Swift API, with python-swiftclient."""

    def __init__(self, conn: swift.Connection):
        self.conn = conn

    def register(self, system_id: str = SYSTEM_ID, user: str = USER_UUID, serial: str = SERIAL,
                 name: str = "P. de Vries", user_id: str = "1001") -> None:
        self.conn.put_object("System", system_id, b"", headers={
            "X-Object-Meta-Systemname": pct("W800 Noord"), "X-Object-Meta-Connectionid": "c1"})
        self.add_user(user, name, user_id)
        self.add_device(serial)

    def add_user(self, user: str, name: str = "P. de Vries", user_id: str = "1001") -> None:
        self.conn.put_object("Users", user, b"", headers={
            "X-Object-Meta-Name": pct(name), "X-Object-Meta-Userid": pct(user_id), "X-Object-Meta-Active": "True"})

    def add_device(self, serial: str) -> None:
        self.conn.put_object("Devices", serial, b"", headers={
            "X-Object-Meta-Name": pct("Cam 1"), "X-Object-Meta-Model": "W101", "X-Object-Meta-Active": "True"})

    def open(self, container: str = CONTAINER, t0: int = T0) -> None:
        self.conn.put_container(container)
        self.conn.post_container(container, container_meta(t0))

    def clip(self, container: str, name: str, body: bytes, start: int, stop: int, **kw) -> str:
        return self.conn.put_object(container, name, body, headers=clip_headers(start, stop), **kw)

    def complete(self, container: str = CONTAINER) -> None:
        self.conn.post_container(container, {"X-Container-Meta-Status": "Complete"})


def recordings_of(box: Box, container: str) -> list[dict]:
    return [r for r in box.catalog.list_recordings() if (r.get("source_ref") or "").startswith(container + "/")]


def files_containing(directory: Path, needle: bytes) -> list[Path]:
    """Every file under `directory` whose bytes contain `needle`."""
    found = []
    for path in directory.rglob("*"):
        if path.is_file() and needle in path.read_bytes():
            found.append(path)
    return found


def unnamed_blobs(box: Box) -> list[str]:
    """Files in DATA/blobs that no catalog row (recording or Axis clip still arriving) names."""
    named = box.catalog.stored_paths()
    return sorted(str(p.relative_to(box.data_dir)) for p in (box.data_dir / "blobs").glob("*/*")
                  if str(p.relative_to(box.data_dir)) not in named)


# --- the W800's end-to-end encryption (what the Axis Body Worn system does with WantEncryption) -------------
@dataclass
class Sealed:
    ciphertext: bytes
    key_object: bytes


def encrypt_for(document: dict, plaintext: bytes) -> Sealed:
    """AES-256-CBC with PKCS#7 under a fresh key, the key wrapped with RSA-OAEP (SHA-1) to the
    connection file's PublicKey: the clip and its key object `{EncryptedKey, ContentEncryptionIV, PublicKeyId}`."""
    public = serialization.load_pem_public_key(base64.b64decode(document["PublicKey"]))
    key, iv = os.urandom(32), os.urandom(16)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plaintext) + padder.finalize()
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    ciphertext = enc.update(padded) + enc.finalize()
    wrapped = public.encrypt(key, OAEP(mgf=MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(), label=None))
    key_object = json.dumps({"EncryptedKey": base64.b64encode(wrapped).decode(),
                             "ContentEncryptionIV": base64.b64encode(iv).decode(),
                             "PublicKeyId": document["PublicKeyId"]}).encode()
    return Sealed(ciphertext, key_object)


# --- a raw HTTPS client: exact paths and headers, bodies cut or never ending --------------------------------
class RawClient:
    def __init__(self, port: int, timeout: float = 20, source: str | None = None):
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        # TLS 1.2: nothing arrives after the handshake (no 1.3 session tickets), so a readable socket
        # means the server answered, even while the client is still sending.
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        plain = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                         source_address=(source, 0) if source else None)
        self.sock = context.wrap_socket(plain, server_hostname="127.0.0.1")
        self.port = port

    def head(self, method: str, path: str, headers: dict) -> None:
        lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{self.port}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def readable(self, wait: float = 0) -> bool:
        if self.sock.pending():
            return True
        return bool(select.select([self.sock], [], [], wait)[0])

    def response(self, method: str = "PUT") -> http.client.HTTPResponse:
        resp = http.client.HTTPResponse(self.sock, method=method)  # a HEAD's answer has no body
        resp.begin()
        resp.body = resp.read() if resp.length is not None else b""
        return resp

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def request(port: int, method: str, path: str, headers: dict | None = None, body: bytes = b"",
            source: str | None = None) -> tuple[int, bytes]:
    """One request with an exact path (nothing normalised on the way), on its own connection."""
    client = RawClient(port, source=source)
    try:
        client.head(method, path, {"Content-Length": str(len(body)), "Connection": "close", **(headers or {})})
        if body:
            client.send(body)
        resp = client.response(method)
        return resp.status, resp.body
    finally:
        client.close()
