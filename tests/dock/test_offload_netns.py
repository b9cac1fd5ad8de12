"""Across hosts: the box and the cameras in separate network namespaces joined by a veth pair. Discovery
over real multicast, on an address the box got after it started (interfaces are followed); the link cut in the middle of a transfer and restored: the offload resumes from the
box's last durable byte and completes, and no byte range before that resume point is fetched twice.
Also on loopback with the simulator's own cut knob."""

from __future__ import annotations

import re
import secrets
import time
from pathlib import Path

import pytest

from dock_helpers import Camera, box_devices, box_recordings, configure_box, pair, run_kluis, wait_for
from netns import TwoHosts, netns_unavailable

RUN = secrets.token_hex(2).upper()


@pytest.fixture
def hosts():
    why = netns_unavailable()
    if why:
        pytest.skip(why)
    with TwoHosts() as two:
        yield two


def part_size(data: Path) -> int:
    return sum(p.stat().st_size for p in (data / "tmp").glob("*.part"))


@pytest.mark.slow
def test_across_namespaces_link_cut_mid_transfer(box_dir, hosts, serve, tmp_path, password_file):
    data = box_dir[0]
    configure_box(data, [], read_timeout_s=1.5)  # [] = every interface with an IPv4 address, followed
    hosts.box_address(present=False)  # the box starts before its LAN address is there
    in_cams, in_box = hosts.exec_prefix(hosts.cam_ns), hosts.exec_prefix(hosts.box_ns)
    # 3 MB/s: a ~9 MB recording takes ~3 s, time enough to pull the cable in the middle.
    cam = Camera(tmp_path / "cam", f"NS-{RUN}", "--rate", "3000000", prefix=in_cams, address=hosts.cam_ip)
    try:
        began = time.monotonic()
        server = serve(data, prefix=in_box)
        server.find(r"mDNS: browsing for _bodycam._tcp.local. on 127.0.0.1$")
        hosts.box_address(present=True)
        server.find(rf"mDNS: interfaces changed \(127.0.0.1 -> {re.escape(hosts.box_ip)}, 127.0.0.1\)", 20)
        row = wait_for(lambda: [d for d in box_devices(data) if d["serial"] == cam.serial], 20,
                       what="discovery over multicast across the veth")[0]
        discovered_s = time.monotonic() - began
        assert row["address"] == hosts.cam_ip and row["port"] == cam.port
        pair(data, cam, "--pre-record", "0", "--post-record", "0", prefix=in_box)
        entry = cam.record(0.5, filler_mb=9)

        wait_for(lambda: part_size(data) > 2 * 2**20, 20, what="transfer under way")
        hosts.link(up=False)
        server.find(r"interrupted at byte \d+", 20)
        # No goodbye reached the box, and mDNS would keep the camera for ~19 minutes: the box's own probe
        # notices that it is gone.
        wait_for(lambda: not [d for d in box_devices(data) if d["serial"] == cam.serial][0]["online"], 20,
                 what="the camera shown offline")
        assert cam.entries() and len(box_recordings(data)) == 0
        hosts.link(up=True)
        wait_for(lambda: cam.entries() == [] and len(box_recordings(data)) == 1, 40,
                 what="offload resumed and completed after the link came back")

        resumed = [int(m.group(1)) for line in server.lines
                   if (m := re.search(rf"resuming recording {entry['id']} at byte (\d+)", line))]
        served = served_requests(cam, entry)
        assert resumed and resumed[0] > 2 * 2**20, server.output()
        assert served[0]["start"] == 0 and served[-1]["complete"]
        starts = [s["start"] for s in served]
        # Every request starts where the box's durable bytes ended (the logged resume point), never
        # before it, and each starts later than the one before: nothing behind a resume point twice.
        assert starts[1:] == resumed[: len(starts) - 1], (starts, resumed)
        assert starts == sorted(set(starts))
        assert all(s["start"] + s["sent"] >= nxt for s, nxt in zip(served, starts[1:]))
        assert box_recordings(data)[0]["sha256"] == entry["sha256"]
        server.stop()
        result = run_kluis("verify", "--data", data, "--deep", "--password-file", password_file, check=False)
        assert result.returncode == 0, result.stderr.decode()
        print(f"discovery across namespaces: {discovered_s:.2f} s after the box started")
    finally:
        cam.stop()


def served_requests(cam, entry: dict) -> list[dict]:
    """The camera's requests for `entry`, once the last is marked complete. The simulator marks it after
    its last write and its rate pacing: the box may have committed and deleted the recording by then."""
    def served() -> list[dict]:
        return [s for s in cam.stats()["served"] if s["id"] == entry["id"]]

    wait_for(lambda: any(s["complete"] for s in served()), 10, what="the camera's record of the last request")
    return served()


def test_cut_knob_on_loopback_resumes_from_the_durable_byte(box_dir, cameras, serve):
    """The simulator cuts the connection twice after 1.5 MB. Each new request starts exactly at the byte
    the box had made durable (its logged resume point), later than the one before; what the camera sent
    but the box had not yet taken from the socket when it broke is fetched again, nothing before it."""
    data = box_dir[0]
    configure_box(data, ["127.0.0.1"])
    cam = cameras(f"CUT-{RUN}", "--cut-after", "1500000", "--cut-count", "2")
    server = serve(data)
    pair(data, cam, "--pre-record", "0", "--post-record", "0")
    entry = cam.record(0.5, filler_mb=4)
    wait_for(lambda: cam.entries() == [] and len(box_recordings(data)) == 1, 30, what="offload after cuts")
    served = served_requests(cam, entry)
    assert len(served) == 3 and served[-1]["complete"] and [s["sent"] for s in served[:2]] == [1500000] * 2
    starts = [s["start"] for s in served]
    resumed = [int(m.group(1)) for line in server.lines
               if (m := re.search(rf"resuming recording {entry['id']} at byte (\d+)", line))]
    assert starts[1:] == resumed
    assert 0 == starts[0] < 2**20 <= starts[1] <= 1500000 < starts[2] <= 3000000
    assert starts[0] + served[0]["sent"] >= starts[1] and starts[1] + served[1]["sent"] >= starts[2]
    assert box_recordings(data)[0]["sha256"] == entry["sha256"]
