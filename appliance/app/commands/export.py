"""kluis export: handovers to police and prosecutor (appliance/handover.py, appliance/package.py,
appliance/package_verify.py).

prepare and approve are two people (four eyes); both checks (role, scope, same person, state) come
before a password is asked, and a refused attempt is in the audit log. verify needs no box at all: it is
what the receiver runs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from appliance import audit, handover, roles
from appliance.box import Box
from appliance.clip_window import parse_offset
from appliance.errors import KluisError
from appliance.purposes import PURPOSES
from .common import act, acting_user, data_option, emit_json, print_table, read_secret_file, secret_options, with_box


@click.group()
def export() -> None:
    """Handovers to police and prosecutor: prepare, approve (a second person), verify a package."""


def _act(box: Box, command: str, user: str | None, password_file, recovery_key_file, recording_ids: list[str],
         case_ref: str | None = None, **kwargs):
    """common.act, with a refused role on record too (act itself refuses before any password)."""
    if recovery_key_file is not None:
        raise handover.deny(box, acting_user(box, user), command, "a handover is done by named people (four "
                            "eyes), not with the recovery key", recording_ids, case_ref=case_ref, client="cli")
    try:
        return act(box, command, user, password_file, recovery_key_file, **kwargs)
    except roles.Forbidden as exc:
        if not isinstance(exc, handover.Denied):
            with box.catalog.transaction():
                for recording_id in recording_ids or (None,):
                    audit.record(box.catalog, actor=acting_user(box, user), action="handover_denied",
                                 recording_id=recording_id, case_ref=case_ref, client="cli", clock=box.clock,
                                 details={"step": command, "reason": str(exc)})
        raise


@export.command("prepare")
@data_option
@click.argument("recording_ids", nargs=-1, required=True)
@click.option("--receiver", required=True,
              help="The receiving party: organisation, unit, name, official number.")
@click.option("--basis", required=True,
              help="Legal basis: 'vordering art. ... Sv' or 'vrijwillige verstrekking'.")
@click.option("--case", "case_ref", required=True, help="Case reference, e.g. the police report number.")
@click.option("--purpose", required=True, help=f"Purpose: {', '.join(p for p in PURPOSES if p != 'training')}.")
@click.option("--age-recipient", help="The receiver's age public key (age1...): the package is encrypted to it.")
@click.option("--passphrase", "use_passphrase", is_flag=True,
              help="The receiver has no key: a passphrase is made at approval and shown once.")
@click.option("--unencrypted", is_flag=True, help="An unencrypted package (on record; the approver must confirm).")
@click.option("--from", "from_t", help="Cut a time window: start (seconds into the recording, HH:MM:SS or ISO time).")
@click.option("--to", "to_t", help="End of the time window.")
@secret_options
def prepare(data_dir: Path, recording_ids: tuple[str, ...], receiver: str, basis: str, case_ref: str, purpose: str,
            age_recipient: str | None, use_passphrase: bool, unencrypted: bool, from_t: str | None, to_t: str | None,
            user: str | None, password_file: Path | None, recovery_key_file: Path | None) -> None:
    """Prepare a handover of one or more recordings; prints its id. A second person approves it."""
    chosen = [name for name, on in (("age-recipient", bool(age_recipient)), ("passphrase", use_passphrase),
                                    ("none", unencrypted)) if on]
    if len(chosen) != 1:
        raise KluisError("choose exactly one protection: --age-recipient KEY, --passphrase or --unencrypted")
    if (from_t is None) != (to_t is None):
        raise KluisError("a time window needs both --from and --to")
    ids = list(dict.fromkeys(recording_ids))
    with Box(data_dir) as box:
        clip = None
        if from_t is not None and to_t is not None:  # both or neither, checked above
            if len(ids) != 1:
                raise KluisError("--from/--to cut one recording: name exactly one")
            recording = box.catalog.get_recording(ids[0])
            tz = box.settings.box.timezone
            start, end = parse_offset(from_t, recording, tz), parse_offset(to_t, recording, tz)
            if start is None or end is None:
                raise KluisError("a time window needs both --from and --to")
            clip = {ids[0]: (start, end)}

        def may_prepare(row: dict) -> None:
            for recording_id in ids:
                recording = box.catalog.get_recording(recording_id)
                if not roles.recording_in_scope(box.catalog, row, recording):
                    raise handover.deny(box, row["name"], "prepare", f"{row['name']} may not hand over recording "
                                        f"{recording_id}: not in their scope", ids, case_ref=case_ref, client="cli")

        actor = _act(box, "export prepare", user, password_file, recovery_key_file, ids, case_ref, check=may_prepare)
        handover_id = handover.prepare(box, actor.name, ids, receiver, basis, case_ref, purpose, chosen[0],
                                       age_recipient=age_recipient, clip=clip, client="cli")
    click.echo(handover_id)


@export.command("approve")
@data_option
@click.argument("handover_id")
@click.option("--out", "out", required=True, type=click.Path(path_type=Path),
              help="Where to write the package (an age-encrypted ZIP); must not exist yet.")
@click.option("--unencrypted", is_flag=True,
              help="Confirm writing an unencrypted ZIP, for a handover prepared with --unencrypted.")
@secret_options
def approve(data_dir: Path, handover_id: str, out: Path, unencrypted: bool, user: str | None,
            password_file: Path | None, recovery_key_file: Path | None) -> None:
    """Approve a prepared handover (a second person) and write its package to --out."""
    with Box(data_dir) as box:
        found = handover.get(box, handover_id)
        if out.exists():
            raise KluisError(f"{out} exists already; choose another --out")

        def may_approve(row: dict) -> None:
            handover.check_approver(box, found, row["name"], "approve", "cli")

        actor = _act(box, "export approve", user, password_file, recovery_key_file, found["recording_ids"],
                     found["case_ref"], need_key=True, check=may_approve)
        result = handover.approve(box, handover_id, actor.name, actor.identity, out, unencrypted=unencrypted,
                                  client="cli")
    click.echo(f"handover {handover_id} approved by {actor.name}"
               + (" (single approval: the preparer approved it alone)" if result["single_approval"] else ""))
    click.echo(f"package: {out} ({result['package_size']} bytes, {result['protection']})")
    click.echo(f"package SHA-256:  {result['package_sha256']}")
    click.echo(f"manifest SHA-256: {result['manifest_sha256']}")
    for file in result["files"]:
        click.echo(f"  {file['sha256']}  {file['name']}")
    if result["passphrase"]:
        click.echo("Passphrase, shown only this once (it is stored nowhere): give it to the receiver by another "
                   "channel than the package:")
        click.echo(f"  {result['passphrase']}")


def _close(box: Box, command: str, handover_id: str, reason: str, user, password_file, recovery_key_file) -> str:
    found = handover.get(box, handover_id)
    step = command.split()[1]

    def may_close(row: dict) -> None:
        if step == "refuse" or row["name"] != found["prepared_by"]:
            handover.check_approver(box, found, row["name"], step, "cli")

    actor = _act(box, command, user, password_file, recovery_key_file, found["recording_ids"], found["case_ref"],
                 check=may_close)
    (handover.refuse if step == "refuse" else handover.cancel)(box, handover_id, actor.name, reason, client="cli")
    return actor.name


def _closing_command(command: str, done: str, why: str, doc: str):
    """`kluis export refuse` and `kluis export cancel`: the same form, each its own step (see _close)."""

    @export.command(command.split()[1], help=doc)
    @with_box
    @click.argument("handover_id")
    @click.option("--reason", required=True, help=why)
    @secret_options
    def close(box: Box, handover_id: str, reason: str, user, password_file, recovery_key_file) -> None:
        name = _close(box, command, handover_id, reason, user, password_file, recovery_key_file)
        click.echo(f"handover {handover_id} {done} by {name}")

    return close


refuse = _closing_command("export refuse", "refused", "Why the handover is refused (on record).",
                          "Refuse a prepared handover (the approver declines it).")
cancel = _closing_command("export cancel", "cancelled", "Why the handover is withdrawn (on record).",
                          "Withdraw a handover that was not approved yet (the preparer, or an approver).")


@export.command("list")
@with_box
@click.option("--recording", "recording_id", help="Only the handovers of this recording.")
@click.option("--state", type=click.Choice(handover.STATES), help="Only handovers in this state.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@secret_options
def list_(box: Box, recording_id: str | None, state: str | None, as_json: bool, user, password_file,
          recovery_key_file) -> None:
    """The handover register: newest first."""
    actor = _act(box, "export list", user, password_file, recovery_key_file, [])
    # The same rule as the web register (/overdrachten): one domain function.
    rows = handover.visible_handovers(box, actor.user, recording_id=recording_id, state=state)
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        row["recordings"] = len(row["items"])
    print_table(rows, ["id", "state", "case_ref", "purpose", "prepared_by", "approved_by", "recordings", "receiver"])


@export.command("register")
@with_box
@click.option("--csv", "as_csv", is_flag=True, required=True, help="Write the register as CSV.")
@click.option("--out", type=click.Path(path_type=Path), help="Write to this file instead of stdout.")
@secret_options
def register(box: Box, as_csv: bool, out: Path | None, user, password_file, recovery_key_file) -> None:
    """Export the handover register (overdrachtsregister) as CSV."""
    actor = _act(box, "export register", user, password_file, recovery_key_file, [])
    if actor.user is not None and roles.SCOPES.get(actor.user["role"]) == roles.SCOPE_TEAM:
        raise handover.deny(box, actor.name, "register", f"{actor.name}: the whole register is for the privacy "
                            "officer and the auditor; use kluis export list", [], client="cli")
    count = handover.register_csv(box, out if out is not None else sys.stdout, actor=actor.name, client="cli")
    if out is not None:
        click.echo(f"{count} handover(s) written to {out}", err=True)


@export.command("box-key")
@with_box
def box_key(box: Box) -> None:
    """Print the box's Ed25519 signing key (hex), which signs every package's manifest: give it to the
    receiver by another channel, for `kluis export verify --box-key`. Public: no login."""
    click.echo(box.catalog.get_meta("signing_public_key"))


@export.command("custody")
@with_box
@click.option("--recording", "recording_id", help="The recording (also one deleted since: its deletion record).")
@click.option("--case", "case_ref", help="A case reference: every recording and event under it.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The report as PDF; its signed JSON is written beside it (same name, .json).")
@secret_options
def custody_report(box: Box, recording_id: str | None, case_ref: str | None, out: Path, user, password_file,
                   recovery_key_file) -> None:
    """The chain-of-custody report of a recording or a case: identity, hashes, camera, officer, clock, and
    every event from the audit log, signed by the box; check it with `kluis export verify OUT.json`."""
    from appliance import custody

    actor = act(box, "export custody", user, password_file, recovery_key_file, recording_id=recording_id)
    report, pdf = custody.build(box, recording_id=recording_id, case_ref=case_ref, actor=actor.name, client="cli")
    out.write_bytes(pdf)
    out.with_suffix(".json").write_bytes(custody.to_json(report))
    click.echo(f"custody report: {len(report['recordings'])} recording(s), {len(report['events'])} event(s); "
               f"written to {out} and {out.with_suffix('.json')}")


@export.command("verify")
@click.argument("package_path", metavar="FILE_OR_DIR", type=click.Path(exists=True, path_type=Path))
@click.option("--identity", "identity_files", multiple=True, type=click.Path(path_type=Path),
              help="An age identity file (AGE-SECRET-KEY-1...), for a package encrypted to a key.")
@click.option("--passphrase-file", type=click.Path(path_type=Path),
              help="The passphrase (first line), for a package encrypted to a passphrase.")
@click.option("--box-key", help="The box's Ed25519 signing key (hex), as known from elsewhere: the manifest "
                                "must be signed by exactly this key.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def verify(package_path: Path, identity_files: tuple[Path, ...], passphrase_file: Path | None,
           box_key: str | None, as_json: bool) -> None:
    """Check a handover package (age-encrypted file, ZIP or unpacked folder): the signature over the
    manifest and every file's SHA-256; or a custody report (its .json, or its .pdf with the .json beside
    it): the box's signature, every event's own signature, the PDF's hash. Exits non-zero and says what is
    wrong if anything is."""
    from appliance import agecrypt, custody, package_verify

    if package_path.is_file() and custody.is_report(package_path):
        checked = custody.verify(package_path, box_key)
        _verdict(as_json, checked.ok, checked.ok_lines, checked.problems, None,
                 {"subject": (checked.report or {}).get("subject")}, "custody report",
                 "its signature, every event and the PDF are as the box made them")
        return

    identities = [line for path in identity_files for line in agecrypt.read_identities(path)]
    passphrase = read_secret_file(passphrase_file) if passphrase_file is not None else None
    report = package_verify.verify(package_path, identities, passphrase, box_key)
    manifest = report.manifest or {}
    if manifest and not as_json:
        click.echo(f"handover {manifest.get('handover_id')} from {(manifest.get('box') or {}).get('name')}, "
                   f"case {manifest.get('case_ref')}, to {manifest.get('receiver')}")
    _verdict(as_json, report.ok, report.ok_lines, report.problems, report.notes,
             {"handover_id": manifest.get("handover_id")}, "package", "every hash and the signature are right")


def _verdict(as_json: bool, ok: bool, ok_lines: list[str], problems: list[str], notes: list[str] | None, extra: dict,
             what: str, good: str) -> None:
    """What `kluis export verify` says of a package or a report: JSON, or a line per check; non-zero if bad."""
    if as_json:
        emit_json({"ok": ok, "problems": problems, "checked": ok_lines, **({"notes": notes} if notes is not None else {}),
                   **extra})
    else:
        for prefix, lines in (("note: ", notes or []), ("ok:  ", ok_lines), ("BAD: ", problems)):
            for line in lines:
                click.echo(prefix + line)
    if not ok:
        raise click.ClickException(f"the {what} does NOT verify: {len(problems)} problem(s)")
    if not as_json:
        click.echo(f"the {what} verifies: {good}")

COMMANDS = [export]
