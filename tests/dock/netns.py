"""Two "hosts" on one machine: network namespaces joined by a veth pair (iproute2), for tests that need
real multicast between a box and cameras and a link that can be cut. Needs root (CI runs as root)."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess


def netns_unavailable() -> str | None:
    """Why namespaces cannot be used here, or None."""
    if os.geteuid() != 0:
        return "network namespaces need root (CI runs the suite as root)"
    if shutil.which("ip") is None:
        return "iproute2 (`ip`) is not installed (make debs)"
    return None


def ip(*args: str, ns: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    cmd = ["ip", *(["-n", ns] if ns else []), *args]
    return subprocess.run(cmd, check=check, capture_output=True, text=True)


class TwoHosts:
    """Namespaces `box` and `cams`, veth `vb` <-> `vc`, 10.77.x.1 and 10.77.x.2/24, with a multicast route
    on each side (mDNS needs one: a namespace has no default route)."""

    def __init__(self):
        tag = secrets.token_hex(3)
        self.box_ns, self.cam_ns = f"kluis-b-{tag}", f"kluis-c-{tag}"
        self.box_if, self.cam_if = f"vb{tag}", f"vc{tag}"
        subnet = int(tag[:2], 16) % 250 + 1
        self.box_ip, self.cam_ip = f"10.77.{subnet}.1", f"10.77.{subnet}.2"

    def __enter__(self) -> TwoHosts:
        try:
            ip("netns", "add", self.box_ns)
            ip("netns", "add", self.cam_ns)
            ip("link", "add", self.box_if, "type", "veth", "peer", "name", self.cam_if)
            ip("link", "set", self.box_if, "netns", self.box_ns)
            ip("link", "set", self.cam_if, "netns", self.cam_ns)
            for ns, ifname, addr in ((self.box_ns, self.box_if, self.box_ip), (self.cam_ns, self.cam_if, self.cam_ip)):
                ip("link", "set", "lo", "up", ns=ns)
                ip("addr", "add", f"{addr}/24", "dev", ifname, ns=ns)
                ip("link", "set", ifname, "up", "multicast", "on", ns=ns)
                ip("route", "add", "224.0.0.0/4", "dev", ifname, ns=ns)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        for ns in (self.box_ns, self.cam_ns):
            ip("netns", "del", ns, check=False)  # deletes the veth pair with it

    def exec_prefix(self, ns: str) -> list[str]:
        return ["ip", "netns", "exec", ns]

    def box_address(self, present: bool) -> None:
        """Take the box's address away, or give it back (as DHCP would)."""
        ip("addr", "add" if present else "del", f"{self.box_ip}/24", "dev", self.box_if, ns=self.box_ns)

    def link(self, up: bool) -> None:
        """Cut (or restore) the cable: the camera side's interface goes down."""
        ip("link", "set", self.cam_if, "up" if up else "down", ns=self.cam_ns)
        if up:  # a link going down drops its routes: put the multicast route back
            ip("route", "replace", "224.0.0.0/4", "dev", self.cam_if, ns=self.cam_ns)
