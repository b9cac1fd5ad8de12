"""The appliance's firewall (image/rootfs/etc/nftables.conf): valid for nft, and, loaded into a network
namespace of its own, it lets in only HTTPS (443/tcp, and 8444/tcp for the Axis content destination) and
mDNS (5353/udp) from the LAN. Checked twice: by reading the loaded ruleset (every accept rule accounted
for) and with real packets from a second namespace (443, 8444 and 5353 get through; 22, 8443 and another
UDP port do not). The SSH switch's rule file
opens 22/tcp and nothing else."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

IMAGE = Path(__file__).resolve().parents[2] / "image"
RULESET = IMAGE / "rootfs/etc/nftables.conf"
SSH_SCRIPT = IMAGE / "rootfs/usr/local/sbin/kluis-ssh"

needs_nft = pytest.mark.skipif(shutil.which("nft") is None, reason="nft not installed (make debs: nftables)")
needs_netns = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None,
                                 reason="network namespaces need root and iproute2")


def ruleset_with(tmp_path: Path, extra_rules: str | None) -> Path:
    """The ruleset with its switch directory replaced by a file of our own (empty: SSH off)."""
    switches = tmp_path / "switches.nft"
    switches.write_text(extra_rules or "")
    path = tmp_path / "nftables.conf"
    path.write_text(RULESET.read_text().replace('"/etc/nftables.d/*.nft"', f'"{switches}"'))
    return path


def ssh_rules() -> str:
    """The rules `kluis-ssh on` writes (taken from the script itself)."""
    text = SSH_SCRIPT.read_text()
    return "\n".join(line for line in ("ip saddr @lan4 tcp dport 22 accept", "ip6 saddr @lan6 tcp dport 22 accept")
                     if f"'{line}'" in text) + "\n"


@needs_nft
def test_ruleset_is_valid_nft():
    result = subprocess.run(["nft", "-c", "-f", str(RULESET)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@needs_nft
def test_nft_check_would_notice_a_typo(tmp_path):
    bad = tmp_path / "bad.conf"
    bad.write_text(RULESET.read_text().replace("tcp dport 443 accept", "tcp dport 443 acept", 1))
    assert subprocess.run(["nft", "-c", "-f", str(bad)], capture_output=True).returncode != 0


class Namespaces:
    """`box` (the ruleset loaded) and `lan` joined by a veth pair, 10.79.x.1 (box) and 10.79.x.2 (lan)."""

    def __init__(self):
        tag = secrets.token_hex(3)
        self.box, self.lan = f"kluis-fw-b-{tag}", f"kluis-fw-l-{tag}"
        net = int(tag[:2], 16) % 250 + 1
        self.box_ip, self.lan_ip = f"10.79.{net}.1", f"10.79.{net}.2"
        self.veth = (f"fb{tag}", f"fl{tag}")

    def run(self, ns: str, *cmd: str, **kw) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "netns", "exec", ns, *cmd], capture_output=True, text=True, **kw)

    def __enter__(self):
        def ip(*args):
            subprocess.run(["ip", *args], check=True, capture_output=True)
        try:
            ip("netns", "add", self.box)
            ip("netns", "add", self.lan)
            ip("link", "add", self.veth[0], "type", "veth", "peer", "name", self.veth[1])
            for ns, dev, addr in ((self.box, self.veth[0], self.box_ip), (self.lan, self.veth[1], self.lan_ip)):
                ip("link", "set", dev, "netns", ns)
                ip("-n", ns, "link", "set", "lo", "up")
                ip("-n", ns, "addr", "add", f"{addr}/24", "dev", dev)
                ip("-n", ns, "link", "set", dev, "up")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        for ns in (self.box, self.lan):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def load(ns: Namespaces, ruleset: Path) -> dict:
    result = ns.run(ns.box, "nft", "-f", str(ruleset))
    assert result.returncode == 0, result.stderr
    listed = ns.run(ns.box, "nft", "-j", "list", "ruleset")
    assert listed.returncode == 0, listed.stderr
    return json.loads(listed.stdout)


def input_accepts(ruleset: dict) -> tuple[str, list[dict]]:
    """The input chain's policy and its accept rules, each as a summary of what it matches."""
    items = ruleset["nftables"]
    chains = [i["chain"] for i in items if "chain" in i and i["chain"].get("hook") == "input"]
    assert len(chains) == 1, chains
    chain = chains[0]
    accepts = []
    for item in items:
        rule = item.get("rule")
        if not rule or rule["chain"] != chain["name"] or rule["table"] != chain["table"]:
            continue
        if not any("accept" in e for e in rule["expr"]):
            continue
        summary: dict = {"ports": set(), "proto": None, "sport": None, "saddr": None, "other": []}
        for e in rule["expr"]:
            match = e.get("match")
            if not match:
                continue
            left, right = match["left"], match["right"]
            field = left.get("payload", {}).get("field") if isinstance(left, dict) else None
            proto = left.get("payload", {}).get("protocol") if isinstance(left, dict) else None
            if field == "dport":
                summary["proto"] = proto
                summary["ports"] |= set(right["set"]) if isinstance(right, dict) and "set" in right else {right}
            elif field == "sport":
                summary["sport"] = right
            elif field == "saddr":
                summary["saddr"] = right
            elif isinstance(left, dict) and "meta" in left and left["meta"]["key"] in ("iif", "iifname"):
                summary["other"].append(f"iif {right}")
            elif isinstance(left, dict) and "ct" in left:
                summary["other"].append(f"ct {left['ct']['key']} {right}")
            elif proto == "icmpv6" and field == "type":
                summary["other"].append("icmpv6 " + ",".join(sorted(right["set"])))
        accepts.append(summary)
    return chain["policy"], accepts


def inbound_services(accepts: list[dict]) -> set[tuple[str, int]]:
    """(protocol, port) pairs open to new inbound connections: everything but loopback, replies (ct state),
    DHCP replies (from server port 67/547) and IPv6 neighbour discovery."""
    open_ports = set()
    for a in accepts:
        if a["other"] and not a["ports"]:
            assert all(o in ("iif lo", "ct state ['established', 'related']") or o.startswith("icmpv6 nd-")
                       or o.startswith("icmpv6 ") and all(t.startswith("nd-") for t in o[7:].split(","))
                       for o in a["other"]), a
            continue
        assert a["ports"], f"an accept rule that matches no port: {a}"
        if a["sport"] in (67, 547) and a["ports"] <= {68, 546} and a["proto"] == "udp":
            continue  # DHCP servers' replies to the box's own requests
        assert a["saddr"] in ("@lan4", "@lan6"), f"a service open beyond the LAN: {a}"
        open_ports |= {(a["proto"], p) for p in a["ports"]}
    return open_ports


def listen_and_probe(ns: Namespaces, tcp_ports, udp_ports) -> dict:
    """Listeners in the box namespace; the lan namespace connects / sends to each; what got through."""
    server = subprocess.Popen(["ip", "netns", "exec", ns.box, sys.executable, "-c", LISTENER,
                               json.dumps([ns.box_ip, list(tcp_ports), list(udp_ports)])],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout.readline().strip() == "listening"
        probe = ns.run(ns.lan, sys.executable, "-c", PROBE, json.dumps([ns.box_ip, list(tcp_ports), list(udp_ports)]),
                       timeout=60)
        assert probe.returncode == 0, probe.stderr
        reached_tcp = json.loads(probe.stdout)
    finally:
        server.terminate()
    received_udp = json.loads(server.communicate(timeout=10)[0] or "[]")
    return {"tcp": set(reached_tcp), "udp": set(received_udp)}


LISTENER = r"""
import json, select, socket, sys
addr, tcp, udp = json.loads(sys.argv[1])
socks = []
for p in tcp:
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((addr, p)); s.listen(); socks.append(s)
udps = {}
for p in udp:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", p)); udps[s] = p
print("listening", flush=True)
got = []
import signal
def done(*_):
    print(json.dumps(sorted(set(got))), flush=True); sys.exit(0)
signal.signal(signal.SIGTERM, done)
while True:
    ready, _, _ = select.select(socks + list(udps), [], [], 30)
    for s in ready:
        if s in udps:
            s.recvfrom(100); got.append(udps[s])
        else:
            c, _ = s.accept(); c.close()
"""

PROBE = r"""
import json, socket, sys, time
addr, tcp, udp = json.loads(sys.argv[1])
for p in udp:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(b"probe", (addr, p))
reached = []
for p in tcp:
    try:
        socket.create_connection((addr, p), timeout=1.0).close(); reached.append(p)
    except OSError:
        pass
time.sleep(0.3)
print(json.dumps(reached))
"""


@needs_nft
@needs_netns
def test_only_https_and_mdns_open_inbound(tmp_path):
    with Namespaces() as ns:
        policy, accepts = input_accepts(load(ns, ruleset_with(tmp_path, None)))
        assert policy == "drop"
        assert inbound_services(accepts) == {("tcp", 443), ("tcp", 8444), ("udp", 5353)}
        # Real packets from the LAN side: only 443/tcp, 8444/tcp (Axis) and 5353/udp reach a listener.
        got = listen_and_probe(ns, tcp_ports=[443, 22, 8443, 8444, 80], udp_ports=[5353, 9999])
        assert got == {"tcp": {443, 8444}, "udp": {5353}}
        forward = [i["chain"] for i in load(ns, ruleset_with(tmp_path, None))["nftables"]
                   if "chain" in i and i["chain"].get("hook") == "forward"]
        assert [c["policy"] for c in forward] == ["drop"]


@needs_nft
@needs_netns
def test_ssh_switch_opens_port_22_only(tmp_path):
    rules = ssh_rules()
    assert rules.count("dport 22") == 2  # the script writes both rules (IPv4 and IPv6)
    with Namespaces() as ns:
        _, accepts = input_accepts(load(ns, ruleset_with(tmp_path, rules)))
        assert inbound_services(accepts) == {("tcp", 443), ("tcp", 8444), ("udp", 5353), ("tcp", 22)}
        got = listen_and_probe(ns, tcp_ports=[443, 22, 8443], udp_ports=[5353])
        assert got == {"tcp": {443, 22}, "udp": {5353}}
