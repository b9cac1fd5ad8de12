"""kluis register: the processing register entry (AVG art. 30) or the DPIA's fact sheet, from the box's own
configuration (appliance/register.py), as PDF or Markdown by the --out file's suffix. For the privacy officer
(roles.REGISTER_READ); logged in like every command that acts for a person, and on record."""

from __future__ import annotations

from pathlib import Path

import click

from appliance import register_render
from appliance.box import Box
from appliance.durable import write_atomic
from .common import act, secret_options, with_box


@click.command("register")
@with_box
@click.option("--out", required=True, type=click.Path(path_type=Path, dir_okay=False),
              help="Write to this file: .pdf or .md (the format follows the suffix).")
@click.option("--dpia", is_flag=True, help="The DPIA's fact sheet instead of the register entry.")
@secret_options
def register_command(box: Box, out: Path, dpia: bool, user: str | None, password_file: Path | None,
                     recovery_key_file: Path | None) -> None:
    """Make the processing register entry (or with --dpia the DPIA's fact sheet) from this box's settings."""
    fmt = register_render.format_of(out.name)  # a wrong suffix is refused before anyone logs in
    reader = act(box, "register", user, password_file, recovery_key_file)
    _name, data = register_render.export(box, "dpia" if dpia else "register", fmt, reader.name, client="cli")
    write_atomic(out, data)
    click.echo(f"{'DPIA fact sheet' if dpia else 'processing register'} written to {out}", err=True)


COMMANDS = [register_command]
