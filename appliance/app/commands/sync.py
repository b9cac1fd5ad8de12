"""kluis sync enroll | status | run | rewrap: the box's side of the central archive."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from appliance import witness
from appliance.box import Box
from appliance.errors import KluisError
from .common import act, print_table, secret_options, shows, with_box


@click.group()
def sync() -> None:
    """Send held footage to the central archive."""


@sync.command()
@with_box
@click.argument("url")
@click.argument("token")
def enroll(box: Box, url: str, token: str) -> None:
    """Enroll this box at the archive at URL with a one-time TOKEN from `kluis archive token`.

    Pins the archive's certificate and keys; recordings sealed from now on (cameras paired from now on)
    are encrypted to the archive too."""
    from sync import client

    enrolled = asyncio.run(client.enroll(box, url, token, actor=box.default_user))
    click.echo(f"Enrolled at {enrolled['archive_name']} ({enrolled['url']}) as box {enrolled['box_id']}.")
    click.echo(f"  certificate sha256 {enrolled['cert_sha256']}")
    click.echo(f"  archive key {enrolled['public_key']}")
    click.echo("Cameras paired before now encrypt to the box only: pair them again to include the archive.")


def _print_status(state: dict) -> None:
    if not state["enrolled"]:
        click.echo("Not enrolled at an archive (kluis sync enroll URL TOKEN).")
        return
    archive = state["archive"]
    click.echo(f"Archive: {archive['name']} {archive['url']} (box {archive['box_id']})")
    click.echo("Counts: " + ", ".join(f"{k} {v}" for k, v in state["counts"].items()))
    seen = state["witness"]
    click.echo(f"Audit log last witnessed by the archive: {witness.age_text(seen['age_hours'])}"
               + (f" (checkpoint at {seen['last']['count']} entries)" if seen["last"] else ""))
    last = state["last_pass"]
    if last:
        click.echo(f"Last pass: {last['finished_at']} {'ok' if last['ok'] else 'incomplete'}"
                   + (f" ({last['skipped']})" if last.get("skipped") else ""))
    rows = [{**r, "progress": f"{r['progress']:.0%}"} for r in state["outbox"]]
    print_table(rows, ["recording_id", "reason", "state", "progress", "received_at", "last_error"])


@sync.command()
@with_box
@shows(_print_status)
def status(box: Box) -> dict:
    """What waits to be sent, what is being sent, what arrived (with receipt), what fails and why."""
    from sync import client

    return client.status(box)


@sync.command()
@with_box
@click.option("--respect-window", is_flag=True, help="Do nothing outside the configured sync window.")
def run(box: Box, respect_window: bool) -> None:
    """One sync pass now. Exits non-zero if something that should have been sent was not."""
    from sync import client

    result = client.run_pass(box, ignore_window=not respect_window)
    for rid in result.sent:
        click.echo(f"sent {rid}")
    for req, matched in result.requisitions.items():
        click.echo(f"requisition {req}: " + (", ".join(matched) if matched else "nothing matched"))
    if result.checkpoint and result.checkpoint.get("alert"):
        click.echo(f"archive flagged this box's audit log: {result.checkpoint['alert']} "
                   f"(checkpoint at {result.checkpoint['count']} entries not witnessed)", err=True)
    elif result.checkpoint and result.checkpoint.get("witnessed"):
        click.echo(f"audit checkpoint at {result.checkpoint['count']} entries witnessed by the archive")
    for rid, why in result.failed.items():
        click.echo(f"failed {rid}: {why}", err=True)
    for error in result.errors:
        click.echo(f"error: {error}", err=True)
    if result.needs_rewrap:
        click.echo(f"{result.needs_rewrap} recording(s) wait to be re-wrapped for the archive "
                   "(kluis sync rewrap --password-file F)", err=True)
    if result.skipped:
        click.echo(f"skipped: {result.skipped}", err=True)
    if not result.ok:
        raise click.exceptions.Exit(1)
    click.echo(f"ok: {len(result.sent)} sent, nothing waiting")


@sync.command()
@with_box
@secret_options
def rewrap(box: Box, user: str | None, password_file: Path | None, recovery_key_file: Path | None) -> None:
    """Re-wrap recordings sealed before enrollment so the archive can open them (needs a key slot)."""
    from sync import client

    # Storage work of the keeper: file keys are re-sealed, no footage is shown (common.COMMAND_PERMISSIONS).
    actor = act(box, "sync rewrap", user, password_file, recovery_key_file, need_key=True)
    if actor.identity is None:
        raise KluisError(f"{actor.name} holds no key to re-wrap recordings with")
    done = client.rewrap_pending(box, actor.identity, actor.name)
    click.echo(f"re-wrapped {done} recording(s) for the archive")


COMMANDS = [sync]
