"""A rogue device that pairs properly and then answers with malformed or oversized JSON, or with another
key than it paired with: each is refused with a clear log line and an alert, nothing is stored, and a
paired simulator is still served.

The rogue is written here on purpose (with the protocol module, an aiohttp server and zeroconf): the
camera simulator is a well-behaved camera and cannot send broken JSON."""

from __future__ import annotations

import asyncio
import secrets
import socket

from aiohttp import web
from nacl.signing import SigningKey
from zeroconf import IPVersion
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from appliance.clock import system_clock
from appliance.dock import protocol as p
from dock_helpers import BoxServer, box_alerts, box_recordings, configure_box, pair, wait_for

RUN = secrets.token_hex(2).upper()
BAD_ANSWERS = {  # mode -> (body, what the box's log line must say)
    "huge": (b'{"manifest": "' + b"x" * (p.MAX_MANIFEST_BODY + 10) + b'"}', "too large"),
    "truncated": (b'{"manifest": {"proto": 1, "serial": ', "not valid JSON"),
    "duplicate": (b'{"manifest": {}, "manifest": {}, "signature": "00"}', "duplicate JSON key"),
    "nan": (b'{"manifest": NaN, "signature": "00"}', "NaN"),
}


class Rogue:
    """Pairs by the book, then sends `BAD_ANSWERS[mode]` as its manifest, or malformed info."""

    def __init__(self, serial: str):
        self.serial, self.key, self.code = serial, SigningKey.generate(), p.new_pairing_code()
        self.box_key: str | None = None
        self.mode = "huge"
        self.bad_info = False  # once paired: malformed info
        self.swap_key = False

    async def info(self, request):
        if self.box_key and self.swap_key:  # once paired: the same serial, another key
            self.key, self.swap_key = SigningKey.generate(), False
        if self.bad_info and self.box_key:
            return web.Response(body=b'{"proto": 1, "serial": "' + self.serial.encode() + b'", "proto": 2}',
                                content_type="application/json")
        return web.json_response(p.build_info(self.serial, "Rogue", "6.6.6", self.key, self.box_key is not None,
                                              self.box_key, system_clock(), 1))

    async def pair(self, request):
        pairing = p.verify_pair_request(p.parse_json(await request.read()), self.code, self.serial)
        self.box_key = pairing["box_key"]
        return web.json_response(p.build_pair_response(self.code, pairing, self.serial, self.key, system_clock(),
                                                       "Rogue", "6.6.6"))

    async def manifest(self, request):
        return web.Response(body=BAD_ANSWERS[self.mode][0], content_type="application/json")


async def serve_rogue(rogue: Rogue, azc: AsyncZeroconf) -> tuple[web.AppRunner, AsyncServiceInfo]:
    app = web.Application()
    app.router.add_get(f"{p.API_PREFIX}/info", rogue.info)
    app.router.add_post(f"{p.API_PREFIX}/pair", rogue.pair)
    app.router.add_get(f"{p.API_PREFIX}/manifest", rogue.manifest)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    info = AsyncServiceInfo(p.SERVICE_TYPE, f"{rogue.serial}.{p.SERVICE_TYPE}", port=runner.addresses[0][1],
                            properties=p.build_txt(rogue.serial, "Rogue", "6.6.6", rogue.key, False),
                            addresses=[socket.inet_aton("127.0.0.1")], server=f"{rogue.serial.lower()}.local.")
    await (await azc.async_register_service(info))
    return runner, info


async def test_malformed_and_oversized_json_refused(box_dir, cameras):
    data = box_dir[0]
    configure_box(data, ["127.0.0.1"])
    rogues = {mode: Rogue(f"ROGUE-{mode.upper()}-{RUN}") for mode in [*BAD_ANSWERS, "info", "newkey"]}
    for mode, rogue in rogues.items():
        rogue.mode = mode if mode in BAD_ANSWERS else "huge"
    rogues["info"].bad_info = True
    rogues["newkey"].swap_key = True
    azc = AsyncZeroconf(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only)
    served = [await serve_rogue(rogue, azc) for rogue in rogues.values()]
    good = await asyncio.to_thread(cameras, f"FINE-{RUN}")
    server = await asyncio.to_thread(BoxServer, data)
    try:
        await asyncio.to_thread(pair, data, good)
        for rogue in rogues.values():
            await asyncio.to_thread(pair, data, rogue)  # a Rogue has the .serial and .code `pair` needs
        for mode, (_, says) in BAD_ANSWERS.items():
            await asyncio.to_thread(server.find, rf"ALERT bad_manifest \[{rogues[mode].serial}\].*{says}", 30)
        await asyncio.to_thread(server.find,
                                rf"ALERT protocol_error \[{rogues['info'].serial}\].*duplicate JSON key", 30)
        await asyncio.to_thread(server.find, rf"ALERT key_mismatch \[{rogues['newkey'].serial}\].*refused", 30)

        await asyncio.to_thread(good.record, 1)
        await asyncio.to_thread(wait_for, lambda: good.entries() == [] and len(box_recordings(data)) == 1, 30)
        assert {r["camera_serial"] for r in box_recordings(data)} == {good.serial}
        assert not list((data / "tmp").iterdir())
        alerted = {a["serial"] for a in box_alerts(data)}
        assert {r.serial for r in rogues.values()} <= alerted
        assert "Traceback" not in "\n".join(server.lines)
    finally:
        await asyncio.to_thread(server.stop)
        for runner, info in served:
            await (await azc.async_unregister_service(info))
            await runner.cleanup()
        await azc.async_close()
