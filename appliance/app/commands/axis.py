"""kluis axis ...: connect an Axis body-worn system (a W800 system controller) to this box.

`connection-file` is the keeper's (roles.CAMERAS_MANAGE, checked before a password is asked): it makes
the W800's account and prints the file to upload into the Axis Body Worn Manager. `list` needs no login,
like `kluis cameras list`: system controllers, their users and devices, recordings still arriving."""

from __future__ import annotations

from pathlib import Path

import click

from appliance.box import Box
from .common import act, print_table, secret_options, shows, with_box


@click.group()
def axis() -> None:
    """Axis body-worn systems (W800): the connection file, what they delivered (docs/axis.md)."""


@axis.command("connection-file")
@with_box
@click.option("--site", required=True, help="SiteName: the office or system this W800 serves (1-64 bytes).")
@click.option("--encrypt", is_flag=True,
              help="WantEncryption: the W800 also encrypts every clip to this box's transport key.")
@click.option("--url", "urls", multiple=True,
              help="An address of this box's content destination, https://HOST:PORT/auth/v1.0 (repeatable; "
                   "default: [axis] urls, else this host's .local name and [axis] listen's port).")
@click.option("--out", type=click.Path(path_type=Path), help="Write the file here (mode 0600) instead of stdout.")
@secret_options
def connection_file(box: Box, site: str, encrypt: bool, urls: tuple[str, ...], out: Path | None,
                    user: str | None, password_file, recovery_key_file) -> None:
    """Make (or renew) the W800 account of SITE and print its connection file. Renewing gives a new
    key: the previous file of that site stops working. The file holds a secret: keep it like a password."""
    from appliance.axis import accounts

    who = act(box, "axis connection-file", user, password_file, recovery_key_file)
    connection = accounts.connection_file(box, site, list(urls) or accounts.default_urls(box), encrypt=encrypt,
                                          actor=who.name, client="cli")
    if out is None:
        click.echo(connection.text(), nl=False)
        return
    import os

    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(connection.text())
    click.echo(f"{out}: connection file for {site} (account {connection.account}"
               f"{', renewed: the previous file no longer works' if not connection.created else ''})", err=True)


def _print_overview(view: dict) -> None:
    if not view["systems"]:
        click.echo("No Axis system connected (make a connection file: kluis axis connection-file --site NAME)")
        return
    click.echo("System controllers:")
    print_table(view["systems"], ["site", "account", "system_name", "system_id", "encrypt", "last_contact"])
    click.echo("\nUsers:")
    print_table(view["users"], ["account", "officer", "uuid", "active"])
    click.echo("\nDevices:")
    print_table(view["devices"], ["account", "serial", "model", "name", "active", "last_recording"])
    if view["transferring"]:
        click.echo("\nStill arriving:")
        print_table(view["transferring"], ["account", "container", "clips", "created_at"])


@axis.command("list")
@with_box
@shows(_print_overview)
def list_(box: Box) -> dict:
    """System controllers, their users and devices, and recordings still being transferred."""
    from appliance.axis import overview

    return overview.snapshot(box)


COMMANDS = [axis]
