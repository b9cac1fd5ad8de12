"""kluis archive ...: the central archive's own commands (init, token, serve, list, show, export,
requisitions, alerts, witnessed checkpoints). The archive is a separate data directory, not a box."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from appliance.clock import parse_time, to_iso
from appliance.errors import KluisError
from appliance.keys import KDF_PROFILES
from appliance.purposes import parse_purpose
from .common import ask_password, emit_json, opened_with, print_table, read_secret_file, shows

TZ = "Europe/Amsterdam"

archive_data = click.option("--data", "data_dir", required=True, envvar="KLUIS_ARCHIVE_DATA",
                            type=click.Path(path_type=Path), help="The archive's data directory.")


def _open_archive(data_dir: Path):
    from sync.archive.store import Archive

    return Archive(data_dir)


with_archive = opened_with(_open_archive, archive_data)


def _time(text: str | None) -> str | None:
    return to_iso(parse_time(text, TZ)) if text else None


@click.group()
def archive() -> None:
    """The municipality's central archive (a server of its own)."""


@archive.command()
@archive_data
@click.option("--password-file", type=click.Path(path_type=Path), help="The operator's password (first line).")
@click.option("--kdf-profile", type=click.Choice(sorted(KDF_PROFILES)), default="moderate", show_default=True)
@click.option("--name", default="Centraal archief", show_default=True)
def init(data_dir: Path, password_file: Path | None, kdf_profile: str, name: str) -> None:
    """Create the archive: its X25519 key (wrapped under the operator's password and a recovery key),
    its Ed25519 receipt key and its HTTPS certificate."""
    from sync.archive.store import init_archive

    password = ask_password(password_file, "New operator password", confirm=True)
    opened, recovery_key = init_archive(data_dir, password, kdf_profile, name)
    with opened:
        click.echo(f"Initialized archive {opened.archive_id} in {data_dir}.")
        click.echo(f"  public key {opened.public_key.hex()}")
        click.echo(f"  certificate sha256 {opened.cert_fingerprint}")
    click.echo("Recovery key (shown only this once; write it down):")
    click.echo(f"  {recovery_key}")


@archive.command()
@with_archive
def token(archive) -> None:
    """Issue a one-time enrollment token for a box (it carries the certificate fingerprint to pin)."""
    click.echo(archive.new_token())


@archive.command()
@archive_data
@click.option("--listen", default="0.0.0.0:8443", show_default=True, help="HOST:PORT to serve HTTPS on.")
def serve(data_dir: Path, listen: str) -> None:
    """Serve the archive's HTTPS API until SIGTERM."""
    from sync.archive.server import serve as run

    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit():
        raise KluisError(f"--listen {listen!r}: use HOST:PORT")
    run(data_dir, host.strip("[]"), int(port))


@archive.command("list")
@with_archive
@click.option("--box", help="Box id or name.")
@click.option("--case", "case_ref", help="Case reference (zaaknummer).")
@click.option("--from", "start", help="Recorded at or after (ISO 8601).")
@click.option("--until", "end", help="Recorded before (ISO 8601).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_(archive, box: str | None, case_ref: str | None, start: str | None, end: str | None, as_json: bool) -> None:
    """Find evidence by box, case reference and time."""
    rows = archive.list_recordings(box, case_ref, _time(start), _time(end))
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        row["sha256"] = row["sha256"][:16]
    print_table(rows, ["sha256", "box_name", "recording_id", "camera_serial", "officer", "start_time",
                       "case_refs", "received_at"])


@archive.command()
@with_archive
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True)
def show(archive, ref: str, as_json: bool) -> None:
    """One recording: what the box said about it, its receipt, and the archive's log about it."""
    from appliance import audit

    row = archive.find(ref)
    row["audit"] = audit.entries(archive, recording_id=row["sha256"])
    if as_json:
        emit_json(row)
        return
    for key in ("sha256", "box_id", "recording_id", "camera_serial", "officer", "start_time", "end_time", "size",
                "received_at", "case_refs"):
        click.echo(f"{key:14} {row[key]}")
    for hold in row["metadata"].get("holds", []):
        click.echo(f"hold           {hold.get('purpose')} {hold.get('case_ref')} placed {hold.get('placed_at')}"
                   + (f" released {hold['released_at']}" if hold.get("released_at") else ""))
    click.echo(f"receipt        signed {row['receipt']['signature'][:32]}...")
    for entry in row["audit"]:
        click.echo(f"log            {entry['time']} {entry['actor']} {entry['action']}")


@archive.command()
@with_archive
@click.argument("ref")
@click.option("--purpose", required=True, help="Why it is opened (police_report, requisition, ...).")
@click.option("--case", "case_ref", required=True, help="Case reference.")
@click.option("--actor", required=True, help="Who opens it.")
@click.option("--out", "out_path", type=click.Path(path_type=Path), help="Write here (default: stdout).")
@click.option("--password-file", type=click.Path(path_type=Path), help="The operator's password (first line).")
@click.option("--recovery-key-file", type=click.Path(path_type=Path), help="Break-glass: the recovery key.")
def export(archive, ref: str, purpose: str, case_ref: str, actor: str, out_path: Path | None,
           password_file: Path | None, recovery_key_file: Path | None) -> None:
    """Decrypt a recording with the archive key, for a stated purpose (logged before the first byte)."""
    code = parse_purpose(purpose)
    row = archive.find(ref)
    if recovery_key_file is not None:
        identity = archive.unlock_recovery(read_secret_file(recovery_key_file))
    else:
        identity = archive.unlock(ask_password(password_file, "Operator password"))
    with archive.transaction():
        archive.audit(actor, "export", sha256=row["sha256"], purpose=code, case_ref=case_ref,
                      details={"box": row["box_id"], "recording_id": row["recording_id"],
                               "to": str(out_path) if out_path else "stdout"})
    out = open(out_path, "wb") if out_path else sys.stdout.buffer
    try:
        for block in archive.decrypt(identity, row["sha256"]):
            out.write(block)
    finally:
        if out_path:
            out.close()
        else:
            out.flush()


@archive.group()
def requisition() -> None:
    """Requisitions (vorderingen): footage the archive asks the boxes for."""


@requisition.command("add")
@with_archive
@click.option("--legal-basis", required=True, help="E.g. 'art. 126nd Sv'.")
@click.option("--case", "case_ref", required=True, help="Case reference.")
@click.option("--camera", help="Camera serial.")
@click.option("--officer", help="Officer.")
@click.option("--from", "start", help="Window start (ISO 8601).")
@click.option("--until", "end", help="Window end (ISO 8601).")
@click.option("--recording", "recording_id", help="A box's recording id instead of a window.")
@click.option("--by", "actor", default="operator", show_default=True, help="Who records the requisition.")
def requisition_add(archive, legal_basis, case_ref, camera, officer, start, end, recording_id, actor) -> None:
    """Record a requisition; boxes pick it up at their next sync."""
    req_id = archive.add_requisition(actor, legal_basis=legal_basis, case_ref=case_ref, camera_serial=camera,
                                     officer=officer, start_time=_time(start), end_time=_time(end),
                                     recording_id=recording_id)
    click.echo(req_id)


def _print_requisitions(rows: list[dict]) -> None:
    for row in rows:
        row["answers"] = "; ".join(f"{r['box_id']}: {len(r['matched'])}" for r in row["reports"]) or "-"
    print_table(rows, ["id", "case_ref", "camera_serial", "officer", "start_time", "end_time", "recording_id",
                       "closed_at", "answers"])


@requisition.command("list")
@with_archive
@shows(_print_requisitions)
def requisition_list(archive) -> list[dict]:
    """Requisitions with what each box reported."""
    return archive.requisitions()


@requisition.command("close")
@with_archive
@click.argument("req_id", type=int)
@click.option("--by", "actor", default="operator", show_default=True)
def requisition_close(archive, req_id: int, actor: str) -> None:
    """Close a requisition: boxes stop answering it."""
    archive.close_requisition(actor, req_id)


def _print_alerts(rows: list[dict]) -> None:
    for row in rows:
        row["message"] = row["details"].get("message") or row["details"].get("problem", "")
    print_table(rows, ["id", "created_at", "box_id", "kind", "message"])


@archive.command()
@with_archive
@shows(_print_alerts)
def alerts(archive) -> list[dict]:
    """Alerts: audit logs that went backwards or forked, refused checkpoints."""
    return archive.alerts()


@archive.command()
@with_archive
@click.argument("box_id")
@click.option("--export", "export_to", type=click.Path(path_type=Path),
              help="Write them to this file (JSON Lines), for `kluis audit verify --checkpoint FILE` on the box.")
def checkpoints(archive, box_id: str, export_to: Path | None) -> None:
    """The audit checkpoints of a box this archive witnessed: the copy outside the box that its log is held to."""
    from appliance import audit

    held = archive.witnessed_checkpoints(box_id)
    if export_to is not None:
        audit.export_checkpoints(held, export_to)
        click.echo(f"{len(held)} witnessed checkpoint(s) of box {box_id} written to {export_to}", err=True)
        return
    print_table([{"count": cp["count"], "head": cp["head"], "time": cp["time"],
                  "witnessed_at": cp["witness"]["witnessed_at"]} for cp in held],
                ["count", "time", "witnessed_at", "head"])


@archive.command("witness-restart")
@with_archive
@click.argument("box_id")
@click.option("--reason", required=True, help="Why (e.g. the box was restored from a backup of DATE); on record.")
@click.option("--actor", default="operator", show_default=True, help="Who restarts it, for the archive's log.")
def witness_restart(archive, box_id: str, reason: str, actor: str) -> None:
    """Witness a box's audit log afresh from its next checkpoint, after you found why it contradicts the last
    one witnessed (a box restored from a backup has an older log). Until then its checkpoints are kept but not
    witnessed. The earlier witnessed checkpoints stay, for `kluis archive checkpoints`."""
    seen = archive.restart_witness(box_id, actor, reason)
    was = f" (last witnessed: entries 1..{seen['count']} at {seen['witnessed_at']})" if seen else ""
    click.echo(f"the witness of box {box_id} restarts at its next checkpoint{was}")


COMMANDS = [archive]
