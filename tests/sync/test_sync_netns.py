"""Box and archive in separate network namespaces joined by a veth pair (as root; CI runs as root):
`kluis archive serve` in one, `kluis sync run` in the other. Mid-upload the link goes down and comes back,
and later the archive is killed (SIGKILL) and restarted: the transfer resumes, one copy arrives with a
valid receipt, the unheld recording never leaves, and the bytes sent twice stay under two parts per
interruption."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from appliance import retention
from appliance.box import Box
from sync.archive.store import Archive
from sync.protocol import CHUNK_SIZE, verify_receipt
from sync_helpers import import_random, new_token

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("ip"), reason="needs root and iproute2")

KLUIS = [sys.executable, "-m", "appliance"]


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture
def namespaces():
    tag = f"{os.getpid() % 10000}{os.urandom(2).hex()}"
    box_ns, archive_ns = f"kb{tag}", f"ka{tag}"
    veth_b, veth_a = f"vb{tag}", f"va{tag}"
    try:
        ip("netns", "add", box_ns)
        ip("netns", "add", archive_ns)
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"cannot make network namespaces here: {exc.stderr.decode().strip()}")
    try:
        ip("link", "add", veth_b, "netns", box_ns, "type", "veth", "peer", "name", veth_a, "netns", archive_ns)
        ip("-n", box_ns, "addr", "add", "10.231.0.2/30", "dev", veth_b)
        ip("-n", archive_ns, "addr", "add", "10.231.0.1/30", "dev", veth_a)
        for ns, dev in ((box_ns, veth_b), (archive_ns, veth_a)):
            ip("-n", ns, "link", "set", dev, "up")
            ip("-n", ns, "link", "set", "lo", "up")
        yield {"box": box_ns, "archive": archive_ns, "box_dev": veth_b, "archive_ip": "10.231.0.1"}
    finally:
        for ns in (box_ns, archive_ns):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def in_ns(ns: str, *args) -> list[str]:
    return ["ip", "netns", "exec", ns, *KLUIS, *map(str, args)]


def start_archive(ns: dict, data, log) -> subprocess.Popen:
    proc = subprocess.Popen(in_ns(ns["archive"], "archive", "serve", "--data", data, "--listen",
                                  f"{ns['archive_ip']}:8443"), stdout=log, stderr=subprocess.STDOUT)
    for _ in range(200):
        probe = subprocess.run(["ip", "netns", "exec", ns["archive"], "ss", "-Hltn", "sport = :8443"],
                               capture_output=True, text=True)
        if "8443" in probe.stdout:
            return proc
        time.sleep(0.05)
    raise AssertionError("archive did not start in its namespace")


def test_held_recording_crosses_a_cut_link_and_an_archive_restart(namespaces, box_dir, archive_dir, tmp_path):
    ns = namespaces
    data, _ = box_dir
    log = open(tmp_path / "archive.log", "ab")
    archive = start_archive(ns, archive_dir, log)
    try:
        url = f"https://{ns['archive_ip']}:8443"
        subprocess.run(in_ns(ns["box"], "sync", "enroll", "--data", data, url, new_token(archive_dir)), check=True,
                       capture_output=True)
        with Box(data) as box:
            held, _ = import_random(box, tmp_path, 3 * CHUNK_SIZE)
            unheld, _ = import_random(box, tmp_path, 300_000)
            retention.add_hold(box, held, "police_report", "PV-NS-1", actor="admin")
            row = box.catalog.get_recording(held)
        # A chunk a second: about 3 s of upload, time enough for two interruptions.
        toml = data / "kluis.toml"
        toml.write_text(toml.read_text().replace("# bandwidth_kbps = 0", f"bandwidth_kbps = {CHUNK_SIZE // 1024}"))
        run = subprocess.Popen(in_ns(ns["box"], "sync", "run", "--data", data), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
        part_dir = archive_dir / "tmp"

        def committed() -> int:
            parts = list(part_dir.glob("*.part"))
            return parts[0].stat().st_size if parts else 0

        def wait_for(predicate, what: str, limit: float = 30) -> None:
            deadline = time.monotonic() + limit
            while not predicate():
                assert run.poll() is None, f"sync run ended early: {run.communicate()}"
                assert time.monotonic() < deadline, f"timed out waiting for {what}"
                time.sleep(0.05)

        wait_for(lambda: committed() >= CHUNK_SIZE // 2, "the upload to start")
        ip("-n", ns["box"], "link", "set", ns["box_dev"], "down")  # the office uplink drops...
        time.sleep(1.5)
        ip("-n", ns["box"], "link", "set", ns["box_dev"], "up")  # ...and comes back
        wait_for(lambda: committed() >= 2 * CHUNK_SIZE, "the upload to go on after the link came back")
        archive.send_signal(signal.SIGKILL)
        archive.wait(10)
        time.sleep(1)
        archive = start_archive(ns, archive_dir, log)
        out, err = run.communicate(timeout=120)
        assert run.returncode == 0, err.decode()
    finally:
        archive.terminate()
        archive.wait(10)
        log.close()

    assert f"sent {held}" in out.decode()
    with Archive(archive_dir) as arch:
        rows = arch.list_recordings()
        assert [r["recording_id"] for r in rows] == [held] and rows[0]["sha256"] == row["sha256"]
        stored = arch.find(held)
    assert [p.name for p in (archive_dir / "blobs").glob("*/*")] == [row["sha256"]]
    assert not list((archive_dir / "tmp").iterdir())
    with Box(data) as box:
        receipt = json.loads(box.catalog.db.execute("SELECT receipt FROM sync_receipts WHERE recording_id = ?",
                                                    [held]).fetchone()[0])
        assert verify_receipt(receipt, bytes.fromhex(json.loads(box.catalog.get_meta("sync_archive"))["signing_key"]))
        assert receipt == stored["receipt"]
        last = json.loads(box.catalog.get_meta("sync_last_pass"))
    resent = last["bytes_sent"] - row["blob_size"]
    print(f"netns: {resent} bytes re-sent over a link cut and an archive restart ({resent / CHUNK_SIZE:.2f} parts)")
    assert 0 <= resent < 2 * CHUNK_SIZE * 2
