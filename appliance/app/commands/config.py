"""kluis config check: does kluis.toml load? Every setting and its bounds: docs/settings.md.

It reads one file and changes nothing, so, like `status`, it needs no login (it is not in
common.COMMAND_PERMISSIONS): whoever may read the data directory may read its kluis.toml anyway, and a
keeper checks an edit before restarting the service, also while the box cannot start.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from appliance import config as config_mod
from appliance.errors import KluisError
from .common import data_option


@click.group()
def config() -> None:
    """The box's settings (kluis.toml)."""


@config.command()
@data_option
def check(data_dir: Path) -> None:
    """Load and check DIR/kluis.toml: print OK, or one line per problem (exit 1)."""
    if not data_dir.is_dir():
        raise KluisError(f"no data directory at {data_dir}")
    path = data_dir / config_mod.FILENAME
    try:
        config_mod.load(data_dir)
    except config_mod.ConfigError as exc:
        for line in exc.problems:
            click.echo(line, err=True)
        sys.exit(1)
    click.echo(f"{path}: OK" if path.exists() else f"{path}: not there, every setting at its default: OK")


COMMANDS = [config]
