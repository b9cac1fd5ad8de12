"""`kluis serve` stopped by SIGTERM while a camera's recording is being offloaded (the rest of issue 19's
defect 4, on the box's side): the real process ends at once, and at its next start the box resumes the
download where it stopped and stores the recording exactly once."""

from __future__ import annotations

import secrets
import signal
import time

from dock_helpers import box_recordings, configure_box, pair, wait_for

RUN = secrets.token_hex(2).upper()


def test_sigterm_mid_offload_stops_at_once_and_resumes(box_dir, cameras, serve):
    data = box_dir[0]
    configure_box(data, ["127.0.0.1"])
    cam = cameras(f"STOP-{RUN}", "--rate", "1000000")  # 1 MB/s: a 6 MB recording takes about 6 s
    server = serve(data)
    pair(data, cam, "--pre-record", "0", "--post-record", "0")
    made = cam.record(1, filler_mb=6)["id"]
    wait_for(lambda: any(part.stat().st_size > 1_000_000 for part in data.rglob("*.part")), 30,
             what="the offload to get going")
    started = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    code = server.proc.wait(30)  # a hang guard only: the time is printed
    took = time.monotonic() - started
    print(f"kluis serve stopped {took:.2f} s after SIGTERM with an offload open")
    assert code == 0, server.output()
    assert not box_recordings(data) and [e["id"] for e in cam.entries()] == [made]
    assert not [line for line in server.lines if "Traceback" in line or " ERROR " in line], server.output()
    assert took < 10
    again = serve(data)
    wait_for(lambda: len(box_recordings(data)) == 1 and not cam.entries(), 60, what="the offload to finish")
    assert [r["source_ref"] for r in box_recordings(data)] == [made]
    assert any("resuming recording" in line for line in again.lines), again.output()


async def test_sigterm_with_a_slow_web_range_read_open_stops_at_once(box_dir, serve, tmp_path):
    """A web player's range read the browser reads slowly: the box's web UI no longer waits aiohttp's
    default 60 s for it to end; the player asks again (a range) once the box is back."""
    import asyncio
    import re
    import ssl
    from datetime import datetime, timezone

    import aiohttp

    from appliance import recordings
    from appliance.box import Box
    from tests.conftest import PASSWORD, add_role_users
    from tests.web_helpers import csrf_of

    data = box_dir[0]
    add_role_users(data, "fg")
    clip = tmp_path / "clip.bin"
    clip.write_bytes(secrets.token_bytes(32 * 1024 * 1024))
    start = datetime(2026, 11, 20, 13, 5, tzinfo=timezone.utc)
    with Box(data) as box:
        rid = recordings.import_file(box, clip, camera="CAM001", officer="J. Jansen", start=start,
                                     end=start.replace(minute=7), actor="admin").recording_id
    server = serve(data)
    address = re.search(r"web UI: listening on (\S+)", "\n".join(server.lines)).group(1).rstrip(",")
    base = f"https://{address}"
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context),
                                     cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        token = csrf_of(await (await http.get(f"{base}/login")).text())
        await http.post(f"{base}/login", data={"username": "fg", "password": PASSWORD, "csrf": token})
        page = await (await http.get(f"{base}/opnames/{rid}")).text()
        answer = await http.post(f"{base}/opnames/{rid}/bekijken", allow_redirects=False,
                                 data={"purpose": "complaint", "case_ref": "K-1", "csrf": csrf_of(page)})
        grant = re.search(r"bekijk=([\w-]+)", answer.headers["Location"]).group(1)
        video = await http.get(f"{base}/opnames/{rid}/video/{grant}", headers={"Range": "bytes=0-"})
        assert video.status == 206
        await video.content.readexactly(256 * 1024)  # the browser reads a little, then waits
        started = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(server.proc.wait, 90)  # a hang guard only: the time is printed
        took = time.monotonic() - started
    print(f"kluis serve stopped {took:.2f} s after SIGTERM with a range read open")
    assert code == 0, server.output()
    assert not [line for line in server.lines if "Traceback" in line or " ERROR " in line], server.output()
    assert took < 10
