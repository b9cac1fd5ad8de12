"""The `kluis` command. Subcommands live in appliance/app/commands/, one module per area, each exporting a
COMMANDS list. Commands call domain functions and print, nothing more. A user error is one line on
stderr and a non-zero exit."""

from __future__ import annotations

import gc
import importlib
import os
import pkgutil
import signal
import sqlite3
import sys

import click

from . import commands
from appliance.errors import KluisError

# Command name -> its module in appliance/commands. Running a command imports only its module, so that
# `kluis import` does not pay for aiohttp, PyAV and the camera simulator at every start (start-up and
# peak memory: bench/bench_import.py). A module not named here still works: an unknown name, `--help`
# and the list of commands load every module. tests/test_entry_point.py keeps this table true.
COMMAND_MODULES = {
    "init": "box", "import": "box", "list": "box", "verify": "box", "cat": "box",
    "demo": "demo", "camera-sim": "camera_sim", "cameras": "cameras", "serve": "serve",
    "axis-sim": "axis_sim",
    "retention": "retention", "hold": "retention", "audit": "audit", "users": "users", "status": "status",
    "sync": "sync", "archive": "archive",
    "backup": "backup", "restore": "backup", "update": "update",
    "export": "export",
    "requests": "requests",
    "cases": "cases",
    "redact": "redact",
    "axis": "axis",
    "usb": "usb",
    "config": "config",
    "alerts": "alerts",
    "stats": "stats",
    "register": "register",
    "reason": "annotate", "category": "annotate",
}
_loaded: set[str] = set()


def load_module(name: str) -> None:
    if name not in _loaded:
        _loaded.add(name)
        for command in getattr(importlib.import_module(f"{commands.__name__}.{name}"), "COMMANDS", []):
            main.add_command(command)


def load_all() -> None:
    for info in pkgutil.iter_modules(commands.__path__):
        load_module(info.name)


def stopped_reading(ctx: click.Context) -> None:
    """The reader of our output went away: end quietly, with the status `cat` has when SIGPIPE ends it.

    141 (128 + SIGPIPE) and not 0: a shell script with `set -o pipefail` must not take a cut-off stream
    for the whole recording, and `cat` or `yes` in the same pipe say 141 too. No message: the reader
    chose to stop (Python's own advice, docs.python.org "Note on SIGPIPE"). Standard output now points
    at /dev/null, so that the interpreter's last flush of what is still buffered does not fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    ctx.exit(128 + signal.SIGPIPE)


class KluisGroup(click.Group):
    def get_command(self, ctx: click.Context, name: str):
        if name in COMMAND_MODULES:
            load_module(COMMAND_MODULES[name])
        if (found := super().get_command(ctx, name)) is None:
            load_all()
            found = super().get_command(ctx, name)
        return found

    def list_commands(self, ctx: click.Context):
        load_all()
        return super().list_commands(ctx)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except KluisError as exc:
            raise click.ClickException(str(exc)) from None
        except PermissionError as exc:
            raise click.ClickException(f"permission denied: {exc.filename}") from None
        except sqlite3.DatabaseError as exc:  # a damaged or unreadable catalog: say so, change nothing
            raise click.ClickException(f"the catalog cannot be read ({exc}); nothing was changed") from None
        except BrokenPipeError:  # an OSError too, so first: the reader stopped (`kluis cat ... | head`)
            stopped_reading(ctx)
        except OSError as exc:
            where = f": {exc.filename}" if exc.filename else ""
            raise click.ClickException(f"{exc.strerror or exc}{where}") from None
        finally:
            # The process ends with the command, and the exit frees everything at once. Freezing spares
            # the interpreter's last full collection over every module's objects (~10 ms a command).
            gc.freeze()


@click.group(cls=KluisGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="kluis")
def main() -> None:
    """Kluis: the evidence box for enforcement officers' bodycams."""
