"""The camera simulator as a real subprocess, driven over real sockets and real mDNS on loopback, with the
box's side played by the protocol module and a fresh box key pair (no `kluis serve`: that is test_offload)."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import secrets
import time
from datetime import datetime, timezone

import aiohttp
import av
import pytest
from nacl.public import PrivateKey
from nacl.signing import SigningKey
from zeroconf import DNSQuestionType, ServiceStateChange
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from appliance.container import open_container
from appliance.dock import protocol as p
from dock_helpers import run_kluis, wait_for


def unique_serial() -> str:
    # mDNS on loopback is shared by every test run on this machine: never collide with another camera.
    return "T" + secrets.token_hex(4).upper()


def now() -> datetime:
    return datetime.now(timezone.utc)


class BoxEnd:
    """The box's half of the protocol: its keys and signed HTTP calls to one camera."""

    def __init__(self, session: aiohttp.ClientSession, camera):
        self.session, self.camera = session, camera
        self.key = SigningKey.generate()
        self.identity = PrivateKey.generate()
        self.camera_key: str | None = None
        self.base = f"http://127.0.0.1:{camera.port}"

    async def call(self, method: str, path: str, body: bytes = b"", signed: bool = True, headers=None,
                   key: SigningKey | None = None) -> tuple[int, bytes, dict]:
        headers = dict(headers or {})
        if signed:
            headers.update(p.sign_request(key or self.key, method, path, body, now()))
        async with self.session.request(method, self.base + path, data=body, headers=headers) as resp:
            return resp.status, await resp.read(), headers

    async def pair(self, code: str, settings: dict) -> tuple[int, dict]:
        request = p.build_pair_request(code, self.camera.serial, self.key, [bytes(self.identity.public_key)],
                                       settings, now(), "test-box")
        status, body, _ = await self.call("POST", "/dock/v1/pair", p.canonical(request), signed=False)
        answer = json.loads(body)
        if status == 200:
            self.camera_key = p.verify_pair_response(answer, code, request)["camera_key"]
        return status, answer

    async def manifest(self) -> dict:
        status, body, headers = await self.call("GET", "/dock/v1/manifest")
        assert status == 200, body
        return p.verify_manifest(body, self.camera_key, self.camera.serial, headers[p.H_NONCE])

    async def download(self, recording_id: str, range_: str | None = None) -> tuple[int, bytes, str | None]:
        path = f"/dock/v1/recordings/{recording_id}"
        headers = p.sign_request(self.key, "GET", path, b"", now())
        if range_:
            headers["Range"] = range_
        async with self.session.get(self.base + path, headers=headers) as resp:
            return resp.status, await resp.read(), resp.headers.get("Content-Range")

    def open(self, container: bytes) -> tuple[dict, bytes]:
        src = io.BytesIO(container)
        header, decryptor = open_container(src, self.identity)
        return header.metadata_json(), b"".join(decryptor.stream(src))


def mp4_seconds(data: bytes) -> float:
    with av.open(io.BytesIO(data)) as media:
        return media.duration / 1_000_000


def error_code(body: bytes) -> str:
    return json.loads(body)["error"]["code"]


class Browser:
    """What a box does on the LAN: browse _bodycam._tcp on 127.0.0.1 with QM questions."""

    def __init__(self):
        self.events: list[tuple[str, ServiceStateChange, float]] = []
        self.zc = AsyncZeroconf(interfaces=["127.0.0.1"])
        self.started = time.monotonic()

    def _on_change(self, zeroconf, service_type, name, state_change):
        self.events.append((name, state_change, time.monotonic()))

    async def start(self):
        self.started = time.monotonic()
        self.browser = AsyncServiceBrowser(self.zc.zeroconf, p.SERVICE_TYPE, handlers=[self._on_change],
                                           question_type=DNSQuestionType.QM)

    async def wait(self, name: str, state: ServiceStateChange, timeout: float = 10) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for seen, change, when in self.events:
                if seen == name and change == state:
                    return when - self.started
            await asyncio.sleep(0.02)
        raise AssertionError(f"no {state} for {name} within {timeout} s")

    async def info(self, name: str) -> AsyncServiceInfo:
        info = AsyncServiceInfo(p.SERVICE_TYPE, name)
        assert await info.async_request(self.zc.zeroconf, 3000, question_type=DNSQuestionType.QM)
        return info

    async def close(self):
        await self.browser.async_cancel()
        await self.zc.async_close()


@pytest.fixture
async def session():
    async with aiohttp.ClientSession() as s:
        yield s


async def test_camera_lifecycle(cameras, session):
    """Discovery, info, pairing (wrong and right code), settings, recording, signed manifest, download with
    and without Range, decryption to a playable MP4, deletes (unsigned, wrong hash, signed, replayed), and
    a restart that keeps keys, pairing, settings, recordings and the replay cache; the goodbye on stop."""
    serial = unique_serial()
    camera = cameras(serial, "--clock-drift", "-3600")  # camera clock an hour behind: still accepted
    name = f"{serial}.{p.SERVICE_TYPE}"
    browser = Browser()
    await browser.start()
    try:
        discovered_s = await browser.wait(name, ServiceStateChange.Added)
        print(f"discovered after {discovered_s:.3f} s")
        assert discovered_s < 3.0
        txt = p.parse_txt((info := await browser.info(name)).properties, len(info.text))
        assert (txt.serial, txt.paired, info.port) == (serial, False, camera.port)

        box = BoxEnd(session, camera)
        status, body, _ = await box.call("GET", "/dock/v1/info", signed=False)
        camera_info = p.parse_info(json.loads(body))
        assert status == 200 and camera_info["paired"] is False and camera_info["fp"] == txt.fp
        drift = (p.from_iso(camera_info["camera_time"]) - now()).total_seconds()
        assert -3610 < drift < -3590

        # A camera records when unpaired too: sealed to its holding key, re-sealed at pairing.
        early = run_kluis("camera-sim", "record", "--state", camera.state, "--seconds", "1").stdout.decode().strip()
        # Signed endpoints answer nobody before pairing.
        status, body, _ = await box.call("GET", "/dock/v1/manifest")
        assert (status, error_code(body)) == (403, "not_paired")

        # Oversized and malformed JSON are refused before anything else.
        status, body, _ = await box.call("POST", "/dock/v1/pair", b"{" + b" " * 70_000 + b"}", signed=False)
        assert (status, error_code(body)) == (413, "too_large")
        status, body, _ = await box.call("POST", "/dock/v1/pair", b'{"pairing": {}, "pairing": {}}', signed=False)
        assert (status, error_code(body)) == (400, "malformed")

        # Wrong codes are refused; after five the camera shows a new code and the old one is dead.
        settings = p.build_settings(1, pre_record_s=2, post_record_s=1, officer="J. Jansen")
        first = camera.code
        for attempt in range(5):
            wrong = f"{(int(first) + 1 + attempt) % 10**8:08d}"
            status, answer = await box.pair(wrong, settings)
            assert (status, answer["error"]["code"]) == (403, "wrong_code")
        camera.find(r"^pairing code: (?!" + first + r")\d{8}$", timeout=5)
        assert (await box.pair(first, settings))[0] == 403
        assert (camera.state / "display.txt").read_text() == f"pairing code: {camera.code}\n"
        status, answer = await box.pair(camera.code, settings)
        assert status == 200 and box.camera_key == camera_info["camera_key"]
        assert (await box.pair(camera.code, settings))[0] == 409  # already paired
        for _ in range(50):  # the TXT record now says paired
            if p.parse_txt((await browser.info(name)).properties).paired:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("TXT still says unpaired")

        # Settings from the box: applied, persisted, versions only go up.
        new = p.build_settings(2, pre_record_s=3, post_record_s=1, officer="A. de Vries", assignment="pooled")
        status, body, _ = await box.call("PUT", "/dock/v1/settings", p.canonical(new))
        assert status == 200 and json.loads(body)["settings"] == new
        status, body, _ = await box.call("PUT", "/dock/v1/settings", p.canonical({**new, "officer": "X"}))
        assert (status, error_code(body)) == (409, "stale_settings")

        made = run_kluis("camera-sim", "record", "--state", camera.state, "--seconds", "2").stdout.decode().strip()
        for path in camera.state.rglob("*"):  # the footage exists only encrypted on the camera's storage
            if path.is_file():
                data = path.read_bytes()
                assert data[4:8] != b"ftyp" and b"libx264" not in data and b"moov" not in data, path
        manifest = await box.manifest()
        entries = {e["id"]: e for e in manifest["recordings"]}
        assert set(entries) == {early, made}
        entry = entries[made]
        assert (entry["pre_record_s"], entry["post_record_s"], entry["officer"]) == (3, 1, "A. de Vries")
        start, end = p.from_iso(entry["start"]), p.from_iso(entry["end"])
        assert (end - start).total_seconds() == pytest.approx(6, abs=0.01)
        assert abs((end - now()).total_seconds() + 3600) < 60  # on the drifting camera clock

        # Unsigned, foreign-signed and tampered requests are refused.
        status, body, _ = await box.call("GET", "/dock/v1/manifest", signed=False)
        assert (status, error_code(body)) == (401, "unsigned")
        status, body, _ = await box.call("GET", "/dock/v1/manifest", key=SigningKey.generate())
        assert (status, error_code(body)) == (401, "bad_signature")

        # Download whole, and resumed with Range; decrypt with the box's private key.
        status, whole, _ = await box.download(made)
        assert status == 200 and len(whole) == entry["size"]
        assert hashlib.sha256(whole).hexdigest() == entry["sha256"]
        status, tail, content_range = await box.download(made, "bytes=1000-")
        assert status == 206 and tail == whole[1000:]
        assert content_range == f"bytes 1000-{entry['size'] - 1}/{entry['size']}"
        status, body, _ = await box.download(made, f"bytes={entry['size']}-")
        assert (status, error_code(body)) == (416, "bad_range")
        metadata, plain = box.open(whole)
        p.check_recording_metadata(metadata, serial, entry)
        assert plain[4:8] == b"ftyp" and mp4_seconds(plain) == pytest.approx(6, abs=0.2)
        status, early_bytes, _ = await box.download(early)
        _, early_plain = box.open(early_bytes)  # re-sealed to the box at pairing
        assert mp4_seconds(early_plain) == pytest.approx(30 + 1 + 30, abs=0.2)  # unpaired defaults

        # Deletes: only signed by the paired box and naming the right hash.
        path = f"/dock/v1/recordings/{made}"
        good = p.build_delete(made, entry["sha256"])
        status, body, _ = await box.call("DELETE", path, good, signed=False)
        assert (status, error_code(body)) == (401, "unsigned")
        status, body, _ = await box.call("DELETE", path, good, key=SigningKey.generate())
        assert (status, error_code(body)) == (401, "bad_signature")
        status, body, _ = await box.call("DELETE", path, p.build_delete(made, "00" * 32))
        assert (status, error_code(body)) == (409, "sha256_mismatch")
        assert made in {e["id"] for e in (await box.manifest())["recordings"]}
        status, body, signed_headers = await box.call("DELETE", path, good)
        assert status == 200
        p.verify_deleted(body, box.camera_key, serial, made, entry["sha256"])
        assert {e["id"] for e in (await box.manifest())["recordings"]} == {early}
        assert not list(camera.state.glob(f"recordings/{made}.*"))
        replay = {k: v for k, v in signed_headers.items() if k.startswith("X-Kluis")}
        status, body, _ = await box.call("DELETE", path, good, signed=False, headers=replay)
        assert (status, error_code(body)) == (401, "replay")

        # Restart: same key, pairing, settings and recordings; replays still refused; goodbye sent.
        browser.events.clear()
        assert await asyncio.to_thread(camera.stop) == 0
        await browser.wait(name, ServiceStateChange.Removed, timeout=5)
        assert not (camera.state / "sim.json").exists()
        camera = cameras(serial, "--clock-drift", "-3600")
        box.base = f"http://127.0.0.1:{camera.port}"
        await browser.wait(name, ServiceStateChange.Added)
        status, body, _ = await box.call("GET", "/dock/v1/info", signed=False)
        after = p.parse_info(json.loads(body))
        assert (after["camera_key"], after["paired"], after["settings_version"]) == (box.camera_key, True, 2)
        assert after["box_fp"] == p.key_fingerprint(box.key)
        assert [e["id"] for e in (await box.manifest())["recordings"]] == [early]
        status, body, _ = await box.call("DELETE", path, good, signed=False, headers=replay)
        assert (status, error_code(body)) == (401, "replay")
        assert not any("pairing code" in line for line in camera.lines)  # a paired camera shows no code
    finally:
        await browser.close()


async def test_faults_and_resume(cameras, session):
    """Cut connections (resumed with Range to the same bytes), slow serving, a corrupt copy, a manifest
    signed with a wrong key, and oversized/malformed TXT records that a box must refuse."""
    serial = unique_serial()
    camera = cameras(serial)
    box = BoxEnd(session, camera)
    camera.find(r"^pairing code: ")
    status, _ = await box.pair(camera.code, p.build_settings(1, 0, 0, None))
    assert status == 200
    entry = camera.record(seconds=3, filler_mb=1)
    assert entry["size"] > 1024 * 1024
    status, good, _ = await box.download(entry["id"])
    assert hashlib.sha256(good).hexdigest() == entry["sha256"]

    # Cut after 300 000 bytes, every time: a box resuming from what it holds still gets exactly the bytes.
    camera.faults(cut_after=300_000)
    received, attempts = b"", 0
    while len(received) < entry["size"]:
        attempts += 1
        path = f"/dock/v1/recordings/{entry['id']}"
        headers = {**p.sign_request(box.key, "GET", path, b"", now()), "Range": f"bytes={len(received)}-"}
        try:
            async with session.get(box.base + path, headers=headers) as resp:
                assert resp.status in (200, 206)
                async for block in resp.content.iter_chunked(65536):
                    received += block
        except aiohttp.ClientPayloadError:
            pass  # the cut: resume from what arrived
    assert received == good and attempts == -(-entry["size"] // 300_000)
    served = [s for s in camera.stats()["served"] if s["id"] == entry["id"]][1:]
    assert [s["start"] for s in served] == [i * 300_000 for i in range(attempts)]  # no byte fetched twice
    assert all(s["sent"] == min(300_000, entry["size"] - s["start"]) for s in served)

    # Slow serving: 200 kB at 400 kB/s takes about half a second.
    camera.faults(cut_after=None, rate=400_000)
    began = time.monotonic()
    status, part, _ = await box.download(entry["id"], "bytes=0-199999")
    assert status == 206 and part == good[:200_000]
    assert time.monotonic() - began >= 0.4

    camera.faults(rate=None, corrupt=True)
    status, bad, _ = await box.download(entry["id"])
    assert len(bad) == len(good) and bad != good
    assert hashlib.sha256(bad).hexdigest() != entry["sha256"]
    camera.faults(corrupt=False)

    camera.faults(wrong_manifest_key=True)
    with pytest.raises(p.ProtocolError, match="bad signature"):
        await box.manifest()
    camera.faults(wrong_manifest_key=False)
    assert [e["id"] for e in (await box.manifest())["recordings"]] == [entry["id"]]

    zc = AsyncZeroconf(interfaces=["127.0.0.1"])
    try:
        for fault, reason in (("oversized", "too large"), ("malformed", "serial")):
            camera.faults(bad_txt=fault)
            for _ in range(50):
                info = AsyncServiceInfo(p.SERVICE_TYPE, f"{serial}.{p.SERVICE_TYPE}")
                await info.async_request(zc.zeroconf, 1000, question_type=DNSQuestionType.QM)
                try:
                    p.parse_txt(info.properties, len(info.text))
                except p.ProtocolError as exc:
                    if reason in str(exc):  # (the previous fault's record may still be cached)
                        break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError(f"{fault} TXT was never advertised")
    finally:
        await zc.async_close()
    # The camera itself kept its recording intact through all of this.
    assert camera.entries() == [entry]

    # Unpairing (signed by the box): a new code is shown, and the old box is no longer served.
    status, body, _ = await box.call("DELETE", "/dock/v1/pair")
    assert status == 200 and json.loads(body) == {"paired": False}
    codes = wait_for(lambda: (c := [ln for ln in camera.lines if ln.startswith("pairing code: ")])[1:] and c, 5,
                     what="a new pairing code")
    assert len(codes) == 2 and codes[0] != codes[1]
    status, body, _ = await box.call("GET", "/dock/v1/manifest")
    assert (status, error_code(body)) == (403, "not_paired")


def test_record_without_simulator_is_a_clear_error(tmp_path):
    result = run_kluis("camera-sim", "record", "--state", tmp_path / "nothing", check=False)
    assert result.returncode == 1
    assert b"not a camera state directory" in result.stderr and b"Traceback" not in result.stderr


def test_records_on_a_schedule(cameras):
    camera = cameras(unique_serial(), "--record-every", "0.3", "--record-seconds", "1")
    entries = wait_for(lambda: len(camera.entries()) >= 2 and camera.entries(), 15, what="two scheduled recordings")
    assert all(e["pre_record_s"] == 30 and e["post_record_s"] == 30 for e in entries)
    assert len({e["id"] for e in entries}) == len(entries)
    assert not list(camera.state.glob("recordings/*.part"))
