"""kluis cameras ...: list, pair and assign the cameras the box has found on the LAN.

Pairing, unpairing and assigning are the keeper's (roles.CAMERAS_MANAGE, checked by common.act before a
password is asked). `list` and `alerts` need no login: they show what the overview shows every user, and
what `kluis status` shows without one (no footage, no key)."""

from __future__ import annotations

import asyncio
from datetime import datetime

import click

from appliance.box import Box
from appliance.clock import parse_time
from appliance.dock import devices
from .common import act, emit_json, print_table, secret_options, shows, table, with_box


@click.group()
def cameras() -> None:
    """Cameras: discovered and paired devices, pairing, assignment to officers."""


@cameras.command("list")
@with_box
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_(box: Box, as_json: bool) -> None:
    """Discovered and paired cameras, with address, last seen and assignment."""
    rows = devices.list_devices(box.catalog)
    if as_json:
        for row in rows:
            row["assignments"] = devices.assignments(box.catalog, row["serial"])
        emit_json(rows)
        return
    if not rows:
        click.echo("No cameras seen yet (is `kluis serve` running, and a camera in its dock?)")
        return
    for row in rows:
        row["state"] = "paired" if row["paired"] else "not paired"
        row["where"] = f"{row['address']}:{row['port']}" if row["address"] else ""
        row["online"] = "yes" if row["online"] else "no"
        row["who"] = row["officer"] if row["mode"] == "personal" else "pooled (per shift)"
        row["key"] = row["fingerprint"] or row["advertised_fp"]
    print_table(rows, ["serial", "state", "online", "where", "last_seen", "who", "clock_offset_s", "key"])


@cameras.command()
@with_box
@click.argument("serial", required=False)
@click.argument("code", required=False)
@click.option("--usb", "usb_serial", metavar="SERIAL",
              help="Register the USB camera SERIAL that was found when plugged in (no code).")
@click.option("--officer", help="Make it the personal camera of this officer (default: pooled).")
@click.option("--pooled", is_flag=True, help="With --usb: a pool camera, the officer comes from its shifts.")
@click.option("--pre-record", "pre_record_s", type=click.IntRange(0, 600), default=30, show_default=True)
@click.option("--post-record", "post_record_s", type=click.IntRange(0, 600), default=30, show_default=True)
@secret_options
def pair(box: Box, serial: str | None, code: str | None, usb_serial: str | None, officer: str | None, pooled: bool,
         pre_record_s: int, post_record_s: int, user: str | None, password_file, recovery_key_file) -> None:
    """Pair camera SERIAL with the CODE it shows on its screen, or register a USB camera (--usb SERIAL)."""
    from appliance.dock.pairing import pair_camera

    if usb_serial:
        if serial or code:
            raise click.UsageError("--usb SERIAL takes no SERIAL CODE arguments")
        if officer and pooled:
            raise click.UsageError("--officer or --pooled, not both")
        from appliance.usb import ingest

        actor = act(box, "cameras pair", user, password_file, recovery_key_file)
        row = ingest.register(box, usb_serial, officer=officer, pooled=pooled, actor=actor.name)
        who = row["officer"] if row["mode"] == "personal" and row["officer"] else "pooled (per shift)"
        click.echo(f"Registered USB camera {row['serial']} ({row['model']}), {who}. Its recordings are "
                   "ingested whenever it is plugged in.")
        return
    if not serial or not code:
        raise click.UsageError("give SERIAL CODE (a dock camera) or --usb SERIAL")

    actor = act(box, "cameras pair", user, password_file, recovery_key_file)
    row = asyncio.run(pair_camera(box, serial, code, actor=actor.name, officer=officer,
                                  pre_record_s=pre_record_s, post_record_s=post_record_s))
    click.echo(f"Paired {row['serial']} at {row['address']}:{row['port']}, key fingerprint {row['fingerprint']}.")
    click.echo("Compare it with the fingerprint the camera shows. Recordings are offloaded whenever it is docked.")


@cameras.command()
@with_box
@click.argument("serial")
@secret_options
def unpair(box: Box, serial: str, user: str | None, password_file, recovery_key_file) -> None:
    """Forget camera SERIAL's key (and tell the camera, if it is reachable)."""
    from appliance.dock.pairing import unpair_camera

    actor = act(box, "cameras unpair", user, password_file, recovery_key_file)
    asyncio.run(unpair_camera(box, serial, actor.name))
    click.echo(f"Unpaired {serial}.")


@cameras.command()
@with_box
@click.argument("serial")
@click.option("--officer", help="Personal camera of this officer.")
@click.option("--pooled", is_flag=True, help="A pool camera: the officer comes from its shifts.")
@click.option("--pre-record", "pre_record_s", type=click.IntRange(0, 600))
@click.option("--post-record", "post_record_s", type=click.IntRange(0, 600))
@secret_options
def assign(box: Box, serial: str, officer: str | None, pooled: bool, pre_record_s: int | None,
           post_record_s: int | None, user: str | None, password_file, recovery_key_file) -> None:
    """Make SERIAL personal (--officer) or pooled (--pooled); set its pre/post-record seconds."""
    if officer and pooled:
        raise click.UsageError("--officer or --pooled, not both")
    actor = act(box, "cameras assign", user, password_file, recovery_key_file).name
    if officer:
        devices.set_personal(box, serial, officer, actor)
    elif pooled:
        devices.set_pooled(box, serial, actor)
    if pre_record_s is not None or post_record_s is not None:
        row = devices.get_device(box.catalog, serial)
        devices.set_record_times(box, serial, pre_record_s if pre_record_s is not None else row["pre_record_s"] or 30,
                                 post_record_s if post_record_s is not None else row["post_record_s"] or 30, actor)
    row = devices.get_device(box.catalog, serial)
    click.echo(f"{serial}: {row['mode']}" + (f", officer {row['officer']}" if row["officer"] else "")
               + f"; settings version {row['settings_version']} goes to the camera at its next dock")


@cameras.command()
@with_box
@click.argument("serial")
@click.option("--officer", required=True, help="The officer who takes the pooled camera.")
@click.option("--from", "starts", required=True, help="Start of the shift, ISO 8601 (no zone: the box's zone).")
@click.option("--until", "ends", help="End of the shift (default: open-ended).")
@secret_options
def shift(box: Box, serial: str, officer: str, starts: str, ends: str | None, user: str | None, password_file,
          recovery_key_file) -> None:
    """Assign pooled camera SERIAL to an officer for a shift."""
    tz = box.settings.box.timezone
    start_t: datetime = parse_time(starts, tz)
    end_t = parse_time(ends, tz) if ends else None
    actor = act(box, "cameras shift", user, password_file, recovery_key_file)
    devices.assign_shift(box, serial, officer, start_t, end_t, actor.name)
    click.echo(f"{serial} assigned to {officer} from {start_t.isoformat()} to "
               f"{end_t.isoformat() if end_t else 'open end'}")


@cameras.command()
@with_box
@click.option("--serial", help="Only this camera.")
@shows(table(["at", "serial", "address", "kind", "message"]))
def alerts(box: Box, serial: str | None) -> list[dict]:
    """Alerts about devices: refused pairings, key mismatches, bad manifests or recordings, full disk."""
    return devices.alerts(box.catalog, serial)


COMMANDS = [cameras]
