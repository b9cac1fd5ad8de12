"""Finding cameras on the LAN: zeroconf (mDNS/DNS-SD) browsing for `_bodycam._tcp.local.` with the
asyncio API, on interfaces chosen explicitly.

Why explicit interfaces: zeroconf's default choice fails with ENODEV on a host without a default route
(a network namespace, an isolated camera LAN). The box listens on the interfaces named in the config
(`[dock] interfaces`, names or IPv4 addresses), by default on every interface with an IPv4 address, and
restarts zeroconf when that set changes (a cable plugged in, DHCP).

Why QM questions: on loopback the first unicast-reply (QU) query is lost; QM finds a camera in ~0.1 s.

mDNS only says a device is there; it is slow to say one left (python-zeroconf keeps a PTR at least
1125 s). So the service probes paired devices itself (offload.py); here a removal is taken as a hint.

mDNS is unauthenticated: anyone on the LAN may advertise a paired camera's serial and its (public) key
fingerprint, or send a goodbye in its name. So for a paired camera an advert or a goodbye changes nothing
here: an advert from elsewhere than the camera's proven address is handed to the offload manager, which
switches only when the paired key signs a fresh challenge there; a goodbye is left to the probe. A
paired serial advertised with another key is refused with an alert once per episode (episodes.py).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from typing import Callable

import ifaddr
from zeroconf import DNSQuestionType, IPVersion, ServiceStateChange
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from ..box import Box
from ..errors import KluisError
from . import devices, protocol
from .devices import Advert
from .episodes import EpisodeStore, Episodes

log = logging.getLogger("kluis.dock")

SERVICE_TYPE = protocol.SERVICE_TYPE
BAD_ADVERT_ALERTS = 20  # bad-advert alerts per host and episode (episodes.py), then a debug line only
MAX_REFUSED_NAMES = 1000  # refused mDNS names remembered (to alert once per name and reason)


def interface_addresses(wanted: list[str] | None = None) -> list[str]:
    """IPv4 addresses to run mDNS on: those of the named interfaces (or the addresses given), or of
    every interface that has one."""
    found: dict[str, list[str]] = {}
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            if isinstance(ip.ip, str):
                found.setdefault(adapter.nice_name, []).append(ip.ip)
    if not wanted:
        return sorted({a for addrs in found.values() for a in addrs})
    chosen = set()
    for item in wanted:
        try:
            ipaddress.IPv4Address(item)
            chosen.add(item)
        except ValueError:
            chosen.update(found.get(item, []))
    return sorted(chosen)


def parse_advert(name: str, info: AsyncServiceInfo) -> Advert:
    """Check an advertisement (protocol.parse_txt: sizes, forms); raises KluisError saying what is wrong."""
    txt = protocol.parse_txt(info.properties or {}, raw_size=len(info.text or b""))
    addresses = info.parsed_addresses(IPVersion.V4Only)
    if not addresses or not info.port:
        raise KluisError("no IPv4 address or port")
    return Advert(
        serial=txt.serial, address=addresses[0], port=int(info.port), model=txt.model, firmware=txt.fw,
        proto=str(txt.proto), fp=txt.fp, paired=txt.paired, service_name=name, txt=txt.properties(),
    )


class Discovery:
    """Browses for cameras and keeps the devices table current. `on_device(row)` is called (in the
    loop) for every accepted advertisement: the offload manager decides what to do with it."""

    def __init__(self, box: Box, on_device: Callable[[dict], None] | None = None,
                 interfaces: list[str] | None = None, rescan_s: float = 5.0, owner: bool = False):
        self.box = box
        self.owner = owner  # the service's discovery (not a short look-up by `kluis cameras pair`)
        self.on_device = on_device or (lambda row: None)
        self.wanted = interfaces if interfaces is not None else box.settings.dock.interfaces
        self.rescan_s = rescan_s
        self.addresses: list[str] = []
        self._azc: AsyncZeroconf | None = None
        self._browser: AsyncServiceBrowser | None = None
        self._tasks: set[asyncio.Task] = set()
        self._watch: asyncio.Task | None = None
        self._names: dict[str, str] = {}  # mDNS instance name -> serial
        self._refused: dict[str, str] = {}  # mDNS name -> why, logged once per distinct reason
        # (serial, address): a paired serial advertised with another key; the service's own survive its restart
        self.spoofs = Episodes(store=EpisodeStore(box.catalog, "spoofs") if owner else None)
        self.bad_adverts = Episodes()  # address: alerts for bad adverts from there, at most BAD_ADVERT_ALERTS
        self._bad_count: dict[str, int] = {}  # address -> bad-advert alerts in its current episode

    async def start(self) -> None:
        if self.owner:  # what a previous run saw may be stale (it may have been killed): devices are
            # online again when they answer (mDNS, or the offload's probe of a paired camera)
            self.box.catalog.db.execute("UPDATE devices SET online = 0")
        await self._open(interface_addresses(self.wanted))
        self._watch = asyncio.create_task(self._follow_interfaces())

    async def stop(self) -> None:
        if self._watch:
            self._watch.cancel()
        await self._close()

    async def _open(self, addresses: list[str]) -> None:
        self.addresses = addresses
        if not addresses:
            log.warning("mDNS: no interface with an IPv4 address (config [dock] interfaces = %s); waiting",
                        self.wanted or "all")
            return
        try:
            self._azc = AsyncZeroconf(interfaces=addresses, ip_version=IPVersion.V4Only)
        except OSError as exc:
            log.warning("mDNS: cannot listen on %s: %s; retrying", ", ".join(addresses), exc)
            self.addresses = []
            return
        self._browser = AsyncServiceBrowser(self._azc.zeroconf, SERVICE_TYPE, handlers=[self._on_change],
                                            question_type=DNSQuestionType.QM)
        log.info("mDNS: browsing for %s on %s", SERVICE_TYPE, ", ".join(addresses))

    async def _close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._browser:
            await self._browser.async_cancel()
            self._browser = None
        if self._azc:
            await self._azc.async_close()
            self._azc = None

    async def _follow_interfaces(self) -> None:
        while True:
            await asyncio.sleep(self.rescan_s)
            now = interface_addresses(self.wanted)
            if now != self.addresses:
                log.info("mDNS: interfaces changed (%s -> %s)", ", ".join(self.addresses) or "none",
                         ", ".join(now) or "none")
                await self._close()
                await self._open(now)

    def _on_change(self, zeroconf, service_type: str, name: str, state_change: ServiceStateChange) -> None:
        if state_change is ServiceStateChange.Removed:
            serial = self._names.pop(name, None)
            row = devices.find_device(self.box.catalog, serial) if serial else None
            if serial and row is not None and not row["paired"]:  # a paired camera: the probe decides
                devices.gone(self.box, serial, "said goodbye on mDNS")
            return
        task = asyncio.ensure_future(self._resolve(name))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _resolve(self, name: str) -> None:
        if self._azc is None:
            return
        info = AsyncServiceInfo(SERVICE_TYPE, name)
        if not await info.async_request(self._azc.zeroconf, 3000, question_type=DNSQuestionType.QM):
            log.debug("mDNS: %s did not resolve", name)
            return
        try:
            advert = parse_advert(name, info)
        except KluisError as exc:
            why = str(exc)
            if self._refused.get(name) != why:
                self._refused[name] = why
                while len(self._refused) > MAX_REFUSED_NAMES:  # a flood of new names: forget the oldest
                    del self._refused[next(iter(self._refused))]
                self._bad_advert(name, (info.parsed_addresses(IPVersion.V4Only) or ("",))[0], why)
            return
        self._refused.pop(name, None)
        row = devices.seen(self.box, advert)
        if row is None:
            self._spoofed(advert)
            return
        self._names[name] = advert.serial
        self.on_device(row)

    def _bad_advert(self, name: str, address: str, why: str) -> None:
        """An alert per bad advert (name and reason), but at most BAD_ADVERT_ALERTS per host and episode: a
        device that makes up new names does not flood the alerts table."""
        if self.bad_adverts.seen(address):
            self._bad_count[address] = 0
        count = self._bad_count[address] = self._bad_count.get(address, 0) + 1
        if count <= BAD_ADVERT_ALERTS:
            devices.alert(self.box, "bad_advert", f"{name[:80]!r} from {address or None}: {why}; ignored"
                          + ("; further bad adverts from there are not alerted for a while"
                             if count == BAD_ADVERT_ALERTS else ""), address=address or None)
        else:
            log.debug("mDNS: bad advert %r from %s not alerted (%d from there): %s", name[:80], address, count, why)

    def _spoofed(self, advert: Advert) -> None:
        """A paired serial advertised with another key: one alert per episode, not one per advert."""
        if not self.spoofs.seen((advert.serial, advert.address)):  # a host hopping ports: one episode
            return
        row = devices.get_device(self.box.catalog, advert.serial)
        devices.alert(self.box, "spoofed_serial", f"{advert.address}:{advert.port} advertises paired camera "
                      f"{advert.serial} with key fingerprint {advert.fp[:24]!r}, paired key is "
                      f"{row['fingerprint'][:24]}: refused", serial=advert.serial, address=advert.address)
