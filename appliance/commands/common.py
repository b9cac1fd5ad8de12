"""What every subcommand shares: the --data option, opening the box, reading secrets safely.

Secrets never come from the command line: a prompt in a terminal, or --password-file /
--recovery-key-file for scripts and tests.
"""

from __future__ import annotations

import sys
from functools import wraps
from pathlib import Path

import click
from nacl.public import PrivateKey

from ..box import Box
from ..errors import KluisError

data_option = click.option(
    "--data", "data_dir", required=True, envvar="KLUIS_DATA", type=click.Path(path_type=Path),
    help="The box's data directory (or $KLUIS_DATA).",
)


def with_box(func):
    """Open the box named by --data for the command and close it afterwards."""

    @data_option
    @wraps(func)
    def wrapper(data_dir: Path, **kwargs):
        with Box(data_dir) as box:
            return func(box, **kwargs)

    return wrapper


def read_secret_file(path: Path) -> str:
    try:
        text = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise KluisError(f"cannot read {path}: {exc.strerror}") from None
    if not text or not text[0]:
        raise KluisError(f"{path} is empty")
    return text[0]


def ask_password(password_file: Path | None, prompt: str = "Password", confirm: bool = False) -> str:
    if password_file is not None:
        return read_secret_file(password_file)
    if not sys.stdin.isatty():
        raise KluisError("no password given: use --password-file F (or run in a terminal)")
    return click.prompt(prompt, hide_input=True, confirmation_prompt=confirm)


def secret_options(func):
    """--user, --password-file, --recovery-key-file for commands that act for a person."""
    func = click.option("--recovery-key-file", type=click.Path(path_type=Path),
                        help="Break-glass: open with the recovery key in this file.")(func)
    func = click.option("--password-file", type=click.Path(path_type=Path),
                        help="Read the password from this file (first line).")(func)
    func = click.option("--user", "user", help="Who acts (default: the user made at init).")(func)
    return func


def acting_user(box: Box, user: str | None) -> str:
    return user or box.default_user


def unlock(box: Box, user: str | None, password_file: Path | None, recovery_key_file: Path | None
           ) -> tuple[str, PrivateKey]:
    """(actor, the box's private key) through the actor's key slot, or the recovery key."""
    actor = acting_user(box, user)
    if recovery_key_file is not None:
        return actor, box.unlock_recovery(read_secret_file(recovery_key_file))
    return actor, box.unlock(actor, ask_password(password_file, f"Password for {actor}"))


def emit_json(value) -> None:
    import json

    click.echo(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def print_table(rows: list[dict], columns: list[str]) -> None:
    widths = {c: max([len(c)] + [len(str(r.get(c) if r.get(c) is not None else "")) for r in rows]) for c in columns}
    click.echo("  ".join(c.ljust(widths[c]) for c in columns).rstrip())
    for row in rows:
        cells = [str(row.get(c) if row.get(c) is not None else "") for c in columns]
        click.echo("  ".join(v.ljust(widths[c]) for v, c in zip(cells, columns)).rstrip())
