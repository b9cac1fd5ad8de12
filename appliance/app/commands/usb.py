"""kluis usb ...: bodycams that dock as USB mass storage (appliance/usb/).

`ingest` needs no login, like `kluis backup`: it uses public keys only and runs unattended from the
appliance's udev unit when a camera is plugged in (or by hand for a keeper without the image). It reads a
camera only after the keeper registered it (`kluis cameras pair --usb SERIAL`). `files` lists what was
left on the cameras; `profiles` the camera profiles the box knows (and checks the keeper's own)."""

from __future__ import annotations

from pathlib import Path

import click

from appliance.box import Box
from .common import emit_json, print_table, with_box


@click.group()
def usb() -> None:
    """USB mass-storage bodycams: ingest on plug-in, profiles, files left on the cameras."""


@usb.command("ingest")
@with_box
@click.argument("target", type=click.Path(path_type=Path))
@click.option("--device", help="The block device behind a mount point (for its label and USB serial).")
@click.option("--label", envvar="KLUIS_USB_LABEL", help="The volume's label, when the device cannot be read "
              "here ($KLUIS_USB_LABEL: the appliance's mount unit gives it).")
@click.option("--usb-id", envvar="KLUIS_USB_ID", help="VENDOR:PRODUCT:SERIAL of the USB device ($KLUIS_USB_ID).")
@click.option("--dry-run", is_flag=True, help="Show what would be read and stored; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable report.")
def ingest_(box: Box, target: Path, device: str | None, label: str | None, usb_id: str | None, dry_run: bool,
            as_json: bool) -> None:
    """Ingest the camera at TARGET: a mount point, or a device or image file (mounted here; root only)."""
    from appliance.usb import ingest, volume

    with volume.opened(target, device, label, volume.parse_usb_id(usb_id)) as vol, ingest.slot(box):
        report = ingest.ingest(box, vol, dry_run=dry_run)
    if as_json:
        emit_json(report.as_dict())
    else:
        for f in report.files:
            click.echo(f"  {f.path}  {f.size}  {f.state}{'  deleted on the camera' if f.deleted else ''}"
                       f"{'  ' + f.recording_id if f.recording_id else ''}  {f.message}")
        click.echo(f"{report.serial or '-'} ({report.profile or 'no profile'}): {report.state}: {report.message}")
        if report.state == "done" and not dry_run:
            click.echo("klaar, u kunt de camera eruit halen (done: the camera can be taken out)")
    if report.state not in ("done", "found", "not_registered", "unknown_volume"):
        raise SystemExit(1)


@usb.command("files")
@with_box
@click.option("--serial", help="Only this camera.")
@click.option("--json", "as_json", is_flag=True)
def files(box: Box, serial: str | None, as_json: bool) -> None:
    """Files Kluis did not take from the cameras (not video, unreadable): they stay on the camera."""
    from appliance.usb import overview

    rows = overview.files_left(box, serial)
    if as_json:
        emit_json(rows)
    else:
        print_table(rows, ["serial", "path", "size", "reason", "seen_at"])


@usb.command("profiles")
@with_box
@click.option("--json", "as_json", is_flag=True)
def profiles_(box: Box, as_json: bool) -> None:
    """The camera profiles the box knows: shipped, and the keeper's in DATA/usb-profiles (checked)."""
    from appliance.usb import profiles

    from appliance import retention

    known = retention.current_policy(box).categories
    # a category [retention.categories] does not name is flagged: ingest leaves it off (the default term)
    rows = [{"name": p.name, "priority": p.priority, "description": p.description, "delete": p.delete_after_ingest,
             "category": (p.category if p.category in known else f"{p.category} (unknown: not set)")
             if p.category else None, "file": p.path} for p in profiles.load_all(box.data_dir)]
    if as_json:
        emit_json(rows)
    else:
        print_table(rows, ["name", "priority", "delete", "category", "description", "file"])


COMMANDS = [usb]
