"""What the archive refuses, with a clear status, storing nothing: an unenrolled box, a replayed request,
a tampered part, a wrong hash, an oversized body, a stale or forged signature, a container it cannot open."""

from __future__ import annotations

import hashlib
import os
from datetime import timedelta

import aiohttp
import pytest
from nacl.signing import SigningKey

from appliance.container import Encryptor
from sync import client, link
from sync.archive import server
from sync.archive.store import Archive
from sync.protocol import API, MAX_CHUNK, box_id_of, sha256_hex, sign_request
from appliance.canonical import canonical


class Live:
    """An archive served in-process on a real socket, the `box` fixture enrolled at it, and requests to it
    signed with the box's key."""

    def __init__(self, archive: Archive, box, url: str, session: aiohttp.ClientSession):
        self.archive, self.box, self.url, self.session = archive, box, url, session
        self.key = box.signing_key()

    async def send(self, method: str, path: str, body: bytes = b"", *, key: SigningKey | None = None, **kw):
        """(status, answer, signed headers) of a request signed as the box (or with key); see send()."""
        return await send(self.session, self.url, key or self.key, method, path, body, **kw)

    async def start(self, blob: bytes, size: int | None = None) -> str:
        """Open an upload of blob (declared as size bytes: its own length unless given); its sha256."""
        status, answer, _ = await self.send("POST", f"{API}/uploads", _start_body(blob, size))
        assert status == 200, answer
        return hashlib.sha256(blob).hexdigest()

    async def put(self, sha: str, offset: int, part: bytes, **kw):
        return await self.send("PUT", f"{API}/uploads/{sha}?offset={offset}", part, **kw)

    async def complete(self, sha: str):
        return await self.send("POST", f"{API}/uploads/{sha}/complete", b"{}")


@pytest.fixture
async def live(archive_dir, box) -> Live:
    archive = Archive(archive_dir)
    runner, port = await server.start(archive, "127.0.0.1", 0)
    url = f"https://127.0.0.1:{port}"
    await client.enroll(box, url, archive.new_token())
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(
        ssl=aiohttp.Fingerprint(bytes.fromhex(archive.cert_fingerprint))))
    yield Live(archive, box, url, session)
    await session.close()
    await runner.cleanup()
    archive.close()


async def send(session, url, key: SigningKey, method: str, path: str, body: bytes = b"", *, box_id=None,
               headers=None, now=None, wire_body: bytes | None = None):
    """A request signed like the box's client does; `wire_body` sends other bytes than were signed."""
    box_id = box_id or box_id_of(bytes(key.verify_key))
    from appliance.clock import system_clock
    signed = headers or sign_request(key, box_id, method, path, sha256_hex(body), now or system_clock())
    async with session.request(method, url + path, data=body if wire_body is None else wire_body,
                               headers=signed) as resp:
        return resp.status, await resp.json(), signed


def _container(recipients, size=300_000) -> bytes:
    import io
    enc = Encryptor(recipients, chunk_size=65536)
    return b"".join(bytes(c) for c in enc.stream(io.BytesIO(os.urandom(size))))


def _stored(archive: Archive) -> tuple[int, list, list]:
    rows = archive.db.execute("SELECT COUNT(*) FROM recordings").fetchone()[0]
    return rows, list((archive.data_dir / "blobs").glob("*/*")), list((archive.data_dir / "tmp").glob("*.part"))


def _start_body(blob: bytes, size: int | None = None) -> bytes:
    return canonical({"recording_id": "r1", "sha256": hashlib.sha256(blob).hexdigest(),
                      "size": len(blob) if size is None else size, "metadata": {"camera_serial": "CAM1"}})


async def test_unenrolled_box_is_refused(live):
    stranger = SigningKey.generate()
    status, answer, _ = await live.send("POST", f"{API}/uploads", _start_body(b"x" * 100), key=stranger)
    assert status == 403 and "not enrolled" in answer["error"]
    async with live.session.post(live.url + f"{API}/uploads", data=b"{}") as resp:  # not signed at all
        assert resp.status == 401 and "unsigned" in (await resp.json())["error"]
    assert _stored(live.archive) == (0, [], [])


async def test_replayed_request_is_refused(live):
    blob = _container(live.box.recipients())
    status, answer, headers = await live.send("POST", f"{API}/uploads", _start_body(blob))
    assert status == 200 and answer["offset"] == 0
    sha = hashlib.sha256(blob).hexdigest()
    status, answer, part_headers = await live.put(sha, 0, blob[:100_000])
    assert status == 200 and answer["offset"] == 100_000
    # The same signed part again, byte for byte: refused, and nothing appended twice.
    status, answer, _ = await live.put(sha, 0, blob[:100_000], headers=part_headers)
    assert status == 409 and "replayed" in answer["error"]
    status, answer, _ = await live.send("POST", f"{API}/uploads", _start_body(blob), headers=headers)
    assert status == 409 and "replayed" in answer["error"]
    assert (live.archive.data_dir / "tmp").glob("*.part").__next__().stat().st_size == 100_000


async def test_stale_or_forged_signature_is_refused(live):
    body = _start_body(_container(live.box.recipients()))
    from appliance.clock import system_clock
    status, answer, _ = await live.send("POST", f"{API}/uploads", body, now=system_clock() - timedelta(minutes=20))
    assert status == 401 and "too far" in answer["error"]
    impostor = SigningKey.generate()  # claims to be the enrolled box
    status, answer, _ = await live.send("POST", f"{API}/uploads", body, key=impostor,
                                        box_id=box_id_of(bytes(live.key.verify_key)))
    assert status == 401 and "signature" in answer["error"]
    assert _stored(live.archive) == (0, [], [])


async def test_tampered_part_is_refused(live):
    blob = _container(live.box.recipients())
    sha = await live.start(blob)
    tampered = bytearray(blob[:200_000])
    tampered[150_000] ^= 1
    status, answer, _ = await live.put(sha, 0, blob[:200_000], wire_body=bytes(tampered))
    assert status == 422 and "altered" in answer["error"]
    # Even a part whose signed hash matches the tampered bytes fails at the end: the container hash.
    status, answer, _ = await live.put(sha, 0, bytes(tampered))
    assert status == 200
    status, answer, _ = await live.put(sha, 200_000, blob[200_000:])
    assert status == 200
    status, answer, _ = await live.complete(sha)
    assert status == 422 and "hash mismatch" in answer["error"]
    assert _stored(live.archive) == (0, [], [])


async def test_wrong_hash_is_refused_and_nothing_stored(live):
    blob = _container(live.box.recipients())
    declared = hashlib.sha256(b"something else").hexdigest()
    body = canonical({"recording_id": "r1", "sha256": declared, "size": len(blob), "metadata": {}})
    assert (await live.send("POST", f"{API}/uploads", body))[0] == 200
    status, answer, _ = await live.put(declared, 0, blob)
    assert status == 200 and answer["offset"] == len(blob)
    status, answer, _ = await live.complete(declared)
    assert status == 422 and "hash mismatch" in answer["error"]
    assert _stored(live.archive) == (0, [], [])
    # Parts that do not start at the committed offset are refused too.
    sha = await live.start(blob)
    status, answer, _ = await live.put(sha, 5, blob[5:100])
    assert status == 409 and "committed offset 0" in answer["error"]


async def test_oversized_body_is_refused(live):
    blob = _container(live.box.recipients(), size=MAX_CHUNK + 200_000)
    sha = await live.start(blob)
    status, answer, _ = await live.put(sha, 0, blob[:MAX_CHUNK + 1])
    assert status == 413 and "exceeds" in answer["error"]
    status, answer, _ = await live.send("POST", f"{API}/uploads", _start_body(blob, size=2**50))
    assert status == 413
    # A part past the declared size.
    small = _container(live.box.recipients(), size=70_000)
    status, answer, _ = await live.put(await live.start(small, size=1000), 0, small)
    assert status == 413 and "declared size" in answer["error"]
    assert _stored(live.archive)[:2] == (0, [])
    assert all(p.stat().st_size == 0 for p in _stored(live.archive)[2])


async def test_container_the_archive_cannot_open_is_refused(live):
    blob = _container([live.box.public_key])  # sealed to the box only
    status, answer, _ = await live.put(await live.start(blob), 0, blob)
    assert status == 422 and "not a recipient" in answer["error"]
    junk = os.urandom(5000)
    status, answer, _ = await live.put(await live.start(junk), 0, junk)
    assert status == 422 and "not a Kluis container" in answer["error"]
    assert _stored(live.archive) == (0, [], [])


async def test_enrollment_token_is_single_use_and_pins_the_certificate(live, tmp_path):
    archive, url = live.archive, live.url
    from appliance.box import init_box
    other, _ = init_box(tmp_path / "other", "admin", "pw", kdf_profile="interactive")
    with other:
        token = archive.new_token()
        secret, fp = token.split(".")
        wrong_fp = f"{secret}.{'0' * 64}"
        with pytest.raises(Exception, match="certificate does not match"):
            await client.enroll(other, url, wrong_fp)
        await client.enroll(other, url, token)
        third, _ = init_box(tmp_path / "third", "admin", "pw", kdf_profile="interactive")
        with third:
            with pytest.raises(Exception, match="already used"):
                await client.enroll(third, url, token)
            assert client.enrollment(third) is None
    assert len(archive.boxes()) == 2


async def test_streamed_body_is_checked_against_its_signed_hash_before_it_counts(live):
    archive = live.archive
    blob = _container(live.box.recipients(), size=3 * 1024 * 1024)
    sha = await live.start(blob)
    stream = f"{API}/uploads/{sha}/stream?offset=0"
    tampered = bytearray(blob)
    tampered[len(blob) - 10] ^= 1  # near the end: most of it is written before the mismatch shows
    status, answer, _ = await live.send("PUT", stream, blob, wire_body=bytes(tampered))
    assert status == 422 and "altered" in answer["error"]
    parts = _stored(archive)[2]
    assert [p.stat().st_size for p in parts] == [0]  # the request's bytes were taken out again
    # Signing the tampered bytes does not help: from offset 0 the signed hash must be the declared one.
    status, answer, _ = await live.send("PUT", stream, bytes(tampered))
    assert status == 422 and "altered" in answer["error"]
    # A body longer than the rest of the container, or a stream at another than the committed offset.
    status, answer, _ = await live.send("PUT", stream, blob + b"x")
    assert status == 413 and "rest of the container" in answer["error"]
    status, answer, _ = await live.send("PUT", f"{API}/uploads/{sha}/stream?offset=7", blob[7:])
    assert status == 409 and "committed offset 0" in answer["error"]
    assert _stored(archive)[:2] == (0, [])
    # The true bytes: stored, with a receipt.
    status, answer, _ = await live.send("PUT", stream, blob)
    assert status == 200 and answer["offset"] == len(blob)
    status, answer, _ = await live.complete(sha)
    assert status == 200 and answer["receipt"]["sha256"] == sha
    assert _stored(archive)[:2] == (1, [archive.data_dir / "blobs" / sha[:2] / sha])


async def test_streamed_container_the_archive_cannot_open_is_refused(live):
    blob = _container([live.box.public_key])  # sealed to the box only
    sha = await live.start(blob)
    status, answer, _ = await live.send("PUT", f"{API}/uploads/{sha}/stream?offset=0", blob)
    assert status == 422 and "not a recipient" in answer["error"]
    assert _stored(live.archive) == (0, [], [])


async def test_the_link_trusts_only_the_pinned_certificate(live):
    """The box talks to the archive on blocking sockets of its own (sync/link.py), not through an
    aiohttp session: every request checks the pinned fingerprint before a byte is sent, and an archive
    that refuses a streamed body halfway gets its reason through to the box."""
    archive, box, url, key = live.archive, live.box, live.url, live.key
    blob = _container(box.recipients())  # small: an unread body does not fill the socket buffers
    sha = hashlib.sha256(blob).hexdigest()
    path = f"{API}/uploads/{sha}/stream?offset=0"
    headers = sign_request(key, box_id_of(bytes(key.verify_key)), "PUT", path, sha, box.clock())

    # A man in the middle with another certificate: refused before the request is sent.
    for call in (lambda to: to.stream("PUT", path, headers, len(blob), lambda exchange: [blob]),
                 lambda to: to.request("GET", f"{API}/requisitions", headers)):
        with pytest.raises(link.Refused) as refused:
            await call(link.Link(url, "00" * 32))
        assert refused.value.status == 495
    assert _stored(archive) == (0, [], [])
    # No upload started: the archive answers 404 as soon as it has the headers; the box hears why.
    with pytest.raises(link.Refused, match="no open upload") as refused:
        await link.Link(url, archive.cert_fingerprint).stream("PUT", path, headers, len(blob), lambda exchange: [blob])
    assert refused.value.status == 404
