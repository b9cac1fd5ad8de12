"""Pairing a camera with the box, once: the operator types the code the camera shows.

The box checks that the camera answering at the discovered address is the one advertised (its key's
fingerprint), sends its Ed25519 key, the recipients new recordings are encrypted to and the settings,
MAC'd with the code; the camera's answer must carry the same code's MAC and a signature by the key it
claims. Then the box stores that key: from now on only it is trusted for this serial.
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp

from ..box import Box
from ..errors import KluisError, NotFound
from . import devices, protocol
from .client import CameraClient, DockError

log = logging.getLogger("kluis.dock")

DISCOVERY_WAIT_S = 8.0  # how long `pair` browses for a camera the devices table does not know yet


async def _find(box: Box, serial: str, wait_s: float) -> dict:
    """The device row, browsing mDNS for a while if the box has not seen the camera (no `kluis serve`)."""
    device = devices.find_device(box.catalog, serial)
    if device and device["online"] and device["address"]:
        return device
    from .discovery import Discovery  # zeroconf only when needed

    found = asyncio.Event()
    discovery = Discovery(box, on_device=lambda row: found.set() if row["serial"] == serial else None)
    await discovery.start()
    try:
        await asyncio.wait_for(found.wait(), wait_s)
    except asyncio.TimeoutError:
        pass
    finally:
        await discovery.stop()
    device = devices.find_device(box.catalog, serial)
    if not device or not device["address"]:
        raise NotFound(f"camera {serial} not found on the network: is it in its dock, and on this LAN?")
    return device


async def pair_camera(box: Box, serial: str, code: str, *, actor: str = "system", officer: str | None = None,
                      pre_record_s: int = 30, post_record_s: int = 30,
                      wait_s: float = DISCOVERY_WAIT_S) -> dict:
    """Pair camera `serial` with the code it shows. Returns the device row. Raises KluisError (the
    reason, one line) if the camera is unknown, already paired, or the exchange does not check out."""
    serial = devices.check_serial(serial)
    code = protocol.normalize_code(code)
    device = await _find(box, serial, wait_s)
    if device["paired"]:
        raise KluisError(f"camera {serial} is already paired (fingerprint {device['fingerprint']})")
    address = device["address"]
    timeout = aiohttp.ClientTimeout(total=30, connect=5)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        client = CameraClient(http, box, serial, address, device["port"])
        try:
            info, _ = await client.info()
        except protocol.ProtocolError as exc:
            _refuse(box, serial, address, f"its info is malformed: {exc}")
        if info["serial"] != serial:
            _refuse(box, serial, address, f"the device at {address} answers as {info['serial']}")
        if device["advertised_fp"] and info["fp"] != device["advertised_fp"]:
            _refuse(box, serial, address, f"its key {info['fp']} is not the one it advertises "
                    f"({device['advertised_fp']})")
        if info["paired"]:
            raise KluisError(f"camera {serial} is paired to another box (fingerprint {info['box_fp']}): "
                             "unpair it there first")
        settings = protocol.build_settings(1, pre_record_s, post_record_s, officer,
                                           "personal" if officer or device["mode"] == "personal" else "pooled")
        # The pairing MAC key is stretched with Argon2id: off the event loop (the web UI shares it).
        request = await asyncio.to_thread(
            protocol.build_pair_request, code, serial, box.signing_key(), [bytes(k) for k in box.recipients()],
            settings, box.clock(), box_name=box.settings.box.name[:64],
        )
        try:
            response = await client.pair(request)
        except DockError as exc:
            if exc.code == "wrong_code":
                _refuse(box, serial, address, "the camera says the code is wrong (it shows a new code after 5 "
                        "wrong tries)", alert_kind="wrong_code")
            raise
        try:
            answer = await asyncio.to_thread(protocol.verify_pair_response, response, code, request)
        except protocol.ProtocolError as exc:
            _refuse(box, serial, address, f"its answer does not check out: {exc}")
        if answer["camera_key"] != info["camera_key"]:
            _refuse(box, serial, address, "it answered with another key than its info")
    fingerprint = protocol.key_fingerprint(answer["camera_key"])
    now = box.now_iso()
    with box.catalog.transaction():
        box.catalog.db.table("devices").update(serial, {
            "public_key": answer["camera_key"], "fingerprint": fingerprint, "paired": 1, "paired_at": now,
            "paired_by": actor, "settings_version": 1, "pre_record_s": pre_record_s,
            "post_record_s": post_record_s, "officer": officer if officer else device["officer"],
            "mode": settings["assignment"], "status": "paired", "status_at": now,
        })
        devices.audit(box, "pair", actor=actor, details={"camera": serial, "fingerprint": fingerprint,
                                                         "address": address})
    log.info("camera %s paired (key fingerprint %s) by %s", serial, fingerprint, actor)
    return devices.get_device(box.catalog, serial)


def _refuse(box: Box, serial: str, address: str, why: str, alert_kind: str = "pair_refused"):
    devices.alert(box, alert_kind, f"pairing {serial} refused: {why}", serial=serial, address=address,
                  action="pair_refused")
    raise KluisError(f"pairing {serial} refused: {why}")


async def unpair_camera(box: Box, serial: str, actor: str = "system") -> None:
    """Forget a camera's key. The camera is told to forget the box too, if it is reachable."""
    device = devices.get_device(box.catalog, serial)
    if device["paired"] and device["address"]:
        timeout = aiohttp.ClientTimeout(total=10, connect=3)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            client = CameraClient(http, box, serial, device["address"], device["port"], device["public_key"])
            try:
                await client.unpair()
            except (DockError, protocol.ProtocolError) as exc:
                log.warning("camera %s not told to unpair (%s): it keeps refusing other boxes until reset",
                            serial, exc)
    with box.catalog.transaction():
        box.catalog.db.table("devices").update(serial, {"paired": 0, "public_key": None, "fingerprint": None,
                                                  "status": "unpaired", "status_at": box.now_iso()})
        devices.audit(box, "pair", actor=actor, details={"camera": serial, "unpaired": True})
    log.info("camera %s unpaired by %s", serial, actor)
