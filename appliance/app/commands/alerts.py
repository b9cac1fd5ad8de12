"""kluis alerts test | list: the keeper checks that alerts reach people, and sees what is open."""

from __future__ import annotations

from pathlib import Path

import click

from appliance import alerts as alerts_mod
from appliance.box import Box
from .common import act, print_table, secret_options, shows, with_box


@click.group()
def alerts() -> None:
    """Alerts by e-mail and syslog ([alerts], [syslog] in kluis.toml; docs/alerts.md)."""


@alerts.command()
@with_box
@secret_options
def test(box: Box, user: str | None, password_file: Path | None, recovery_key_file: Path | None) -> None:
    """Send a test mail to every address in [alerts] and a test line to the [syslog] collector."""
    actor = act(box, "alerts test", user, password_file, recovery_key_file)
    outcome = alerts_mod.send_test(box, actor.name, client="cli")
    failed = False
    for what, label in (("mail", "mail"), ("syslog", "syslog")):
        result = outcome[what]
        if result is None:
            click.echo(f"{label}: sent")
        elif result == "off":
            click.echo(f"{label}: not configured")
        else:
            click.echo(f"{label}: FAILED: {result}", err=True)
            failed = True
    if failed:
        raise click.exceptions.Exit(1)


def _print_episodes(rows: list[dict]) -> None:
    if not rows:
        click.echo("No open alerts.")
        return
    print_table(rows, ["id", "kind", "subject", "opened_at", "mailed_at", "detail"])


@alerts.command(name="list")
@with_box
@secret_options
@shows(_print_episodes)
def list_(box: Box, user: str | None, password_file: Path | None, recovery_key_file: Path | None) -> list[dict]:
    """The open alert episodes, oldest first: when each began and whether it was mailed."""
    act(box, "alerts list", user, password_file, recovery_key_file)
    return alerts_mod.open_episodes(box)


COMMANDS = [alerts]
