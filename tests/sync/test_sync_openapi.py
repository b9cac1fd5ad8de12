"""docs/archive-openapi.yaml against the server: every route of the app is in the document and vice versa,
and every response of a real run (a sync with holds, a requisition, checkpoints, metadata updates, and
refused requests) validates against the documented schema for its route, method and status."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import aiohttp
import jsonschema
import pytest
import yaml
from aiohttp import web
from nacl.signing import SigningKey

from appliance import retention
from appliance.clock import system_clock
from sync import client
from sync.archive import server
from sync.archive.store import Archive
from sync.protocol import API, MAX_CHUNK, box_id_of, sha256_hex, sign_request
from sync_helpers import import_random

DOC = Path(__file__).resolve().parents[2] / "docs" / "archive-openapi.yaml"


@pytest.fixture(scope="module")
def doc() -> dict:
    return yaml.safe_load(DOC.read_text())


def _app_routes(app: web.Application) -> set[tuple[str, str]]:
    return {(route.method.lower(), route.resource.canonical) for route in app.router.routes()
            if route.method != "HEAD"}


def test_every_route_is_documented_and_every_documented_route_exists(doc, archive_dir):
    with Archive(archive_dir) as archive:
        routes = _app_routes(server.make_app(archive))
    documented = {(method, path) for path, ops in doc["paths"].items() for method in ops
                  if method in ("get", "post", "put", "delete", "patch")}
    assert routes == documented
    for schema in doc["components"]["schemas"].values():
        jsonschema.Draft202012Validator.check_schema(schema)


def _validator(doc: dict, route: str, method: str, status: int) -> jsonschema.Validator:
    responses = doc["paths"][route][method.lower()]["responses"]
    assert str(status) in responses, f"{method} {route} answered {status}, which the document does not list"
    response = responses[str(status)]
    if "$ref" in response:
        response = doc["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    schema = response["content"]["application/json"]["schema"]
    # $refs inside resolve against a root that holds the document's components.
    return jsonschema.Draft202012Validator({**schema, "components": doc["components"]})


async def test_responses_of_a_real_run_match_the_document(doc, archive_dir, box, tmp_path):
    seen: list[tuple[str, str, int, object]] = []

    @web.middleware
    async def recorder(request, handler):
        response = await handler(request)
        resource = request.match_info.route.resource
        if resource is not None:
            seen.append((request.method, resource.canonical, response.status, json.loads(response.body)))
        return response

    archive = Archive(archive_dir)
    app = server.make_app(archive)
    app.middlewares.insert(0, recorder)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server.tls.server_context(archive_dir))
    await site.start()
    url = f"https://127.0.0.1:{runner.addresses[0][1]}"
    try:
        await client.enroll(box, url, archive.new_token())
        held, _ = import_random(box, tmp_path, 300_000)
        retention.add_hold(box, held, "police_report", "PV-1", actor="admin")
        wanted, _ = import_random(box, tmp_path, 100_000, camera="CAM9")
        archive.add_requisition("op", legal_basis="126nd Sv", case_ref="OM-1", recording_id=wanted)
        assert (await client.Syncer(box).run()).ok
        retention.release_hold(box, held, "closed", actor="admin")
        assert (await client.Syncer(box).run()).ok
        sha = box.catalog.get_recording(held)["sha256"]

        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(
            ssl=aiohttp.Fingerprint(bytes.fromhex(archive.cert_fingerprint))))
        key, box_id = box.signing_key(), box_id_of(bytes(box.signing_key().verify_key))

        async def call(method, path, body=b"", headers=None, key=key, box_id=box_id):
            headers = headers or sign_request(key, box_id, method, path, sha256_hex(body), system_clock())
            async with session.request(method, url + path, data=body, headers=headers) as resp:
                await resp.read()
            return headers

        async with session:
            async with session.get(url + f"{API}/info") as resp:
                assert resp.status == 200
            stranger = SigningKey.generate()
            await call("GET", f"{API}/requisitions", key=stranger, box_id=box_id_of(bytes(stranger.verify_key)))
            async with session.post(url + f"{API}/uploads", data=b"{}") as resp:
                assert resp.status == 401
            headers = await call("GET", f"{API}/checkpoints/last")
            await call("GET", f"{API}/checkpoints/last", headers=headers)  # replay
            await call("POST", f"{API}/uploads", json.dumps({"recording_id": "x", "sha256": sha,
                                                              "size": 2**40}).encode())  # 200: already stored
            other = hashlib.sha256(b"x").hexdigest()
            await call("PUT", f"{API}/uploads/{other}?offset=0", b"x" * 10)  # 404: no such upload
            await call("PUT", f"{API}/uploads/{other}?offset=0", b"x" * (MAX_CHUNK + 1))  # 413
            # The box streams; parts stay in the API: one (200), then a stream at a stale offset (409).
            part_sha = hashlib.sha256(b"p" * 20).hexdigest()
            await call("POST", f"{API}/uploads", json.dumps({"recording_id": "p", "sha256": part_sha,
                                                              "size": 20}).encode())
            await call("PUT", f"{API}/uploads/{part_sha}?offset=0", b"p" * 10)
            await call("GET", f"{API}/uploads/{part_sha}")  # 200: 10 bytes so far
            await call("GET", f"{API}/uploads/{other}")  # 404: no such upload
            await call("GET", f"{API}/uploads/{part_sha}/progress")  # 200: no stream runs, one state
            await call("PUT", f"{API}/uploads/{part_sha}/stream?offset=0", b"p" * 20)
            await call("POST", f"{API}/uploads", json.dumps({"recording_id": "x", "sha256": other,
                                                              "size": 2**50}).encode())  # 413
            await call("POST", f"{API}/recordings/{other}/metadata", b'{"metadata": {}}')  # 404
            await call("POST", f"{API}/checkpoints", b'{"checkpoint": {"count": 1}}')  # 422
            await call("POST", f"{API}/requisitions/abc/report", b'{"matched": []}')  # 400
            await call("POST", f"{API}/enroll", b'{"token": "nope"}')  # 400
    finally:
        await runner.cleanup()
        archive.close()

    assert seen
    for method, route, status, body in seen:
        errors = sorted(_validator(doc, route, method, status).iter_errors(body), key=str)
        assert not errors, f"{method} {route} {status}: {errors[0].message}"
    exercised = {(m.lower(), r) for m, r, s, _ in seen if s == 200}
    documented = {(m, p) for p, ops in doc["paths"].items() for m in ops}
    assert exercised == documented  # every route answered at least once with success
    statuses = {s for _, _, s, _ in seen}
    assert {200, 400, 401, 403, 404, 409, 413, 422} <= statuses
