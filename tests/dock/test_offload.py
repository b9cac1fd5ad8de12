"""One box (`kluis serve`) and simulated cameras (`kluis camera-sim`) on this machine, over real sockets and
real mDNS on loopback: discovery, pairing, offload, verification, camera storage emptied."""

from __future__ import annotations

import json
import secrets
import socket
import time
from datetime import timedelta

from nacl.signing import SigningKey
from zeroconf import IPVersion, ServiceInfo, Zeroconf

from appliance.box import Box
from appliance.clock import from_iso
from appliance.dock import devices, protocol
from dock_helpers import (
    box_alerts, box_devices, box_recordings, configure_box, keeper, pair, run_kluis, wait_for,
)

OFFLOAD_LIMIT_S = 60  # stated bound: seven recordings on three paired cameras, from recorded to emptied
# mDNS on loopback is shared by every process on the machine (other test runs too): unique serials.
RUN = secrets.token_hex(2).upper()
CAM1, CAM2, CAM3, GOOD, LONER, BADSIG, CORRUPT = (
    f"{name}-{RUN}" for name in ("CAM1", "CAM2", "CAM3", "GOOD", "LONER", "BADSIG", "CORRUPT"))


def test_three_cameras_discovered_paired_offloaded_and_emptied(box_dir, cameras, serve, password_file):
    data = box_dir[0]
    configure_box(data, ["127.0.0.1"])
    cams = [cameras(CAM1), cameras(CAM2, "--clock-drift", "-90"), cameras(CAM3)]
    cams[0].record(1)  # made before pairing: sealed to the camera's holding key, re-sealed at pairing
    server = serve(data)

    wait_for(lambda: {d["serial"] for d in box_devices(data)} >= {CAM1, CAM2, CAM3}, 20,
             what="three cameras discovered")
    listed = {d["serial"]: d for d in box_devices(data)}
    assert not any(d["paired"] for d in listed.values())
    assert all(d["address"] == "127.0.0.1" and d["port"] for d in listed.values())
    assert all(c.entries() == [] for c in cams[1:])  # unpaired: listed only, nothing fetched
    assert len(cams[0].entries()) == 1

    expected = {e["id"]: (cams[0], e) for e in cams[0].entries()}
    run_kluis("cameras", "assign", "--data", data, CAM2, "--pooled", *keeper(data))
    run_kluis("cameras", "shift", "--data", data, CAM2, "--officer", "P. Bakker", *keeper(data),
              "--from", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600)))
    out = pair(data, cams[0], "--officer", "J. Jansen")
    assert f"Paired {CAM1}" in out
    pair(data, cams[1])  # pooled: the officer comes from the shift
    pair(data, cams[2], "--officer", "A. de Vries")
    for cam in cams:
        for seconds in (1, 2):
            entry = cam.record(seconds)
            expected[entry["id"]] = (cam, entry)
    assert len(expected) == 7

    wait_for(lambda: all(c.entries() == [] for c in cams) and len(box_recordings(data)) == 7,
             OFFLOAD_LIMIT_S, what="every recording offloaded and deleted on its camera")

    rows = {r["source_ref"]: r for r in box_recordings(data)}
    assert set(rows) == set(expected)
    with Box(data) as box:
        for rec_id, (cam, entry) in expected.items():
            row = rows[rec_id]
            assert row["camera_serial"] == cam.serial and row["source"] == "dock"
            if entry["start"] > listed[CAM1]["first_seen"]:  # not re-sealed at pairing: same bytes
                assert row["sha256"] == entry["sha256"] and row["blob_size"] == entry["size"]
            full = box.catalog.get_recording(row["id"])
            assert full["camera_start_time"] == entry["start"] and full["camera_end_time"] == entry["end"]
            # Times corrected by the offset measured at this dock (camera CAM002 runs 90 s behind).
            offset = full["clock_offset_s"]
            assert abs(offset - (90 if cam.serial == CAM2 else 0)) < 2, offset
            assert from_iso(full["start_time"]) == from_iso(entry["start"]) + timedelta(seconds=offset)
            assert full["officer"] == {CAM1: "J. Jansen", CAM2: "P. Bakker", CAM3: "A. de Vries"}[
                cam.serial]
        docks = [d["serial"] for d in box.catalog.db.query("SELECT serial FROM docks")]
        assert sorted(docks) == [CAM1, CAM2, CAM3]  # one dock each, however often the box probed since
        audit_actions = [r["action"] for r in box.catalog.db.query("SELECT action FROM audit_log")]
        assert audit_actions.count("ingest") == 7 and audit_actions.count("pair") == 3
    # Every chunk authentic, with the key (deep verify).
    result = run_kluis("verify", "--data", data, "--deep", "--password-file", password_file)
    assert result.returncode == 0
    ours = [a["message"] for a in box_alerts(data) if any(c.serial in a["message"] for c in cams)]
    assert ours == []
    # The camera confirmed every delete after the box had committed it: logged by the box.
    assert server.find(r"deleted on the camera \(signed confirmation")
    assert all(c.stats()["refused"] == {} for c in cams)

    # New settings reach the camera at its next dock (box-signed PUT settings, version 2).
    run_kluis("cameras", "assign", "--data", data, CAM1, "--pre-record", "10", *keeper(data))
    wait_for(lambda: cams[0]._call("GET", "/dock/v1/info")["settings_version"] == 2, 20, what="settings pushed")
    assert json.loads((cams[0].state / "pairing.json").read_text())["settings"]["pre_record_s"] == 10
    assert server.stop() == 0 and "stopped" in server.lines[-1]  # SIGTERM: a clean stop


def test_rogue_devices_refused_and_paired_cameras_still_served(box_dir, cameras, serve):
    """An unpaired camera, a bad manifest signature, a recording whose hash does not match, a spoofed
    serial with another key, bad TXT records: each refused with a log line and an alert, nothing stored
    from them, while the paired camera keeps being offloaded."""
    data = box_dir[0]
    configure_box(data, ["127.0.0.1"])
    good = cameras(GOOD)
    unpaired = cameras(LONER)
    badsig = cameras(BADSIG)
    corrupt = cameras(CORRUPT)
    server = serve(data)
    for cam in (good, badsig, corrupt):
        pair(data, cam)
    wrong = run_kluis("cameras", "pair", "--data", data, LONER, "1234-5678" if unpaired.code != "12345678"
                      else "87654321", *keeper(data), check=False)
    assert wrong.returncode == 1 and "code is wrong" in wrong.stderr.decode()
    assert "Traceback" not in wrong.stderr.decode()
    unpaired.record(1)
    badsig.faults(wrong_manifest_key=True)
    badsig.record(1)
    corrupt.faults(corrupt=True)
    corrupt.record(1)
    good.record(1)

    wait_for(lambda: good.entries() == [] and len(box_recordings(data)) == 1, 30, what="good camera offloaded")
    kinds = lambda: {a["kind"] for a in box_alerts(data)}
    wait_for(lambda: {"bad_manifest", "bad_recording", "wrong_code"} <= kinds(), 30, what="alerts for the rogues")
    server.find(rf"ALERT bad_manifest \[{BADSIG}\].*bad signature on the manifest")
    server.find(rf"ALERT bad_recording \[{CORRUPT}\].*hash mismatch")

    # A spoofed serial: another responder advertises GOOD with another key, from another port.
    impostor = Zeroconf(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only)
    try:
        props = protocol.build_txt(GOOD, "Kluis-Sim", "1.0.0", SigningKey.generate(), True)
        impostor.register_service(ServiceInfo(
            protocol.SERVICE_TYPE, f"IMPOSTOR.{protocol.SERVICE_TYPE}", port=good.port + 1, properties=props,
            addresses=[socket.inet_aton("127.0.0.1")], server="impostor.local."))
        server.find(rf"ALERT spoofed_serial \[{GOOD}\].*refused", 20)
    finally:
        impostor.close()
    # Bad TXT records: refused with a log line, the device not updated from them.
    unpaired.faults(bad_txt="oversized")
    server.find(rf"ALERT bad_advert.*{LONER}.*too large", 20)
    unpaired.faults(bad_txt="malformed")
    server.find(rf"ALERT bad_advert.*{LONER}.*(malformed|ASCII|paired)", 20)

    good.record(1)  # the paired camera is still served
    wait_for(lambda: good.entries() == [] and len(box_recordings(data)) == 2, 30, what="good camera again")
    rows = box_recordings(data)
    assert {r["camera_serial"] for r in rows} == {GOOD}
    assert len(unpaired.entries()) == 1 and len(badsig.entries()) == 1 and len(corrupt.entries()) == 1
    listed = {d["serial"]: d for d in box_devices(data)}
    assert listed[LONER]["paired"] == 0
    assert listed[GOOD]["port"] == good.port  # the spoof did not move the paired camera
    assert unpaired.stats()["served"] == []  # nothing fetched from an unpaired camera
    with Box(data) as box:
        assert not list(box.vault.tmp.glob("*"))  # nothing half-written left behind
        assert devices.get_device(box.catalog, GOOD)["fingerprint"] == listed[GOOD]["fingerprint"]


def test_unpair_forgets_the_key_on_both_sides(box_dir, cameras, serve):
    data = box_dir[0]
    configure_box(data, ["127.0.0.1"])
    cam = cameras(f"UNPAIR-{RUN}")
    serve(data)
    pair(data, cam)
    assert cam._call("GET", "/dock/v1/info")["paired"] is True
    run_kluis("cameras", "unpair", "--data", data, cam.serial, *keeper(data))
    info = cam._call("GET", "/dock/v1/info")
    assert info["paired"] is False and info["box_fp"] is None
    row = [d for d in box_devices(data) if d["serial"] == cam.serial][0]
    assert row["paired"] == 0 and row["public_key"] is None
    cam.record(1)  # no longer offloaded: the box holds no key for it
    time.sleep(2)
    assert len(cam.entries()) == 1 and box_recordings(data) == []
