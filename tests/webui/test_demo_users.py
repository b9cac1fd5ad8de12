"""webui.server.demo_users: what `kluis demo` calls to make one user per role; and start_web over HTTPS."""

from __future__ import annotations

import ssl

import aiohttp

from appliance import roles, tls, users
from tests.conftest import PASSWORD
from webui.server import demo_users, start_web


def test_demo_users_one_per_role_and_each_logs_in(box):
    made = demo_users(box, actor_password=PASSWORD)
    assert {role for _name, role, _pw in made} | {roles.KEEPER} == set(roles.ROLES)
    for name, role, password in made:
        login = users.login(box, name, password)
        assert login.user["role"] == role
        assert (login.identity is not None) == (role in roles.SLOT_ROLES)


async def test_start_web_serves_https_with_the_certificate_status_shows(box):
    runner = await start_web(box, "127.0.0.1", 0)
    try:
        port = runner.addresses[0][1]
        # Trusting exactly the certificate on disk (and checking the name 127.0.0.1 in it): the box
        # serves the certificate whose fingerprint `kluis status` prints.
        context = ssl.create_default_context(cafile=str(tls.paths(box.data_dir)[0]))
        async with aiohttp.ClientSession() as http:
            async with http.get(f"https://127.0.0.1:{port}/login", ssl=context) as response:
                assert response.status == 200 and "Inloggen" in await response.text()
                cookies = response.headers.getall("Set-Cookie")
        assert all("Secure" in c and "HttpOnly" in c for c in cookies)
    finally:
        await runner.cleanup()
