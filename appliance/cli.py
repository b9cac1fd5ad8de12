"""The `kluis` command. Subcommands live in appliance/commands/, one module per area, each exporting a
COMMANDS list; every such module is registered here, so adding an area touches no shared file. Commands
call domain functions and print, nothing more. A user error is one line on stderr and a non-zero exit."""

from __future__ import annotations

import importlib
import pkgutil

import click

from . import commands
from .errors import KluisError


class KluisGroup(click.Group):
    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except KluisError as exc:
            raise click.ClickException(str(exc)) from None
        except PermissionError as exc:
            raise click.ClickException(f"permission denied: {exc.filename}") from None
        except BrokenPipeError:  # `kluis cat ... | head`
            ctx.exit(0)


@click.group(cls=KluisGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="kluis")
def main() -> None:
    """Kluis: the evidence box for enforcement officers' bodycams."""


for _info in pkgutil.iter_modules(commands.__path__):
    for _command in getattr(importlib.import_module(f"{commands.__name__}.{_info.name}"), "COMMANDS", []):
        main.add_command(_command)
