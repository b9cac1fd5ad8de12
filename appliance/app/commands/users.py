"""kluis users add / edit / list / totp-off: manage the people who use the box, under the same roles as the web UI."""

from __future__ import annotations

from pathlib import Path

import click

from appliance import roles, users
from appliance.box import Box
from .common import (
    act, ask_password, data_option, print_table, secret_options, shows, with_box,
)


@click.group("users")
def users_group() -> None:
    """The box's users and their roles."""


@users_group.command("add")
@data_option
@click.argument("name")
@click.option("--role", required=True, type=click.Choice(roles.ROLES), help="What the user may do.")
@click.option("--team", help="The user's team (required for a team leader).")
@click.option("--full-name", help='The person\'s full name, as forms name them (e.g. "J. de Vries").')
@click.option("--function", "function", help='The person\'s function (e.g. "teamleider handhaving").')
@click.option("--new-password-file", type=click.Path(path_type=Path),
              help="The new user's first password (first line); else a prompt.")
@secret_options
def add(data_dir: Path, name: str, role: str, team: str | None, full_name: str | None, function: str | None,
        new_password_file: Path | None, user: str | None, password_file: Path | None,
        recovery_key_file: Path | None) -> None:
    """Enrol a user. The acting user (default: the one made at init) authenticates; for a role that
    reads footage their unlocked key is wrapped under the new user's password."""
    with Box(data_dir) as box:
        actor = act(box, "users add", user, password_file, recovery_key_file, need_key=role in roles.SLOT_ROLES)
        password = ask_password(new_password_file, f"New password for {name}", confirm=True)
        row = users.add_user(box, actor.name, name, role, password, team=team, identity=actor.identity,
                             client="cli", full_name=full_name, function=function)
    click.echo(f"Added {row['name']} ({row['role']}{', team ' + row['team'] if row['team'] else ''}).")


@users_group.command("edit")
@with_box
@click.argument("name")
@click.option("--full-name", help='The person\'s full name, as forms name them; "" clears it.')
@click.option("--function", "function", help='The person\'s function; "" clears it.')
@secret_options
def edit(box: Box, name: str, full_name: str | None, function: str | None, user: str | None,
         password_file: Path | None, recovery_key_file: Path | None) -> None:
    """Set a user's full name and function (forms and handover pages name people by them; without a full
    name, by the user name). An option left out keeps its value."""
    actor = act(box, "users edit", user, password_file, recovery_key_file)
    current = users.get(box, name)
    row = users.set_person(box, actor.name, name,
                           current.get("full_name") if full_name is None else full_name,
                           current.get("function") if function is None else function, client="cli")
    click.echo(f"{row['name']}: {users.person_label(row)}")


def _print_users(rows: list[dict]) -> None:
    print_table([{**r, "full_name": r.get("full_name") or "", "function": r.get("function") or "",
                  "key": "yes" if r["has_key"] else "no", "disabled": "yes" if r["disabled"] else "",
                  "locked_until": r["locked_until"] or ""} for r in rows],
                ["name", "full_name", "function", "role", "team", "key", "disabled", "locked_until", "created_at"])


@users_group.command("list")
@with_box
@shows(_print_users)
@secret_options
def list_(box: Box, user: str | None, password_file: Path | None, recovery_key_file: Path | None) -> list[dict]:
    """List the users, their roles, teams and whether they hold a key slot (the keeper's view)."""
    act(box, "users list", user, password_file, recovery_key_file)
    return users.list_users(box)


@users_group.command("totp-off")
@with_box
@click.argument("name")
@secret_options
def totp_off(box: Box, name: str, user: str | None, password_file: Path | None, recovery_key_file: Path | None) -> None:
    """Turn a user's second factor off (a lost phone); they set up a new one at their next web login. The
    only keeper who lost theirs does this with --recovery-key-file (break-glass, on record)."""
    actor = act(box, "users totp-off", user, password_file, recovery_key_file)
    users.disable_totp(box, actor.name, name, client="cli")
    required = users.totp_required(box, users.get(box, name)["role"])
    click.echo(f"Second factor of {name} turned off" + ("; their role requires one: they set up a new one at "
                                                       "their next web login." if required else "."))


COMMANDS = [users_group]
