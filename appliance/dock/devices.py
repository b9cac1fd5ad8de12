"""The box's record of cameras: what discovery saw, which are paired, who wears them, what went wrong.

Plain functions over the catalog's `devices`, `camera_assignments`, `docks` and `device_alerts` tables;
no network here. Discovery and offload call them; so do the CLI (`kluis cameras ...`) and the web UI.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from dataclasses import dataclass
from datetime import datetime

from .. import audit as audit_log
from ..box import Box
from ..catalog import Catalog
from ..clock import from_iso, to_iso
from ..errors import KluisError, NotFound
from .protocol import SERIAL_RE

log = logging.getLogger("kluis.dock")

MODES = ("personal", "pooled")


def check_serial(serial: str) -> str:
    if not isinstance(serial, str) or not SERIAL_RE.match(serial):
        raise KluisError(f"not a camera serial: {str(serial)[:80]!r} (A-Z, 0-9, '-', at most 32)")
    return serial


def audit(box: Box, action: str, *, actor: str = "system", recording_id: str | None = None,
          details: dict | None = None) -> None:
    """An audit entry for something a camera or a person did to one, on the box's clock."""
    audit_log.record(box.catalog, actor=actor, action=action, recording_id=recording_id, details=details,
                     clock=box.clock)


def alert(box: Box, kind: str, message: str, *, serial: str | None = None, address: str | None = None,
          action: str = "device_alert") -> None:
    """Record something a device did wrong: a log line, a row in device_alerts, an audit entry."""
    log.warning("ALERT %s%s: %s", kind, f" [{serial}]" if serial else "", message)
    try:
        with box.catalog.transaction():
            box.catalog.db.table("device_alerts").insert(
                {"at": box.now_iso(), "serial": serial, "address": address, "kind": kind, "message": message}
            )
            audit(box, action, details={"kind": kind, "serial": serial, "address": address, "message": message})
    except sqlite3.OperationalError as exc:  # a full disk: the log line above is all we can do
        log.error("alert not recorded in the catalog: %s", exc)


def alerts(catalog: Catalog, serial: str | None = None, limit: int = 100) -> list[dict]:
    sql = "SELECT * FROM device_alerts"
    params: list = []
    if serial:
        sql += " WHERE serial = ?"
        params.append(serial)
    sql += " ORDER BY id DESC LIMIT ?"
    params.append(limit)
    return list(catalog.db.query(sql, params))


# devices ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Advert:
    """One device's mDNS advertisement, checked (see discovery.parse_advert)."""

    serial: str
    address: str
    port: int
    model: str
    firmware: str
    proto: str
    fp: str
    paired: bool
    service_name: str
    txt: dict


def get_device(catalog: Catalog, serial: str) -> dict:
    rows = list(catalog.db.query("SELECT * FROM devices WHERE serial = ?", [serial]))
    if not rows:
        raise NotFound(f"no camera {serial!r} seen by this box")
    return rows[0]


def find_device(catalog: Catalog, serial: str) -> dict | None:
    rows = list(catalog.db.query("SELECT * FROM devices WHERE serial = ?", [serial]))
    return rows[0] if rows else None


def list_devices(catalog: Catalog) -> list[dict]:
    return list(catalog.db.query("SELECT * FROM devices ORDER BY serial"))


def last_docked(catalog: Catalog, serial: str) -> str | None:
    """When the camera was last in its dock (ISO time), or None if it never was."""
    return catalog.db.execute("SELECT max(docked_at) FROM docks WHERE serial = ?", [serial]).fetchone()[0]


def paired_devices(catalog: Catalog) -> list[dict]:
    return list(catalog.db.query("SELECT * FROM devices WHERE paired = 1 ORDER BY serial"))


def seen(box: Box, advert: Advert) -> dict | None:
    """Discovery saw `advert`. Returns the device row, or None when the advert names a paired serial with
    another key than the paired one (discovery alerts, once per episode).

    An advert is unauthenticated: anyone on the LAN can send one, with any serial and any (public) key
    fingerprint. So it changes nothing of a paired camera: not its address (where it last proved its key),
    port, model, name, 'last seen' or online state. The row is returned with the advert under "advert";
    the offload manager proves a new address by a signed challenge before it switches (offload.py).
    An unpaired device is only listed: its row follows its adverts (pairing checks the key itself)."""
    now = box.now_iso()
    row = find_device(box.catalog, advert.serial)
    if row and row["paired"]:
        if advert.fp != row["fingerprint"]:
            return None
        return {**row, "advert": advert}
    fields = {
        "service_name": advert.service_name, "address": advert.address, "port": advert.port,
        "model": advert.model, "firmware": advert.firmware, "proto": advert.proto,
        "txt": json.dumps(advert.txt, sort_keys=True), "advertised_fp": advert.fp, "online": 1,
        "last_seen": now,
    }
    with box.catalog.transaction():
        if row is None:
            box.catalog.db.table("devices").insert({"serial": advert.serial, "first_seen": now, "paired": 0,
                                              "status": "discovered", "status_at": now, **fields})
            log.info("camera %s discovered at %s:%d (%s, firmware %s): not paired, only listed",
                     advert.serial, advert.address, advert.port, advert.model, advert.firmware)
        else:
            if row["address"] != advert.address or row["port"] != advert.port or not row["online"]:
                log.info("camera %s at %s:%d", advert.serial, advert.address, advert.port)
            box.catalog.db.table("devices").update(advert.serial, fields)
    return get_device(box.catalog, advert.serial)


def touch(box: Box, serial: str, model: str | None = None, firmware: str | None = None) -> None:
    """A paired device proved its key (a manifest it signed for our fresh nonce): online, seen now; and
    what its info, in the same session at that address, says of its model and firmware (an update)."""
    fields: dict = {"online": 1, "last_seen": box.now_iso()}
    if model is not None and firmware is not None:
        row = get_device(box.catalog, serial)
        if (row["model"], row["firmware"]) != (model, firmware):
            fields.update({"model": model, "firmware": firmware})
            if row["firmware"]:
                log.info("camera %s: now %s, firmware %s (was %s, %s)", serial, model, firmware, row["model"],
                         row["firmware"])
    box.catalog.db.table("devices").update(serial, fields)


def moved(box: Box, serial: str, address: str, port: int, advert: Advert | None = None) -> None:
    """Paired camera `serial` proved its key at a new address (a signed challenge there): switch to it.
    The advert that led there gives the service name and what the camera says of itself."""
    row = get_device(box.catalog, serial)
    fields: dict = {"address": address, "port": port, "online": 1, "last_seen": box.now_iso()}
    if advert is not None and advert.address == address and advert.port == port:
        fields.update({"service_name": advert.service_name, "model": advert.model, "firmware": advert.firmware,
                       "proto": advert.proto, "txt": json.dumps(advert.txt, sort_keys=True),
                       "advertised_fp": advert.fp})
    box.catalog.db.table("devices").update(serial, fields)
    log.info("camera %s moved from %s:%s to %s:%d (its key proved there by a signed challenge)", serial,
             row["address"], row["port"], address, port)


def gone(box: Box, serial: str, why: str) -> None:
    row = find_device(box.catalog, serial)
    if row and row["online"]:
        box.catalog.db.table("devices").update(serial, {"online": 0})
        log.info("camera %s gone (%s)", serial, why)


def set_status(box: Box, serial: str, status: str) -> None:
    try:
        box.catalog.db.table("devices").update(serial, {"status": status, "status_at": box.now_iso()})
    except sqlite3.OperationalError as exc:  # a full disk must not turn a clean stop into a crash
        log.error("camera %s: status %r not recorded: %s", serial, status, exc)


def record_dock(box: Box, serial: str, camera_time: datetime, offset_s: float, address: str | None,
                new_dock: bool = True) -> None:
    """The clock offset measured now (box clock minus camera clock): on the device at every session, and
    as a row in `docks` when the camera has just arrived (not on every probe while it stays docked)."""
    now = box.now_iso()
    with box.catalog.transaction():
        if new_dock:
            box.catalog.db.table("docks").insert({"serial": serial, "docked_at": now, "camera_time": to_iso(camera_time),
                                            "clock_offset_s": offset_s, "address": address})
        box.catalog.db.table("devices").update(serial, {"clock_offset_s": offset_s, "clock_measured_at": now})


# assignment ---------------------------------------------------------------------------------------------
def _settings_changed(box: Box, serial: str, fields: dict) -> None:
    """Change a camera's settings in the box; the new version reaches the camera at its next dock."""
    box.catalog.db.execute("UPDATE devices SET settings_version = settings_version + 1 WHERE serial = ?",
                           [serial])
    box.catalog.db.table("devices").update(serial, fields)


def set_personal(box: Box, serial: str, officer: str, actor: str = "system") -> None:
    get_device(box.catalog, serial)
    if not officer.strip() or len(officer) > 64:
        raise KluisError("an officer's name is 1 to 64 characters")
    with box.catalog.transaction():
        _settings_changed(box, serial, {"mode": "personal", "officer": officer})
        audit(box, "settings_change", actor=actor,
              details={"camera": serial, "mode": "personal", "officer": officer})


def set_pooled(box: Box, serial: str, actor: str = "system") -> None:
    get_device(box.catalog, serial)
    with box.catalog.transaction():
        _settings_changed(box, serial, {"mode": "pooled", "officer": None})
        audit(box, "settings_change", actor=actor, details={"camera": serial, "mode": "pooled"})


def set_record_times(box: Box, serial: str, pre_record_s: int, post_record_s: int, actor: str = "system") -> None:
    get_device(box.catalog, serial)
    for value in (pre_record_s, post_record_s):
        if not 0 <= value <= 600:
            raise KluisError("pre-record and post-record are 0 to 600 seconds")
    with box.catalog.transaction():
        _settings_changed(box, serial, {"pre_record_s": pre_record_s, "post_record_s": post_record_s})
        audit(box, "settings_change", actor=actor,
              details={"camera": serial, "pre_record_s": pre_record_s, "post_record_s": post_record_s})


def assign_shift(box: Box, serial: str, officer: str, starts: datetime, ends: datetime | None,
                 actor: str = "system") -> int:
    """A pooled camera goes to `officer` from `starts` to `ends` (box clock). Shifts may not overlap."""
    get_device(box.catalog, serial)
    if ends is not None and ends <= starts:
        raise KluisError("a shift ends after it starts")
    s, e = to_iso(starts), to_iso(ends) if ends else None
    with box.catalog.transaction():
        clash = box.catalog.db.execute(
            "SELECT officer, starts_at, ends_at FROM camera_assignments WHERE serial = ? "
            "AND (ends_at IS NULL OR ends_at > ?) AND (? IS NULL OR starts_at < ?)",
            [serial, s, e, e],
        ).fetchone()
        if clash:
            raise KluisError(f"camera {serial} is already assigned to {clash[0]} from {clash[1]} "
                             f"to {clash[2] or 'open end'}")
        new_id = box.catalog.db.table("camera_assignments").insert(
            {"serial": serial, "officer": officer, "starts_at": s, "ends_at": e, "created_by": actor,
             "created_at": box.now_iso()}
        ).last_pk
        assert new_id is not None  # an INSERT sets it
        audit(box, "settings_change", actor=actor,
              details={"camera": serial, "assign": officer, "from": s, "until": e})
    return new_id


def assignments(catalog: Catalog, serial: str | None = None) -> list[dict]:
    if serial:
        return list(catalog.db.query("SELECT * FROM camera_assignments WHERE serial = ? ORDER BY starts_at",
                                     [serial]))
    return list(catalog.db.query("SELECT * FROM camera_assignments ORDER BY serial, starts_at"))


def officer_at(catalog: Catalog, serial: str, moment: datetime) -> str | None:
    """Who wore camera `serial` at `moment` (box clock): its officer if personal, else the shift's."""
    device = find_device(catalog, serial)
    if device is None:
        return None
    if device["mode"] == "personal":
        return device["officer"]
    at = to_iso(moment)
    row = catalog.db.execute(
        "SELECT officer FROM camera_assignments WHERE serial = ? AND starts_at <= ? "
        "AND (ends_at IS NULL OR ends_at > ?) ORDER BY starts_at DESC LIMIT 1",
        [serial, at, at],
    ).fetchone()
    return row[0] if row else None


def parse_stored_time(text: str | None) -> datetime | None:
    return from_iso(text) if text else None
