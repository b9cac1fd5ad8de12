"""kluis retention status|run|report and kluis hold add|release|list|review: the retention commands.

Who may run which: appliance/app/commands/common.py, COMMAND_PERMISSIONS. `retention status` and `retention
run` need no login: they are the unattended service's work (see there why)."""

from __future__ import annotations

import re
import sys
from datetime import timedelta

import click

from appliance import backup_targets, csv_columns, retention, roles, spreadsheet, sweep
from appliance.box import Box
from appliance.clock import parse_time, to_iso
from appliance.errors import NotFound
from appliance.purposes import PURPOSES, parse_purpose
from .common import Actor, act, emit_json, print_table, secret_options, shows, with_box


def time_arg(box: Box, text: str | None) -> str | None:
    """An ISO 8601 time (no zone: the box's time zone), or '7d' / '12h' for that long ago."""
    if text is None:
        return None
    match = re.fullmatch(r"\s*(\d+)\s*([dh])\s*", text)
    if match:
        amount = int(match.group(1))
        delta = timedelta(days=amount) if match.group(2) == "d" else timedelta(hours=amount)
        return to_iso(box.clock() - delta)
    return to_iso(parse_time(text, box.settings.box.timezone))


def act_on(box: Box, command: str, recording_id: str, user: str | None, password_file, recovery_key_file
           ) -> Actor:
    """`act` for a command about one recording: it must exist and be in the acting user's scope."""
    recording = box.catalog.get_recording(recording_id)

    def in_scope(row: dict) -> None:
        if not roles.recording_in_scope(box.catalog, row, recording):
            raise roles.Forbidden(f"{row['name']} (role {row['role']}) may not act on recording {recording_id}: "
                                  "not in their scope")

    return act(box, command, user, password_file, recovery_key_file, check=in_scope, recording_id=recording_id)


@click.group("retention")
def retention_group() -> None:
    """Retention: the policy, the sweep that deletes expired recordings, the deletion report."""


def _print_status(info: dict) -> None:
    policy = info["policy"]
    cats = ", ".join(f"{k} {v} d" for k, v in policy["categories"].items()) or "none"
    click.echo(f"policy: {policy['default_days']} days after the end of a recording (categories: {cats}); "
               f"holds reviewed every {policy['review_days']} days; grace after the last hold "
               f"{policy['grace_days']} days")
    click.echo(f"recordings: {info['recordings']}, under hold: {info['held']}, due for deletion now: {info['due']}")
    click.echo(f"next expiry: {info['next_expiry'] or '-'}")
    click.echo(f"holds due for review: {info['holds_due_for_review']}")
    click.echo(f"deleted so far: {info['deleted_total']}, deletions to finish: {info['deletions_pending']}")
    last = info["last_sweep"]
    click.echo(f"last sweep: {last['at']} ({last['deleted']} deleted)" if last else "last sweep: never")


@retention_group.command("status")
@with_box
@shows(_print_status)
def retention_status(box: Box) -> dict:
    """Show the policy, what is held, what is due and the last sweep."""
    return retention.status(box)


@retention_group.command("run")
@with_box
@click.option("--dry-run", is_flag=True, help="Only list what would be deleted.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--batch", type=click.IntRange(1, 10000), default=sweep.BATCH, hidden=True)
def retention_run(box: Box, dry_run: bool, as_json: bool, batch: int) -> None:
    """Delete every expired recording that is not under hold, now (the service does this every 15 min)."""
    result = sweep.sweep(box, dry_run=dry_run, batch=batch)
    if as_json:
        emit_json({**result.as_dict(), "ids": result.deleted})
        return
    if dry_run:
        for recording_id in result.deleted:
            click.echo(recording_id)
        click.echo(f"would delete {len(result.deleted)} recording(s)", err=True)
        return
    if result.finished:
        click.echo(f"finished {result.finished} deletion(s) of an interrupted sweep")
    if result.holds_ended:
        click.echo(f"{result.holds_ended} hold(s) ended on their end date")
    click.echo(f"deleted {len(result.deleted)} recording(s)")
    for pushed in backup_targets.push(box):  # the deletions to the backup targets it can reach
        if pushed.error:
            click.echo(f"deletions not yet on backup target {pushed.target}: {pushed.error}", err=True)
        elif pushed.journal_seq is not None or pushed.removed:
            click.echo(f"deletions pushed to {pushed.target}: {pushed.deletions} in journal entry "
                       f"{pushed.journal_seq or '-'}, {pushed.removed} stored copy(ies) removed")


@retention_group.command("report")
@with_box
@click.option("--from", "start", help="From this time (ISO 8601, or e.g. 30d for 30 days ago).")
@click.option("--to", "end", help="Up to (not including) this time.")
@click.option("--csv", "as_csv", is_flag=True, help="CSV for a spreadsheet.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@secret_options
def retention_report(box: Box, start: str | None, end: str | None, as_csv: bool, as_json: bool, user: str | None,
                     password_file, recovery_key_file) -> None:
    """The deletion report (verwijderverslag): what was deleted in a period, and under which policy."""
    act(box, "retention report", user, password_file, recovery_key_file)
    rows = retention.deletion_report(box.catalog, time_arg(box, start), time_arg(box, end))
    if as_json:
        emit_json(rows)
    elif as_csv:
        spreadsheet.write(sys.stdout, csv_columns.headings(retention.REPORT_COLUMNS),
                          ([row[c] for c in retention.REPORT_COLUMNS] for row in rows), box.settings.box.timezone)
    else:
        print_table(rows, ["recording_id", "end_time", "deleted_at", "term_days", "reason"])
        click.echo(f"{len(rows)} recording(s) deleted")


@click.group("hold")
def hold_group() -> None:
    """Holds (blokkeringen): keep a recording past its term for a purpose."""


@hold_group.command("add")
@with_box
@click.argument("recording_id")
@click.option("--purpose", required=True, help=f"Why: {', '.join(PURPOSES)}.")
@click.option("--case", "case_ref", required=True, help="Case reference (zaaknummer).")
@click.option("--until", help="End date of the hold (ISO 8601); default: until released, reviewed periodically.")
@secret_options
def hold_add(box: Box, recording_id: str, purpose: str, case_ref: str, until: str | None, user: str | None,
             password_file, recovery_key_file) -> None:
    """Place a hold on a recording; prints the hold's id."""
    until_t = parse_time(until, box.settings.box.timezone) if until else None
    parse_purpose(purpose)  # a typo is told before a password is asked
    actor = act_on(box, "hold add", recording_id, user, password_file, recovery_key_file)
    hold_id = retention.add_hold(box, recording_id, purpose, case_ref, actor.name, until=until_t, client="cli")
    click.echo(hold_id)


@hold_group.command("release")
@with_box
@click.argument("recording_id")
@click.option("--reason", required=True, help="Why the hold is no longer needed.")
@click.option("--hold", "hold_id", type=int, help="Which hold, when the recording has several.")
@click.option("--case", "case_ref", help="Which hold, by its case reference.")
@secret_options
def hold_release(box: Box, recording_id: str, reason: str, hold_id: int | None, case_ref: str | None,
                 user: str | None, password_file, recovery_key_file) -> None:
    """Release a hold; the recording then follows the normal term again (at least the grace period)."""
    actor = act_on(box, "hold release", recording_id, user, password_file, recovery_key_file)
    released = retention.release_hold(box, recording_id, reason, actor.name, hold_id=hold_id,
                                      case_ref=case_ref, client="cli")
    after = retention.delete_after(box, recording_id)
    click.echo(f"released hold {', '.join(map(str, released))}; "
               + (f"deleted from {to_iso(after)}" if after else "other holds remain"))


@hold_group.command("review")
@with_box
@click.argument("hold_id", type=int)
@secret_options
def hold_review(box: Box, hold_id: int, user: str | None, password_file, recovery_key_file) -> None:
    """Confirm that a hold is still needed; it comes up for review again later."""
    row = box.catalog.db.execute("SELECT recording_id FROM holds WHERE id = ?", [hold_id]).fetchone()
    if row is None:
        raise NotFound(f"no hold {hold_id}")
    actor = act_on(box, "hold review", row[0], user, password_file, recovery_key_file)
    click.echo(f"next review: {retention.review_hold(box, hold_id, actor.name, client='cli')}")


@hold_group.command("list")
@with_box
@click.option("--recording", "recording_id", help="Only this recording's holds.")
@click.option("--all", "include_released", is_flag=True, help="Released holds too.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@secret_options
def hold_list(box: Box, recording_id: str | None, include_released: bool, as_json: bool, user: str | None,
              password_file, recovery_key_file) -> None:
    """List the holds in force (with --all also the released ones), on recordings in the user's scope."""
    actor = act(box, "hold list", user, password_file, recovery_key_file)
    rows = retention.list_holds(box.catalog, recording_id, include_released=include_released)
    if actor.user is not None and roles.SCOPES.get(actor.user["role"]) != roles.SCOPE_ALL:
        where, params = roles.scope_sql(actor.user)
        visible = {r[0] for r in box.catalog.db.execute(f"SELECT r.id FROM recordings r WHERE {where}", params)}
        rows = [row for row in rows if row["recording_id"] in visible]
    if as_json:
        emit_json(rows)
        return
    columns = ["id", "recording_id", "purpose", "case_ref", "placed_by", "placed_at", "review_at", "until"]
    if include_released:
        columns += ["released_at", "release_reason"]
    print_table(rows, columns)


COMMANDS = [retention_group, hold_group]
