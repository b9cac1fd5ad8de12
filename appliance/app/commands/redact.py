"""kluis redact: a redacted derivative of a recording (faces blurred, audio muted), for a request."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from appliance import jobs, redaction, roles
from appliance.box import Box
from appliance.errors import KluisError
from .common import act, secret_options, with_box


@click.command()
@with_box
@click.argument("recording_id")
@click.option("--keep", multiple=True, metavar="X,Y,W,H",
              help="A region whose faces stay visible (the requester), in pixels; repeatable. "
                   "START-END:X,Y,W,H limits it to a time range.")
@click.option("--mute", multiple=True, metavar="START-END", help="Silence the audio in this range (seconds); repeatable.")
@click.option("--box", "boxes", multiple=True, metavar="[LABEL:]T:X,Y,W,H",
              help="Blur this box from time T (seconds); boxes with one LABEL form a track, moved linearly "
                   "between them and followed by a tracker after the last; a box of size 0 ends a track. Repeatable.")
@click.option("--no-faces", is_flag=True, help="Do not detect faces: blur only the --box regions.")
@click.option("--purpose", required=True,
              help=f"Why the derivative is made (its hold and the audit log): {', '.join(redaction.PURPOSES)}.")
@click.option("--case", "case_ref", help="Case reference the derivative is held for (default: the request's, "
                                         "or redactie-ID).")
@click.option("--request", "request_ref", help="The request in the register this answers (e.g. VZ-2026-0001).")
@click.option("--reason", default="", help="Why, in words (the redaction log).")
@click.option("--quiet", is_flag=True, help="No progress on stderr.")
@secret_options
def redact(box: Box, recording_id: str, keep: tuple[str, ...], mute: tuple[str, ...], boxes: tuple[str, ...],
           no_faces: bool, purpose: str, case_ref: str | None, request_ref: str | None, reason: str, quiet: bool,
           user: str | None, password_file: Path | None, recovery_key_file: Path | None) -> None:
    """Make a redacted copy of a recording and print its id when the job is done.

    Faces are blurred except in --keep regions, --box regions are blurred, --mute ranges are silenced.
    The copy is a new recording (encrypted, linked to the original, held for the purpose and case);
    the redaction log is in the audit log. Needs recordings.redact (privacy officer)."""
    code = redaction.redaction_purpose(purpose)  # before the password is asked
    plan = redaction.make_plan(list(keep), list(boxes), list(mute), detect_faces=not no_faces)
    recording = box.catalog.get_recording(recording_id)
    if recording.get("state") != "stored":
        raise KluisError(f"recording {recording_id} is {recording.get('state')}: it cannot be redacted")

    def in_scope(row: dict) -> None:
        if not roles.recording_in_scope(box.catalog, row, recording):
            raise roles.Forbidden(f"{row['name']} (role {row['role']}) may not redact recording {recording_id}: "
                                  "not in their scope")

    actor = act(box, "redact", user, password_file, recovery_key_file, need_key=True, check=in_scope,
                recording_id=recording_id)
    job_id = redaction.start_job(box, actor.identity, recording_id, plan, actor=actor.name, purpose=code,
                                 case_ref=case_ref, reason=reason, client="cli", request_ref=request_ref,
                                 break_glass=actor.break_glass)
    if not quiet:
        click.echo(f"job {job_id}: redacting {recording_id}", err=True)
    runner = jobs.runner_for(box)
    future = runner.futures[job_id]
    last = None
    while not future.done():
        time.sleep(0.5)
        if not quiet:
            job = jobs.get(box.catalog, job_id)
            shown = (job["done"], job["total"])
            if shown != last and job["total"]:
                last = shown
                click.echo(f"\r  {job['done']}/{job['total']} frames ({100 * job['fraction']:.0f}%)", err=True,
                           nl=False)
    if not quiet and last:
        click.echo("", err=True)
    job = jobs.get(box.catalog, job_id)
    if job["state"] != jobs.DONE:
        raise KluisError(f"redaction failed: {job['error']}")
    result = job["result"]
    if not quiet:
        counts = result.get("counts", {})
        click.echo(f"  {counts.get('frames')} frames, {counts.get('frames_blurred')} with blurring, "
                   f"{counts.get('faces_detected')} face detections blurred, {counts.get('faces_kept')} kept, "
                   f"{counts.get('audio_muted_s')} s muted", err=True)
    click.echo(result["recording_id"])
    sys.stdout.flush()


COMMANDS = [redact]
