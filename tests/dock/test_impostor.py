"""A device that copies a paired camera's serial and (public) key fingerprint into its advert, but holds
another key, must not take the camera's place: the box keeps the camera's proven address, keeps offloading
it while the impostor is there and after it left, and alerts once. A camera that really moved (a new DHCP
lease, here a new port) proves its new address by the signed challenge and the box follows it.

Real processes: `kluis serve`, the camera simulator (`kluis camera-sim`, the impostor with `--impostor-of`),
real mDNS on loopback, real sockets."""

from __future__ import annotations

import asyncio
import html
import re
import secrets
from pathlib import Path

import aiohttp
import pytest

from dock_helpers import (KEEPER_PASSWORD, Camera, box_alerts, box_devices, box_recordings, configure_box, pair,
                          wait_for)
from tests.web_helpers import csrf_of

RUN = secrets.token_hex(2).upper()  # loopback mDNS is shared by every test run on the machine


def _device(data: Path, serial: str) -> dict:
    return next(d for d in box_devices(data) if d["serial"] == serial)


async def _cameras_page(base: str) -> str:
    """/cameras as the keeper sees it, in Dutch (the served web UI, over HTTPS)."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True),
                                     connector=aiohttp.TCPConnector(ssl=False)) as http:
        async with http.get(f"{base}/login") as r:
            token = csrf_of(await r.text())
        async with http.post(f"{base}/login", data={"username": "admin", "password": KEEPER_PASSWORD,
                                                    "csrf": token}, allow_redirects=False) as r:
            assert r.status == 303
        async with http.get(f"{base}/cameras") as r:
            assert r.status == 200
            return html.unescape(await r.text())


def _camera_row(page: str, serial: str) -> str:
    return next(row for row in re.findall(r"<tr>.*?</tr>", page, re.S) if f"<td>{serial}<br>" in row)


def _offloaded(data: Path, camera: Camera, count: int) -> bool:
    return camera.entries() == [] and len([r for r in box_recordings(data)
                                            if r["camera_serial"] == camera.serial]) == count


@pytest.mark.parametrize("info", ["own-key", "copied-key"])
def test_impostor_with_copied_fingerprint_does_not_stop_the_offload(box_dir, cameras, serve, tmp_path, info):
    """`own-key`: the impostor's info names its own key; `copied-key`: also the real camera's public key,
    so only the signed challenge (the manifest signed for the box's fresh nonce) can tell them apart."""
    data = box_dir[0]
    configure_box(data, ["127.0.0.1"])
    serial = f"IMP{'A' if info == 'own-key' else 'B'}-{RUN}"
    real = cameras(serial)
    server = serve(data)
    pair(data, real)
    real.record(1)
    wait_for(lambda: _offloaded(data, real, 1), 30, what="first recording offloaded")
    proven = _device(data, serial)
    assert (proven["address"], proven["port"]) == ("127.0.0.1", real.port)

    public_key = real._call("GET", "/dock/v1/info")["camera_key"]  # anyone on the LAN can read it
    extra = ["--impostor-info"] if info == "copied-key" else []
    impostor = Camera(tmp_path / "impostor", serial, "--impostor-of", public_key, *extra)
    try:
        server.find(rf"ALERT spoofed_serial \[{serial}\]: 127\.0\.0\.1:{impostor.port} claims to be paired "
                    rf"camera {serial} but .*refused", 30)
        real.record(1)  # while the impostor advertises the camera's serial and fingerprint
        wait_for(lambda: _offloaded(data, real, 2), 30, what="offloaded while the impostor is there")
        row = _device(data, serial)
        assert (row["address"], row["port"], row["online"]) == ("127.0.0.1", real.port, 1)
        assert not (row["status"] or "").startswith("refused")
        # The cameras page: the camera as it is (online, its proven address, done), the impostor beside it.
        web = "https://127.0.0.1:" + server.find(r"web UI: listening on 127\.0\.0\.1:(\d+)").group(1)
        shown = _camera_row(asyncio.run(_cameras_page(web)), serial)
        assert f"127.0.0.1:{real.port}</td>" in shown and "<td>ja</td>" in shown
        assert f"Een ander apparaat op 127.0.0.1:{impostor.port} doet zich voor als deze camera" in shown
        assert "geweigerd" not in shown and "offline" not in shown
        real.record(1)  # more probes and sessions pass: still one alert for this impostor
        wait_for(lambda: _offloaded(data, real, 3), 30, what="offloaded again while the impostor is there")
    finally:
        impostor.stop()

    real.record(1)  # and after it left
    wait_for(lambda: _offloaded(data, real, 4), 30, what="offloaded after the impostor left")
    row = _device(data, serial)
    assert (row["address"], row["port"], row["online"]) == ("127.0.0.1", real.port, 1)
    alerts = [a for a in box_alerts(data) if a["serial"] == serial]
    assert [a["kind"] for a in alerts] == ["spoofed_serial"], alerts  # once; no key_mismatch for the camera
    assert f"127.0.0.1:{impostor.port}" in alerts[0]["message"]
    assert real.stats()["refused"] == {}  # the real camera never saw a request it had to refuse


def test_camera_on_a_new_address_proves_it_and_is_followed(box_dir, cameras, serve, tmp_path):
    data = box_dir[0]
    configure_box(data, ["127.0.0.1"])
    serial = f"MOVE-{RUN}"
    camera = cameras(serial)
    server = serve(data)
    pair(data, camera)
    camera.record(1)
    wait_for(lambda: _offloaded(data, camera, 1), 30, what="first recording offloaded")
    old_port = camera.port

    camera.stop()  # a new lease: the same camera (state, key) comes back elsewhere
    moved = Camera(camera.state, serial)
    try:
        assert moved.port != old_port
        server.find(rf"camera {serial} moved from 127\.0\.0\.1:{old_port} to 127\.0\.0\.1:{moved.port} "
                    r"\(its key proved there by a signed challenge\)", 30)
        moved.record(1)
        wait_for(lambda: _offloaded(data, moved, 2), 30, what="offloaded at the new address")
        row = _device(data, serial)
        assert (row["address"], row["port"], row["online"]) == ("127.0.0.1", moved.port, 1)
        assert not [a for a in box_alerts(data) if a["serial"] == serial]
    finally:
        moved.stop()


def test_impostor_on_the_address_a_camera_left_does_not_keep_the_box_from_its_new_one(box_dir, cameras, serve,
                                                                                       tmp_path):
    """The camera got a new address and a device with its serial and fingerprint took the old one: the box
    alerts once, never stores from or deletes on that device, and follows the camera to where it proves
    its key."""
    data = box_dir[0]
    configure_box(data, ["127.0.0.1"])
    serial = f"LEFT-{RUN}"
    camera = cameras(serial)
    server = serve(data)
    pair(data, camera)
    camera.record(1)
    wait_for(lambda: _offloaded(data, camera, 1), 30, what="first recording offloaded")
    old_port, public_key = camera.port, camera._call("GET", "/dock/v1/info")["camera_key"]
    camera.stop()
    impostor = Camera(tmp_path / "impostor", serial, "--impostor-of", public_key, "--port", str(old_port))
    moved = None
    try:
        server.find(rf"ALERT key_mismatch \[{serial}\]: device at http://127\.0\.0\.1:{old_port} answers as "
                    rf"{serial} with key .*refused", 30)
        moved = Camera(camera.state, serial)
        server.find(rf"camera {serial} moved from 127\.0\.0\.1:{old_port} to 127\.0\.0\.1:{moved.port} ", 30)
        moved.record(1)
        wait_for(lambda: _offloaded(data, moved, 2), 30, what="offloaded at the new address")
        row = _device(data, serial)
        assert (row["address"], row["port"], row["online"]) == ("127.0.0.1", moved.port, 1)
        alerts = [a for a in box_alerts(data) if a["serial"] == serial]
        assert [a["kind"] for a in alerts] == ["key_mismatch"], alerts  # one host, one episode, one alert
        assert impostor.stats()["refused"].get("not_paired", 0) == 0  # not even challenged: its info differs
    finally:
        impostor.stop()
        if moved is not None:
            moved.stop()


def test_a_restart_inside_an_impostor_episode_does_not_alert_again(box_dir, cameras, serve, tmp_path):
    """`kluis serve` restarted (an update, the watchdog, a power cut) while the impostor still advertises:
    the episode alerted before goes on, without a second alert, and the camera is offloaded as before."""
    data = box_dir[0]
    configure_box(data, ["127.0.0.1"])
    serial = f"IMPR-{RUN}"
    real = cameras(serial)
    server = serve(data)
    pair(data, real)
    real.record(1)
    wait_for(lambda: _offloaded(data, real, 1), 30, what="first recording offloaded")
    public_key = real._call("GET", "/dock/v1/info")["camera_key"]
    impostor = Camera(tmp_path / "impostor", serial, "--impostor-of", public_key)
    try:
        server.find(rf"ALERT spoofed_serial \[{serial}\]: 127\.0\.0\.1:{impostor.port} claims to be paired", 30)
        server.stop()

        again = serve(data)
        # (by discovery's advert or by the offload's challenge, whichever meets the impostor first)
        again.find(rf"(spoofs|sessions) \(.*'{serial}', '127\.0\.0\.1'\): the episode alerted before the service "
                   r"restarted goes on \(no new alert\)", 30)
        real.record(1)
        wait_for(lambda: _offloaded(data, real, 2), 30, what="offloaded after the restart, the impostor there")
        assert "ALERT" not in again.output(), again.output()
    finally:
        impostor.stop()
    alerts = [a for a in box_alerts(data) if a["serial"] == serial]
    assert [a["kind"] for a in alerts] == ["spoofed_serial"], alerts  # one, over both runs
