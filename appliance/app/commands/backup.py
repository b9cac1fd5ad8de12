"""kluis backup, kluis backup verify | journal | list, kluis restore (docs/backup.md).

`kluis backup` needs no login: it runs from a timer or when the keeper plugs in a USB disk, with public
keys only (like `kluis retention run`, whoever may read the data directory may run it). `kluis restore`
needs a keeper's password or the recovery key, checked against the key slots in the backup.
"""

from __future__ import annotations

from pathlib import Path

import click

from appliance import backup as backup_mod
from appliance import backup_sftp, backup_targets
from appliance import restore as restore_mod
from appliance.box import Box
from appliance.errors import KluisError
from .common import ask_password, data_option, emit_json, read_secret_file, shows

from_option = click.option("--from", "source", required=True, type=click.Path(path_type=Path),
                           help="The backup target to read.")
signer_option = click.option("--signer", help="The signing key fingerprint `kluis backup` printed (pins whose "
                                              "backups these must be).")


def resolve_signer(target: Path, text: str | None, box_dir: Path | None = None) -> str | None:
    """The hex signing key to hold the backups to: the box's own (--data), or the one whose fingerprint
    (or hex) was given; None: whatever key the journal was started with."""
    if box_dir is not None:
        with Box(box_dir) as box:
            return box.catalog.get_meta("signing_public_key")
    if not text:
        return None
    wanted = text.strip().lower()
    candidates = set()
    journal = backup_mod.read_journal(target)
    if journal.signer:
        candidates.add(journal.signer)
    for path in backup_mod.list_backups(target):
        try:
            candidates.add(backup_mod.read_manifest(path)["signer"])
        except (KluisError, KeyError):
            pass
    for hex_key in candidates:
        if wanted in (hex_key, backup_mod.signer_fingerprint(hex_key)):
            return hex_key
    raise KluisError(f"nothing in {target} is signed by {text}")


def _say_footage(days: dict) -> str:
    if not days["recordings"]:
        return "no footage"
    return (f"{days['recordings']} recording(s), {days['days']} day(s) of footage "
            f"({days['from']} to {days['to']})")


def _print_run(target: str, result: backup_mod.RunResult, now: str) -> None:
    manifest = result.manifest
    copied = manifest["copied"]
    held = sum(1 for r in manifest["recordings"] if r.get("held"))
    click.echo(f"backup {result.name} written to {target}: {len(manifest['recordings'])} recording(s) "
               f"({held} held), {copied['recordings']} copied now ({copied['bytes']} bytes), "
               f"audit log of {manifest['audit']['count']} entries")
    days = backup_mod.footage_days(manifest["recordings"], set(), now)
    click.echo(f"  restores {_say_footage(days)}")
    click.echo(f"  expires {manifest['expires_at'] or 'never (no recordings in it)'}; "
               f"journal entry {result.journal_seq}")
    click.echo(f"  signed by {backup_mod.signer_fingerprint(manifest['signer'])} "
               "(write this down with the recovery key: kluis restore --signer checks it)")
    for name, why in result.pruned:
        click.echo(f"  removed {name}: {why}")


def _print_pushed(pushed: backup_targets.Pushed) -> None:
    if pushed.error:
        click.echo(f"error: deletions not pushed to {pushed.target}: {pushed.error}", err=True)
    elif pushed.skipped:
        click.echo(f"{pushed.target}: not reached ({pushed.skipped}); it gets the deletions when it is")
    elif pushed.journal_seq is not None or pushed.removed:
        click.echo(f"{pushed.target}: journal entry {pushed.journal_seq or '-'} with {pushed.deletions} "
                   f"deletion(s); {pushed.removed} stored copy(ies) of deleted recordings removed")
    else:
        click.echo(f"{pushed.target}: has every deletion")


@click.group(invoke_without_command=True)
@click.option("--data", "data_dir", envvar="KLUIS_DATA", type=click.Path(path_type=Path),
              help="The box's data directory (or $KLUIS_DATA).")
@click.option("--to", "targets", multiple=True,
              help="A backup target: a directory (the KLUIS-BACKUP disk, /media/kluis-backup/kluis) or a network "
                   "share sftp://USER@HOST[:PORT]/PATH. Give it again for a second target. Without --to: the "
                   "targets of [backup] in kluis.toml (the disk when it is plugged in, and the network target).")
@click.option("--only", type=click.Choice([backup_targets.DISK, backup_targets.NETWORK]),
              help="Without --to: only the configured target of this kind.")
@click.option("--due", is_flag=True,
              help="Without --to: back up to the network target only when today's backup there is due "
                   "([backup] network_time); otherwise only bring it the deletions made since (its timer).")
@click.option("--keep", type=int, default=None,
              help="Keep at most this many backups on the target (expired ones go sooner) [default: [backup] "
                   "keep, 7].")
@click.option("--link", is_flag=True, hidden=True,
              help="No effect: every backup on a target shares its footage store (kept for older timers).")
@click.pass_context
def backup(ctx: click.Context, data_dir: Path | None, targets: tuple[str, ...], only: str | None, due: bool,
           keep: int | None, link: bool) -> None:
    """Write an encrypted, signed backup of the box to each --to target (or each configured one), and
    rotate the older ones.

    Carries the catalog, the key slots, the configuration and keys, the audit log and every recording
    within its term (copied once to the target's footage store, still encrypted, verified there).
    Needs no login: run it from a timer. Subcommands check and list backups."""
    if ctx.invoked_subcommand is not None:
        return
    if data_dir is None:
        raise click.UsageError("kluis backup needs --data DIR")
    if targets and (only or due):
        raise click.UsageError("--only and --due choose among the configured targets: not with --to")
    failed: list[str] = []
    with Box(data_dir) as box:
        if not targets:
            _run_configured(box, only, due, keep, failed)
        for target in targets:
            try:
                result = backup_sftp.run_to(box, target, keep=keep or box.settings.backup.keep)
            except KluisError as exc:
                click.echo(f"error: {exc}", err=True)
                failed.append(target)
                continue
            _print_run(target, result, box.now_iso())
    if failed:
        raise KluisError(f"no backup made to {', '.join(failed)} (the audit log says why)")


def _run_configured(box: Box, only: str | None, due: bool, keep: int | None, failed: list[str]) -> None:
    """`kluis backup` without --to: each configured target in turn, each reported on its own."""
    if not backup_targets.configured(box, only):
        if due:  # the network unit's timer on a box without a network target: nothing to do
            click.echo("no network backup target is configured ([backup] network)")
            return
        raise KluisError("no backup target is configured ([backup] disk and network in kluis.toml); "
                         "give one with --to")
    if due and (only in (None, backup_targets.NETWORK)) and not backup_targets.network_due(box):
        for pushed in backup_targets.push(box, only=backup_targets.NETWORK):
            _print_pushed(pushed)
            if pushed.error:
                failed.append(pushed.target.where)
        click.echo("network backup: not due yet (today's is made)")
        if only == backup_targets.NETWORK:
            return
        only = backup_targets.DISK
    for outcome in backup_targets.run_all(box, only, keep=keep):
        if outcome.skipped:
            click.echo(f"{outcome.target}: skipped ({outcome.skipped})")
        elif outcome.error:
            click.echo(f"error: {outcome.error}", err=True)
            failed.append(outcome.target.where)
        else:
            assert outcome.result is not None
            _print_run(outcome.target.where, outcome.result, box.now_iso())


@backup.command("verify")
@from_option
@signer_option
@click.option("--data", "box_dir", type=click.Path(path_type=Path),
              help="Hold the backups to this box's signing key.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def verify(source: Path, signer: str | None, box_dir: Path | None, as_json: bool) -> None:
    """Check every backup on a target without any secret: signatures, hashes, the deletion journal."""
    journal, checks = backup_mod.verify_target(source, resolve_signer(source, signer, box_dir))
    if as_json:
        emit_json({"journal": {"entries": len(journal.entries), "problems": journal.problems},
                   "backups": [{"name": c.name, "ok": c.ok, "problems": c.problems} for c in checks]})
    else:
        click.echo(f"journal: {len(journal.entries)} entr{'y' if len(journal.entries) == 1 else 'ies'}, "
                   + ("ok" if journal.ok else journal.problems[0]))
        for check in checks:
            click.echo(f"{check.name}: " + ("ok" if check.ok else "; ".join(check.problems)))
    bad = [c for c in checks if not c.ok]
    if not checks:
        raise KluisError(f"no Kluis backup in {source}")
    if bad or not journal.ok:
        raise KluisError(f"{len(bad)} of {len(checks)} backup(s) damaged" + ("" if journal.ok else "; journal damaged"))


def _print_backups(info: dict) -> None:
    restores = info["restores"]
    click.echo(f"a restore now brings back {_say_footage(restores)} from {restores['backup']}" if restores
               else "a restore now brings back nothing: no backup here checks")
    for item in info["backups"]:
        click.echo(f"{item['name']}  {item['created_at']}  expires {item['expires_at'] or '-'}  "
                   f"{item['recordings']} recording(s)  {item['footage_days']} day(s)  {item['size']} bytes  "
                   f"{'ok' if item['ok'] else 'DAMAGED'}")


@backup.command("list")
@from_option
@click.option("--deep", is_flag=True, help="Hash every stored recording too (slow on a full disk).")
@shows(_print_backups)
def list_(source: Path, deep: bool) -> dict:
    """The backups on a target, newest first, with when they expire and how many days of footage a restore
    would bring back (less what the journal says was deleted since and what is past its term by now)."""
    from datetime import datetime, timezone

    from appliance.clock import to_iso

    return backup_mod.status(source, to_iso(datetime.now(timezone.utc)), deep=deep)


@backup.command("journal")
@data_option
@click.option("--to", "target", help="The backup target: a directory on the KLUIS-BACKUP disk or an sftp:// share.")
def journal(data_dir: Path, target: str | None) -> None:
    """Append the deletions made since the last entry to the target's signed journal (no backup)."""
    if target is None:
        raise click.UsageError("kluis backup journal needs --to TARGET (kluis backup push: every configured one)")
    with Box(data_dir) as box:
        entry = backup_sftp.journal_to(box, target)
    click.echo(f"journal entry {entry['seq']}: {len(entry['deletions'])} deletion(s)")


@backup.command("push")
@data_option
@click.option("--only", type=click.Choice([backup_targets.DISK, backup_targets.NETWORK]),
              help="Only the configured target of this kind.")
def push(data_dir: Path, only: str | None) -> None:
    """Bring every configured target that can be reached the deletions it lacks: a journal entry, and the
    stored copies of the deleted recordings removed (the sweep does this after it deleted something)."""
    with Box(data_dir) as box:
        if not backup_targets.configured(box, only):
            raise KluisError("no backup target is configured ([backup] disk and network in kluis.toml)")
        results = backup_targets.push(box, only=only, force=True)
    for pushed in results:
        _print_pushed(pushed)
    if any(p.error for p in results):
        raise KluisError("the deletions did not reach every target (tried again after the next sweep)")


@backup.command("ssh-key")
@data_option
def ssh_key(data_dir: Path) -> None:
    """Make the box's login key for a network target (once; kept in keys/) and print its public half, to
    put in the server's authorized_keys."""
    with Box(data_dir) as box:
        click.echo(backup_sftp.login_key(box), nl=False)


@click.command()
@click.option("--data", "data_dir", required=True, type=click.Path(path_type=Path),
              help="The new, empty data directory to restore into.")
@from_option
@click.option("--backup", "name", help="Restore this backup (default: the newest one that verifies).")
@click.option("--user", help="A keeper in the backup (default: the user made at init).")
@click.option("--password-file", type=click.Path(path_type=Path), help="That keeper's password (first line).")
@click.option("--recovery-key-file", type=click.Path(path_type=Path), help="Open with the recovery key instead.")
@signer_option
# Kept for scripts that pass it: every backup restores now, and the sweep after the restore deletes what is
# past its term (docs/backup.md).
@click.option("--include-expired", is_flag=True, hidden=True,
              help="Accepted and ignored: a backup past its expiry date restores anyway.")
def restore(data_dir: Path, source: Path, name: str | None, user: str | None, password_file: Path | None,
            recovery_key_file: Path | None, signer: str | None, include_expired: bool) -> None:
    """Restore a backup onto a fresh box: verify, unlock, restore, replay later deletions, delete what is
    past its term by now, audit."""
    recovery = read_secret_file(recovery_key_file) if recovery_key_file is not None else None
    password = None if recovery is not None else ask_password(password_file, f"Password for {user or 'the keeper'}")
    result = restore_mod.restore(source, data_dir, user=user, password=password, recovery_key=recovery, name=name,
                                signer=resolve_signer(source, signer))
    for skipped, why in result.skipped:
        click.echo(f"skipped {skipped}: {why}")
    click.echo(f"restored {result.name} into {data_dir}: {result.recordings} recording(s); "
               f"{result.replayed} deleted again and {result.recorded} deletion record(s) added from the journal; "
               f"{result.expired} past their term by now deleted")


COMMANDS = [backup, restore]
