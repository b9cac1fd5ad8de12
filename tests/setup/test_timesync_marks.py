"""appliance.timesync: the sources in their order (fake timedatectl and chronyc on PATH, the real adjtimex),
the KLUIS_TIMESYNC injection; and the marks: recordings imported through the real CLI while the clock is
not synchronised carry clock_synced 0 (kluis list --json, kluis status), and a real `kluis serve` shows
the clock state on the overview and the mark on the recording's page and in the list."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest

from appliance import timesync
from appliance.box import Box
from appliance.dock.footage import make_mp4
from tests.conftest import PASSWORD, add_role_users
from tests.setup.conftest import client, csrf_of

START = datetime(2026, 11, 20, 13, 5, tzinfo=timezone.utc)


@pytest.fixture
def fake_bin(tmp_path, monkeypatch):
    """A directory first on PATH where tests put stand-ins for timedatectl and chronyc."""
    folder = tmp_path / "bin"
    folder.mkdir()
    monkeypatch.setenv("PATH", f"{folder}:{__import__('os').environ['PATH']}")
    monkeypatch.delenv(timesync.ENV, raising=False)
    monkeypatch.setattr(timesync, "_cache", None)

    def put(name: str, output: str, code: int = 0) -> None:
        script = folder / name
        script.write_text(f"#!/bin/sh\ncat <<'EOF'\n{output}\nEOF\nexit {code}\n")
        script.chmod(0o755)
        monkeypatch.setattr(timesync, "_cache", None)

    return put


TRACKING = """Reference ID    : C0A80001 (192.168.0.1)
Stratum         : 3
System time     : 0.000012 seconds fast of NTP time
Leap status     : {leap}"""


def test_timedatectl_first_then_chrony_then_adjtimex(fake_bin):
    fake_bin("timedatectl", "no")
    fake_bin("chronyc", TRACKING.format(leap="Normal"))
    assert timesync.status() == timesync.ClockSync(False, "timedatectl", "NTPSynchronized=no")
    fake_bin("timedatectl", "yes")
    assert timesync.status().synchronized is True

    fake_bin("timedatectl", "System has not been booted with systemd", code=1)  # a container
    assert timesync.status() == timesync.ClockSync(True, "chrony", "leap status Normal")
    fake_bin("chronyc", TRACKING.format(leap="Not synchronised"))
    assert timesync.status() == timesync.ClockSync(False, "chrony", "leap status Not synchronised")

    fake_bin("chronyc", "506 Cannot talk to daemon", code=1)
    last = timesync.status()
    assert last.source == "adjtimex" and last.synchronized == timesync.from_adjtimex().synchronized


def test_answers_are_cached_briefly(fake_bin):
    fake_bin("timedatectl", "yes")
    assert timesync.status().synchronized is True
    (Path(__import__("shutil").which("timedatectl"))).write_text("#!/bin/sh\necho no\n")
    assert timesync.status().synchronized is True  # within CACHE_S: the same answer, no new process


def test_adjtimex_reads_the_kernel_without_privilege():
    answer = timesync.from_adjtimex()
    assert answer is not None and answer.source == "adjtimex"
    status = int(re.search(r"status 0x([0-9a-f]+)", answer.detail).group(1), 16)
    assert answer.synchronized == (not status & timesync.STA_UNSYNC and "state 5" not in answer.detail)


def test_injected_sources(tmp_path, monkeypatch):
    monkeypatch.setattr(timesync, "_cache", None)
    flag = tmp_path / "synced"
    flag.write_text("no\n")
    for spec, expected in [("yes", True), ("no", False), ("nonsense", None), (f"file:{flag}", False),
                           ("command:echo yes", True), ("command:false", None),
                           (f"file:{tmp_path / 'missing'}", None)]:
        monkeypatch.setenv(timesync.ENV, spec)
        assert timesync.status().synchronized is expected, spec
        assert timesync.ingest_flag() == (1 if expected else 0), spec
    monkeypatch.setenv(timesync.ENV, f"file:{flag}")
    flag.write_text("yes\n")
    assert timesync.status().synchronized is True  # read at every ask: tests flip it
    monkeypatch.setenv(timesync.ENV, "adjtimex")
    assert timesync.status().synchronized == timesync.from_adjtimex().synchronized


def _text(result) -> str:
    return result.stdout.decode() if isinstance(result.stdout, bytes) else result.stdout


async def test_marks_through_the_real_cli_and_a_real_serve(box_dir, tmp_path, kluis, password_file, serve):
    data = box_dir[0]
    add_role_users(data, "fg", "au")
    keeper = ["--password-file", password_file]  # the keeper 'admin' imports
    clips = [make_mp4(tmp_path / f"clip{i}.mp4", 1, START, f"CAM00{i}") for i in (1, 2)]
    unsynced = _text(kluis("import", "--data", data, clips[0], "--camera", "CAM001", "--officer", "J. Jansen",
                           "--start", "2026-11-20T14:05:00", *keeper, env={timesync.ENV: "no"})).strip()
    synced = _text(kluis("import", "--data", data, clips[1], "--camera", "CAM002", "--officer", "J. Jansen",
                         "--start", "2026-11-20T15:05:00", *keeper, env={timesync.ENV: "yes"})).strip()
    listed = json.loads(_text(kluis("list", "--data", data, "--json", "--user", "fg", "--password-file",
                                    password_file)))
    assert {r["id"]: r["clock_synced"] for r in listed} == {unsynced: 0, synced: 1}
    status = json.loads(_text(kluis("status", "--data", data, "--json", env={timesync.ENV: "no"})))
    assert status["clock"]["synchronized"] is False and status["clock"]["source"] == "env"
    assert status["recordings_clock_unsynced"] == 1
    text = _text(kluis("status", "--data", data, env={timesync.ENV: "yes"}))
    assert "clock: synchronised (env" in text and "1 recording(s) were stored while the clock was not" in text

    # A recording catalogued before the column existed stays unknown (NULL), not "synchronised".
    with Box(data) as box:
        ingests = {row["recording_id"]: json.loads(row["details"])["clock_synced"] for row in box.catalog.db.query(
            "SELECT recording_id, details FROM audit_log WHERE action = 'ingest'")}
        assert ingests == {unsynced: 0, synced: 1}  # also in the hash-chained audit log
        box.catalog.db.execute("UPDATE recordings SET clock_synced = NULL WHERE id = ?", [synced])

    flag = tmp_path / "synced"
    flag.write_text("no\n")
    from tests.dock.dock_helpers import configure_box  # discovery on loopback only

    configure_box(data, ["127.0.0.1"])
    box = serve(data, env={timesync.ENV: f"file:{flag}"})
    box.find(r"Kluis is serving")
    async with client() as browser:
        async def login(name: str) -> None:
            browser.cookie_jar.clear()
            page = await (await browser.get(box.url + "/login")).text()
            response = await browser.post(box.url + "/login", data={
                "csrf": csrf_of(page), "username": name, "password": PASSWORD}, allow_redirects=False)
            assert response.status == 303, await response.text()

        await login("fg")  # the privacy officer: clock and data at rest
        overview = await (await browser.get(box.url + "/")).text()
        assert "De klok is NIET gesynchroniseerd (file)" in overview
        assert "1 opname is opgeslagen terwijl de klok niet gesynchroniseerd was" in overview
        assert ("metagegevens (de catalogus: namen, tijden, het auditlogboek) zijn op deze kluis niet "
                "versleuteld opgeslagen" in overview) or "De gegevenspartitie is versleuteld" in overview
        page = await (await browser.get(f"{box.url}/opnames/{unsynced}")).text()
        assert "NIET gesynchroniseerd: voor de tijden van deze opname" in page
        page = await (await browser.get(f"{box.url}/opnames/{synced}")).text()
        assert "niet vastgelegd (opgeslagen voordat Kluis dit bijhield)" in page
        listing = await (await browser.get(f"{box.url}/opnames")).text()
        assert listing.count("(klok niet gesynchroniseerd)") == 1

        flag.write_text("yes\n")
        await login("au")  # the auditor: the clock, but the data at rest is not theirs to answer for
        overview = await (await browser.get(box.url + "/")).text()
        assert "De klok is gesynchroniseerd (file)" in overview
        assert 'id="at-rest-state"' not in overview

        await login("admin")  # the keeper sees both on the settings page too
        settings = await (await browser.get(box.url + "/instellingen")).text()
        assert "De klok is gesynchroniseerd (file)" in settings and 'id="at-rest-state"' in settings
    assert box.stop() == 0


def test_a_camera_offload_is_marked_too(box, monkeypatch):
    """The dock's offload catalogues through recordings.catalog_stored, as import does: a container the
    vault holds, catalogued as source 'dock' while the clock is not synchronised, is marked."""
    import io

    from appliance import recordings
    from appliance.container import Encryptor

    monkeypatch.setenv(timesync.ENV, "no")
    encryptor = Encryptor(box.recipients(), chunk_size=65536)
    writer = box.vault.writer()
    writer.write(encryptor.header.raw)
    for sealed in encryptor.chunks(io.BytesIO(b"camera footage" * 1000)):
        writer.write(sealed)
    stored = writer.commit()
    rid = recordings.catalog_stored(box, stored, {
        "camera_serial": "CAM009", "officer": None, "start_time": "2026-11-20T13:05:00.000Z",
        "end_time": "2026-11-20T13:06:00.000Z", "source": "dock", "source_ref": "REC-1"})
    assert box.catalog.get_recording(rid)["clock_synced"] == 0
