"""Claims to be a paired camera at an address other than its proven one, and what the box does about them.

A paired camera's row holds its proven address: where its paired key last signed a fresh challenge (the
manifest the camera signs for the nonce of the box's signed request, protocol.verify_manifest). An mDNS
advert is unauthenticated (anyone on the LAN can copy a camera's serial and public key fingerprint into
one), so an advert from another address is only a claim. The offload manager (offload.py) proves a claim
by that challenge before it switches the row to the new address (a camera that got a new DHCP lease) and
keeps offloading at the proven address meanwhile. A claim that fails the challenge is an impostor: one
alert per episode (episodes.py), and the claim is not tried again for CHALLENGE_RETRY_S.

The address the camera leaves is kept as a claim too: should the new address stop answering, the probe
tries the old one again before it gives the camera up.

Pure bookkeeping: no network here (offload.py talks to the camera), so the manager stays one module.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from ..box import Box
from . import devices
from .devices import Advert
from .episodes import Episodes

CHALLENGE_RETRY_S = 30.0  # a claim that failed the challenge is not tried again sooner (adverts repeat)
CLAIM_KEEP_S = 3600.0  # a claim not advertised again for this long is forgotten


def impostor_episode(serial: str, address: str) -> tuple:
    """The episode of a device on host `address` that is not the paired camera `serial` but answers as it
    (by host, not port: an impostor hopping ports is one episode)."""
    return ("impostor", serial, address)


@dataclass
class Claim:
    serial: str
    address: str
    port: int
    advert: Advert | None  # None: a former proven address
    seen: float  # monotonic: last advertised, or last answered a challenge
    not_before: float = 0.0  # monotonic: not challenged again before
    impostor: str | None = None  # why its last challenge failed (None: not failed, or only unreachable)
    since: float | None = None  # monotonic: first failed challenge of this episode


class Claims:
    def __init__(self, box: Box, retry_s: float, clock: Callable[[], float] = time.monotonic,
                 alerts: Episodes | None = None):
        self.box = box
        self.retry_s = retry_s  # an unreachable claim is tried again after this long
        self.clock = clock
        # shared with the manager: a device that answered at the camera's proven address with another key
        # (key_mismatch) and is then challenged there as a claim is one episode, one alert
        self.alerts = alerts if alerts is not None else Episodes(clock=clock)
        self._claims: dict[tuple[str, str, int], Claim] = {}

    def add(self, serial: str, address: str, port: int, advert: Advert | None = None) -> Claim:
        key = (serial, address, port)
        claim = self._claims.get(key)
        if claim is None:
            claim = self._claims[key] = Claim(serial, address, port, advert, seen=self.clock())
        else:
            claim.seen = self.clock()
            claim.advert = advert or claim.advert
        return claim

    def due(self, serial: str) -> list[Claim]:
        """The claims for `serial` that may be challenged now."""
        now = self.clock()
        for key in [k for k, c in self._claims.items() if now - c.seen > CLAIM_KEEP_S]:
            del self._claims[key]
        return [c for c in self._claims.values() if c.serial == serial and c.not_before <= now]

    def drop(self, claim: Claim) -> None:
        self._claims.pop((claim.serial, claim.address, claim.port), None)

    def unreachable(self, claim: Claim) -> None:
        """Nothing answers there (now): an impostor's episode is over when it left."""
        claim.not_before = self.clock() + self.retry_s
        claim.impostor = claim.since = None

    def failed(self, claim: Claim, why: str, proven: str) -> None:
        """The device at the claim's address cannot prove the paired key: an impostor. Alerted once per
        episode (a log line, a device_alerts row, an audit entry); the paired camera's row is not touched."""
        now = self.clock()
        claim.not_before = now + max(CHALLENGE_RETRY_S, self.retry_s)
        claim.seen = now  # it is still there: keep watching it
        claim.impostor = why
        claim.since = claim.since or now
        # keyed by host, not port: an impostor that hops ports is still one episode
        if self.alerts.seen(impostor_episode(claim.serial, claim.address)):
            devices.alert(self.box, "spoofed_serial",
                          f"{claim.address}:{claim.port} claims to be paired camera {claim.serial} but {why}; "
                          f"the camera stays at its proven address {proven}: refused",
                          serial=claim.serial, address=claim.address)

    def proven(self, claim: Claim, old_address: str | None, old_port: int | None) -> None:
        """The claim proved the paired key: the camera moved there. Its old address becomes a claim."""
        self.drop(claim)  # an impostor's episode on the same host is left to expire: not ended here
        devices.moved(self.box, claim.serial, claim.address, claim.port, claim.advert)
        if old_address and old_port:
            self.add(claim.serial, old_address, old_port)

    def impostors(self, serial: str) -> list[dict]:
        """The claims for `serial` whose last challenge failed (an impostor that still answers: each is
        challenged again every CHALLENGE_RETRY_S), for the cameras page."""
        return [{"address": f"{c.address}:{c.port}", "why": c.impostor}
                for c in self._claims.values() if c.serial == serial and c.impostor]
