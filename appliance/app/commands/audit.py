"""kluis audit verify|show|export|checkpoint|prune: the audit log (logboek).

Reading the log needs roles.AUDIT_READ (privacy officer, auditor; see common.COMMAND_PERMISSIONS).
`audit checkpoint` and `audit prune` need no login: signing a checkpoint and applying the log's own term
([audit] term_days) are the unattended service's work, with the box's own signing key, and neither shows
an entry's contents."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from appliance import audit, audit_term, witness
from appliance.box import Box
from .common import act, emit_json, print_table, secret_options, shows, table, with_box
from .retention import time_arg


@click.group("audit")
def audit_group() -> None:
    """The tamper-evident audit log: verify it, read it, export it and its signed checkpoints."""


@audit_group.command("verify")
@with_box
@click.option("--checkpoint", "checkpoint_files", multiple=True, type=click.Path(path_type=Path),
              help="Also hold the log to the checkpoints in this exported file (repeatable).")
@secret_options
def audit_verify(box: Box, checkpoint_files: tuple[Path, ...], user: str | None, password_file: Path | None,
                 recovery_key_file: Path | None) -> None:
    """Check the hash chain and the signed checkpoints; name the first bad entry and exit non-zero."""
    # The log is checked as found, before the user's own login entry is appended (a truncated tail would
    # otherwise be partly refilled by it); nothing is shown until they have logged in.
    extra = [cp for path in checkpoint_files for cp in audit.load_checkpoints(path)]
    report = witness.verify(box.catalog, box.signing_key().verify_key, extra)  # with the archive's witnesses
    meta_key = box.catalog.get_meta("signing_public_key")
    if meta_key and meta_key != bytes(box.signing_key().verify_key).hex():
        report.problems.append("the signing key in the catalog is not the box's signing key")
    act(box, "audit verify", user, password_file, recovery_key_file)
    for problem in report.problems:
        click.echo(problem)
    if not report.ok:
        first = (f"first bad entry: {report.where}" if report.first_bad_upto is None or report.where.isdigit()
                 else f"the first bad entry is one of entries {report.where}") if report.first_bad \
            else "checkpoints are not valid"
        raise click.ClickException(f"audit log damaged or tampered with: {first}")
    tail = report.pruned + report.count - report.anchored
    signed = tail - report.unsigned_tail
    click.echo(f"ok: {report.count} entries, chain intact; {report.checkpoints} signed checkpoint(s) match"
               + (f"; the last {tail} entr{'y is' if tail == 1 else 'ies are'} not yet under a checkpoint"
                  if tail else "")
               + (f" ({signed} checked by {'its' if signed == 1 else 'their'} own signature)" if signed else "")
               + (f"; {report.unsigned_tail} of them not yet signed on {'its' if report.unsigned_tail == 1 else 'their'} "
                  f"own (written without the key, or before entries were signed; the next checkpoint signs "
                  f"{'it' if report.unsigned_tail == 1 else 'them'})" if report.unsigned_tail else ""))
    if report.pruned:
        counts = ", ".join(f"{action} {n}" for action, n in report.pruned_actions.items())
        click.echo(f"pruned: entries 1..{report.pruned} (past the audit log's term) under signed pruning "
                   f"checkpoint(s); the chain goes on from entry {report.pruned}'s hash ({counts})")
    click.echo(_witness_line(box))


def _witness_line(box: Box) -> str:
    """How far the archive's witness reaches: entries after it could be rewritten with the box's key."""
    seen = witness.summary(box.catalog, box.clock(), witness.archive_key(box.catalog) is not None)
    if not seen["enrolled"]:
        return "witness: none (not enrolled at an archive; only exported checkpoints held elsewhere protect the log)"
    if seen["last"] is None:
        return "witness: the archive has not witnessed a checkpoint of this log yet"
    return (f"witness: the archive witnessed entries 1..{seen['last']['count']} "
            f"{witness.age_text(seen['age_hours'])} ({seen['last']['witnessed_at']})")


def _filters(func):
    func = click.option("--action", help="Only this action (e.g. view, hold_add, delete).")(func)
    func = click.option("--actor", help="Only this user ('system' for unattended work).")(func)
    func = click.option("--until", help="Before this time.")(func)
    func = click.option("--since", help="From this time (ISO 8601, or e.g. 7d for 7 days ago).")(func)
    func = click.option("--recording", "recording_id", help="Only entries about this recording.")(func)
    return func


@audit_group.command("show")
@with_box
@_filters
@click.option("--limit", type=int, help="At most this many (the newest).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@secret_options
def audit_show(box: Box, recording_id: str | None, since: str | None, until: str | None, actor: str | None,
               action: str | None, limit: int | None, as_json: bool, user: str | None, password_file: Path | None,
               recovery_key_file: Path | None) -> None:
    """Show audit entries, oldest first."""
    act(box, "audit show", user, password_file, recovery_key_file)
    rows = audit.entries(box.catalog, recording_id=recording_id, since=time_arg(box, since),
                         until=time_arg(box, until), actor=actor, action=action, limit=limit,
                         newest_first=limit is not None)
    if limit is not None:
        rows.reverse()
    if as_json:
        emit_json(rows)
        return
    print_table(rows, ["seq", "time", "actor", "action", "recording_id", "purpose", "case_ref", "client"])


@audit_group.command("export")
@with_box
@_filters
@click.option("--csv", "as_csv", is_flag=True, help="As CSV (the only format for now; required).")
@click.option("--out", type=click.Path(path_type=Path), help="Write to this file instead of stdout.")
@secret_options
def audit_export(box: Box, recording_id: str | None, since: str | None, until: str | None, actor: str | None,
                 action: str | None, as_csv: bool, out: Path | None, user: str | None, password_file: Path | None,
                 recovery_key_file: Path | None) -> None:
    """Export audit entries as CSV for the privacy officer."""
    if not as_csv:
        raise click.UsageError("give --csv (the export format)")
    reader = act(box, "audit export", user, password_file, recovery_key_file)
    rows = audit.entries(box.catalog, recording_id=recording_id, since=time_arg(box, since),
                         until=time_arg(box, until), actor=actor, action=action)
    # Reading the log out of the box is itself on record.
    audit.record(box.catalog, actor=reader.name, action="audit_export", recording_id=recording_id,
                 client="cli", clock=box.clock, details={"entries": len(rows), "since": since, "until": until})
    if out is None:
        audit.write_csv(rows, sys.stdout, box.settings.box.timezone)
        return
    with open(out, "w", newline="", encoding="utf-8") as f:
        audit.write_csv(rows, f, box.settings.box.timezone)
    click.echo(f"{len(rows)} entries written to {out}", err=True)


@audit_group.command("checkpoint")
@with_box
@click.option("--export", "export_to", type=click.Path(path_type=Path),
              help="Write the checkpoint(s) to this file (JSON Lines) for an outside party.")
@click.option("--all", "all_checkpoints", is_flag=True, help="Export every stored checkpoint, not only the new one.")
def audit_checkpoint(box: Box, export_to: Path | None, all_checkpoints: bool) -> None:
    """Sign a checkpoint of the log now (count, head hash, time) and print or export it."""
    made = audit.checkpoint(box.catalog, box.signing_key(), clock=box.clock, force=True)
    chosen = audit.stored_checkpoints(box.catalog) if all_checkpoints else [made]
    if export_to is None:
        for cp in chosen:
            click.echo(audit.canonical(cp).decode("utf-8"))
        return
    count = audit.export_checkpoints(chosen, export_to)
    click.echo(f"{count} checkpoint(s) written to {export_to} (log at {made['count']} entries)", err=True)


@audit_group.command("checkpoints")
@with_box
@shows(table(["time", "count", "head"]))
@secret_options
def audit_checkpoints(box: Box, user: str | None, password_file: Path | None,
                      recovery_key_file: Path | None) -> list[dict]:
    """List the signed checkpoints stored on the box."""
    act(box, "audit checkpoints", user, password_file, recovery_key_file)
    return audit.stored_checkpoints(box.catalog)


def _print_prune(result: dict) -> None:
    if result["refused"]:
        click.echo(f"not pruned: {result['refused']}")
    elif result["pruned"]:
        click.echo(f"pruned entries {result['first']}..{result['last']} ({result['pruned']}), older than "
                   f"{result['term_days']} days, under a signed pruning checkpoint")
    elif result["count"]:
        click.echo(f"would prune entries {result['first']}..{result['last']} ({result['count']}), older than "
                   f"{result['term_days']} days")
    else:
        click.echo(f"nothing to prune: no entry before {result['cutoff']} ({result['term_days']} days) may go")
    for why, seq in result["kept_by"].items():
        click.echo(f"kept from entry {seq} on: {KEPT_TEXT.get(why, why)}")


KEPT_TEXT = {
    "recording_still_stored": "it is about a recording the box still holds (its whole trail stays)",
    "checkpoint": "no signed checkpoint covers it yet",
    "archive_witness": "the archive has not witnessed a checkpoint past it yet",
    "log_collector": "the log collector ([syslog] server) has not confirmed it yet",
}


@audit_group.command("prune")
@with_box
@click.option("--dry-run", is_flag=True, help="Only say what would be pruned.")
@shows(_print_prune)
def audit_prune(box: Box, dry_run: bool) -> dict:
    """Prune the entries older than [audit] term_days under a signed pruning checkpoint (the service does
    this once a day); entries about recordings still stored, and every entry after them, stay."""
    result = audit_term.prune(box, box.signing_key(), dry_run=dry_run)
    if result.refused:
        raise click.ClickException(f"not pruned: {result.refused}")
    return result.as_dict()


COMMANDS = [audit_group]
