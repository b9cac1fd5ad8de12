"""First boot through a real `kluis serve` on an uninitialised directory, walked by a real HTTPS client:
only the wizard is served; two browsers racing cannot both claim it; a second `kluis serve` is refused;
the recovery key must be typed back; enrollment with a real archive; then the same process serves the
normal web UI, the keeper logs in, the recovery key opens the box, and /setup is gone."""

from __future__ import annotations

import asyncio
import re

from appliance import tls
from appliance.box import Box
from tests.setup.conftest import client, csrf_of
from tests.conftest import run_kluis
from tests.sync.sync_helpers import ArchiveProcess, free_port, new_token
from sync.archive.store import init_archive

OFFICE = "Handhaving Stadskantoor"
MUNICIPALITY = "Gemeente Utrecht"
KEEPER = "beheerder"
PASSWORD = "een goed wachtwoord voor de kluis"
KEY = re.compile(r"KLUIS(?:-[A-Z2-7]{1,5}){11}")


async def begin(session, url: str, token: str | None = None, **overrides):
    if token is None:
        token = csrf_of(await (await session.get(f"{url}/setup")).text())
    form = {"csrf": token, "office": OFFICE, "municipality": MUNICIPALITY, "keeper": KEEPER, "password": PASSWORD,
            "password_again": PASSWORD, **overrides}
    return await session.post(f"{url}/setup/begin", data=form, allow_redirects=False)


async def test_wizard_over_https_then_normal_mode(serve, tmp_path):
    data = tmp_path / "data"
    box = serve(data)
    box.find(r"setup wizard is at https://127\.0\.0\.1:\d+/setup")
    url = box.url
    setup_fingerprint = box.find(r"certificate \(SHA-256\), compare with the browser: ([0-9A-F:]+)").group(1)
    assert not (data / "catalog.db").exists()

    # A second `kluis serve` on the same directory is refused, in one line.
    second = run_kluis("serve", "--data", data, "--listen", f"127.0.0.1:{free_port()}", check=False, timeout=60)
    assert second.returncode == 1
    err = second.stderr.decode() if isinstance(second.stderr, bytes) else second.stderr
    assert err.strip().splitlines()[-1].endswith("is being set up by another kluis serve"), err

    archive_dir = tmp_path / "archive"
    init_archive(archive_dir, "archive operator password", kdf_profile="interactive")[0].close()
    archive = ArchiveProcess(archive_dir, free_port(), tmp_path / "archive.log")
    archive.start()
    try:
        async with client() as alice, client() as mallory:
            # Only the wizard: every other path leads to it.
            for path in ("/", "/login", "/opnames", "/instellingen", "/nergens"):
                response = await alice.get(url + path, allow_redirects=False)
                assert response.status == 303 and response.headers["Location"] == "/setup", path
            response = await alice.post(url + "/login", data={"username": "x"}, allow_redirects=False)
            assert response.status == 303 and response.headers["Location"] == "/setup"

            # The password rules apply; nothing is claimed by a refused form.
            response = await begin(alice, url, password_again=PASSWORD + "x")
            text = await response.text()
            assert response.status == 400 and "De twee wachtwoorden verschillen" in text, (response.status, text)
            # said at the field it is about (aria-invalid, aria-describedby to the message), not only at the top
            again = re.search(r'<input id="password_again"[^>]*>', text).group(0)
            assert 'aria-invalid="true"' in again and 'aria-describedby="password_again-error"' in again
            assert '<span id="password_again-error" class="error field-error">De twee wachtwoorden verschillen' in text
            response = await begin(alice, url, password="kort", password_again="kort")
            assert response.status == 400 and "minstens 10 tekens" in await response.text()
            # The municipality is asked: the transfer form names it as the issuing party.
            response = await begin(alice, url, municipality="  ")
            text = await response.text()
            assert response.status == 400 and "naam van de gemeente" in text and 'value="Handhaving' in text, text
            field = re.search(r'<input id="municipality"[^>]*>', text).group(0)
            assert 'aria-invalid="true"' in field and "municipality-error municipality-hint" in field
            assert "aria-invalid" not in re.search(r'<input id="office"[^>]*>', text).group(0)
            # A form without the CSRF token is refused.
            response = await alice.post(f"{url}/setup/begin", data={"office": OFFICE}, allow_redirects=False)
            assert response.status == 403

            # Two browsers at the same moment: one claims the wizard, the other is told so.
            tokens = [csrf_of(await (await who.get(url + "/setup")).text()) for who in (alice, mallory)]
            first, other = await asyncio.gather(begin(alice, url, tokens[0]),
                                                begin(mallory, url, tokens[1], keeper="indringer"))
            assert sorted([first.status, other.status]) == [303, 409]
            winner, loser = (alice, mallory) if first.status == 303 else (mallory, alice)
            keeper = KEEPER if winner is alice else "indringer"
            busy = await (await loser.get(url + "/setup")).text()
            assert "andere browser" in busy and not KEY.search(busy)

            # Step 2: the recovery key, once.
            page = await (await winner.get(url + "/setup")).text()
            recovery = KEY.search(page).group(0)
            assert (await winner.get(url + "/setup")).headers["Cache-Control"] == "no-store"
            response = await winner.post(url + "/setup/opgeschreven", data={"csrf": csrf_of(page)},
                                         allow_redirects=False)
            assert response.status == 303
            # Step 3: the key is no longer shown; two of its groups must be typed back.
            page = await (await winner.get(url + "/setup")).text()
            assert not KEY.search(page)
            groups = [int(n) for n in re.findall(r'name="group(\d+)"', page)]
            assert len(groups) == 2
            parts = recovery.split("-")
            wrong = {f"group{n}": "ÉÉÉÉÉ" for n in groups}  # not base32 at all, and not ASCII
            response = await winner.post(url + "/setup/bevestigen", data={"csrf": csrf_of(page), **wrong},
                                         allow_redirects=False)
            assert response.status == 400 and not (data / "catalog.db").exists()
            right = {f"group{n}": parts[n].lower() for n in groups}  # as typed from paper
            response = await winner.post(url + "/setup/bevestigen", data={"csrf": csrf_of(page), **right},
                                         allow_redirects=False)
            assert response.status == 303
            assert (data / "catalog.db").exists() and not (data / ".kluis-setup" / "box").exists()

            # Step 4: a bad token is refused with the reason; a good one enrolls.
            page = await (await winner.get(url + "/setup")).text()
            response = await winner.post(url + "/setup/archief", data={
                "csrf": csrf_of(page), "url": archive.url, "token": "nonsense", "enroll": "1"},
                allow_redirects=False)
            assert response.status == 400 and "archief is mislukt" in await response.text()
            response = await winner.post(url + "/setup/archief", data={
                "csrf": csrf_of(page), "url": archive.url, "token": new_token(archive_dir), "enroll": "1"},
                allow_redirects=False)
            assert response.status == 303
            done = await (await winner.get(url + "/setup")).text()
            assert "Inloggen als" in done and keeper in done

            # The same process now runs the box: the normal login works, the wizard is gone.
            box.find(r"Kluis is serving from")
            box.find(r"web UI: listening on 127\.0\.0\.1:%d" % box.port)
            for who in (winner, loser):
                assert (await who.get(url + "/setup", allow_redirects=False)).status == 404
            login = await winner.get(url + "/login")
            assert login.status == 200 and OFFICE in await login.text()
            response = await winner.post(url + "/login", data={
                "csrf": csrf_of(await login.text()), "username": keeper, "password": PASSWORD},
                allow_redirects=False)
            assert response.status == 303 and response.headers["Location"] == "/"
            # A new box requires a second factor of its keeper ([security] totp_required): the first page
            # after the login is where it is set up (tests/webui/test_totp_required.py goes on from there).
            response = await winner.get(url + "/", headers={"Accept": "text/html"})
            account = await response.text()
            assert response.status == 200 and response.url.path == "/account", "\n".join(box.lines)
            assert "Voor uw rol is op deze kluis een tweede factor verplicht" in account
            assert f"{keeper} (beheerder)" in account
    finally:
        archive.stop()
    assert box.stop() == 0
    assert not [line for line in box.lines if "Traceback" in line or "ERROR" in line], "\n".join(box.lines)

    # The recovery key shown by the wizard opens the box; the office name and the enrollment stuck; the
    # certificate the browser accepted during setup is the box's.
    with Box(data) as made:
        identity = made.unlock_recovery(recovery)
        assert bytes(identity.public_key) == bytes(made.public_key)
        assert made.settings.box.name == OFFICE
        assert made.settings.box.municipality == MUNICIPALITY  # in kluis.toml, for the transfer form
        assert made.default_user == keeper
        assert made.catalog.get_user(keeper)["role"] == "keeper"
        assert len(made.recipients()) == 2  # the box and the archive
        first = next(made.catalog.db.query("SELECT * FROM audit_log ORDER BY seq LIMIT 1"))
        assert (first["action"], first["actor"], first["client"]) == ("setup", keeper, "web 127.0.0.1")
    assert tls.fingerprint(data) == setup_fingerprint
    assert not (data / ".kluis-setup").exists()
