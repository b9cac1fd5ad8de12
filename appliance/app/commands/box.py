"""kluis init, import, list, verify, cat: the vault's commands."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from appliance import audit, byte_ranges, footage, roles
from appliance.box import Box, init_box
from appliance.clock import parse_time
from appliance.errors import KluisError
from appliance.purposes import PURPOSES, parse_purpose
from appliance.catalog import RECORDING_COLUMNS
from appliance.config_models import TOTP_REQUIRED_NEW_BOX
from appliance.keys import KDF_PROFILES
from .common import (
    act, acting_user, ask_password, data_option, secret_options, shows, table, with_box,
)

# appliance.recordings loads PyAV (some 60 ms): import and verify, which use it, import it when they run,
# so that `kluis list`, `kluis cat` and every --help start without it.


@click.command()
@data_option
@click.option("--admin", default="admin", show_default=True, help="Name of the first user, the keeper.")
@click.option("--password-file", type=click.Path(path_type=Path), help="The keeper's password (first line).")
@click.option("--kdf-profile", type=click.Choice(sorted(KDF_PROFILES)), default="moderate", show_default=True,
              help="Argon2id cost for key slots.")
@click.option("--totp-required", default=",".join(TOTP_REQUIRED_NEW_BOX), show_default=True,
              help="Roles that must log in with a second factor (TOTP), comma-separated; \"\" for none.")
def init(data_dir: Path, admin: str, password_file: Path | None, kdf_profile: str, totp_required: str) -> None:
    """Create a box: data directory, configuration, catalog, keys and the keeper."""
    required = [r.strip() for r in totp_required.split(",") if r.strip()]
    unknown = [r for r in required if r not in roles.PERMISSIONS]
    if unknown:
        raise click.UsageError(f"--totp-required: unknown role(s) {', '.join(unknown)} "
                               f"(roles: {', '.join(roles.PERMISSIONS)})")
    password = ask_password(password_file, f"New password for {admin}", confirm=True)
    box, recovery_key = init_box(data_dir, admin, password, kdf_profile, totp_required=required)
    box.close()
    click.echo(f"Initialized Kluis in {data_dir} with keeper {admin!r}.")
    click.echo("Recovery key: write it on paper and keep it in a safe place. It is shown only this once;")
    click.echo("with it, anyone can open every recording on this box.")
    click.echo(f"  {recovery_key}")
    if required:
        click.echo(f"Second factor (TOTP) required for: {', '.join(required)} ([security] totp_required). "
                   f"Log in to the web UI once to set it up before using the command line.")


@click.command("import")
@data_option
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--camera", required=True, help="Serial of the camera the files come from.")
@click.option("--officer", required=True, help="The officer who wore the camera.")
@click.option("--start", required=True, help="Start of the recording, ISO 8601 (no zone: the box's time zone).")
@click.option("--end", help="End of the recording (default: start plus the video's length).")
@click.option("--pre-record", "pre_record_s", type=int, help="Seconds of pre-record buffer in the file.")
@click.option("--post-record", "post_record_s", type=int, help="Seconds recorded on after stop.")
@click.option("--allow-duplicate", is_flag=True, help="Store a file again even if it was imported before.")
@secret_options
def import_(data_dir: Path, files: tuple[Path, ...], camera: str, officer: str, start: str, end: str | None,
            pre_record_s: int | None, post_record_s: int | None, allow_duplicate: bool, user: str | None,
            password_file: Path | None, recovery_key_file: Path | None) -> None:
    """Import video files from a camera's USB storage, encrypting while reading (the keeper's work).

    Prints each new recording's id, one line per file. A file imported before is reported on stderr
    and skipped."""
    from appliance import recordings

    with Box(data_dir) as box:
        tz = box.settings.box.timezone
        start_t = parse_time(start, tz)
        end_t = parse_time(end, tz) if end else None
        for path in files:
            if not path.is_file():
                raise KluisError(f"{path}: not a file")
        actor = act(box, "import", user, password_file, recovery_key_file)
        for path in files:
            result = recordings.import_file(
                box, path, camera=camera, officer=officer, start=start_t, end=end_t,
                pre_record_s=pre_record_s, post_record_s=post_record_s, allow_duplicate=allow_duplicate,
                actor=actor.name,
            )
            if result.duplicate:
                click.echo(f"{path}: imported before as {result.recording_id}; skipped "
                           "(--allow-duplicate stores it again)", err=True)
            else:
                click.echo(result.recording_id)


@click.command("list")
@with_box
@shows(table(["id", "camera_serial", "officer", "start_time", "end_time", "size", "state"]))
@secret_options
def list_(box: Box, user: str | None, password_file: Path | None, recovery_key_file: Path | None) -> list[dict]:
    """List the recordings the acting user may see (as on the web UI's Opnames page)."""
    actor = act(box, "list", user, password_file, recovery_key_file)
    where, params = roles.scope_sql(actor.user) if actor.user else ("1", [])
    return list(box.catalog.db.query(
        f"SELECT {', '.join('r.' + c for c in RECORDING_COLUMNS)} FROM recordings r WHERE {where} "
        "ORDER BY r.start_time, r.id", params))


@click.command()
@with_box
@secret_options
@click.option("--deep/--no-deep", default=None,
              help="Also check every chunk's authentication tag (needs a password or the recovery key). "
                   "Default: deep when a password file or recovery key file is given.")
def verify(box: Box, user: str | None, password_file: Path | None, recovery_key_file: Path | None,
           deep: bool | None) -> None:
    """Check every recording; list the damaged or missing ones and exit non-zero if any (like restic check)."""
    from appliance import recordings

    if deep is None:
        deep = password_file is not None or recovery_key_file is not None
    # Checking chunk tags needs the box key but shows no footage: any user whose slot opens it may.
    identity = act(box, "verify --deep", user, password_file, recovery_key_file, need_key=True).identity \
        if deep else None
    removed = box.vault.cleanup(box.catalog.stored_paths())
    if removed:
        click.echo(f"removed {removed} leftover(s) of interrupted writes")
    problems = recordings.verify(box, identity)
    count = len(box.catalog.list_recordings())
    audit.record(box.catalog, actor=acting_user(box, user), action="verify", client="cli", clock=box.clock,
                 details={"recordings": count, "problems": len(problems), "deep": deep})
    for problem in problems:
        click.echo(f"{problem.recording_id}: {problem.what}")
    what = "hashes and every chunk's tag" if deep else "hashes"
    if problems:
        raise click.ClickException(f"{len(problems)} of {count} recording(s) damaged or missing ({what} checked)")
    click.echo(f"ok: {count} recording(s), {what} checked")


def parse_range(text: str | None, size: int) -> tuple[int, int]:
    """--range as the web player's Range header is read (appliance.byte_ranges): a half-open [start, end)."""
    return byte_ranges.parse(text, size)


@click.command()
@with_box
@click.argument("recording_id")
@click.option("--range", "byte_range", help="Bytes START-END (inclusive), START- or -LAST.")
@click.option("--purpose", required=True,
              help=f"Why the recording is opened (recorded in the audit log): {', '.join(PURPOSES)}.")
@click.option("--case", "case_ref", help="Case reference (zaaknummer) the purpose belongs to.")
@secret_options
def cat(box: Box, recording_id: str, byte_range: str | None, purpose: str, case_ref: str | None,
        user: str | None, password_file: Path | None, recovery_key_file: Path | None) -> None:
    """Decrypt a recording (or a byte range of it) to stdout.

    Needs a role that views footage (roles.RECORDINGS_VIEW), a purpose that role may name, and the
    recording in the user's scope; all checked before the password is asked."""
    code = parse_purpose(purpose)
    recording = box.catalog.get_recording(recording_id)
    start, end = parse_range(byte_range, recording["size"])
    try:
        footage.check_viewing(box, None, recording, code, case_ref)  # the case reference, before any password
    except footage.Refused as refused:
        if refused.why != footage.CASE_REF:
            raise
        raise KluisError(f"viewing for {code} needs the case reference: --case REF (e.g. the report's number)") \
            from None

    def may_view(row: dict) -> None:
        footage.check_viewing(box, row, recording, code, case_ref)

    actor = act(box, "cat", user, password_file, recovery_key_file, need_key=True, check=may_view,
                recording_id=recording_id)
    # The gate puts the purpose on record before the first byte leaves the box.
    opened = footage.open_for_viewing(box, actor.user, recording_id, code, case_ref, identity=actor.identity,
                                      action="range_read" if byte_range else "view", client="cli",
                                      actor=actor.name, break_glass=actor.break_glass,
                                      details={"start": start, "end": end, "recovery_key": actor.break_glass})
    out = sys.stdout.buffer
    for block in opened.read_range(start, end):
        out.write(block)
    out.flush()


COMMANDS = [init, import_, list_, verify, cat]
