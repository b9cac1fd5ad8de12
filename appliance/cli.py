"""The `kluis` command. Subcommands live in appliance/commands/, one module per area; each calls domain
functions and prints, nothing more. A user error is one line on stderr and a non-zero exit."""

from __future__ import annotations

import click

from .commands import box as box_commands
from .commands.demo import demo
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


for command in [*box_commands.COMMANDS, demo]:
    main.add_command(command)
