"""kluis requests add|list|show|link|unlink|close: access requests, objections and complaints of people who
were filmed (appliance/access_requests.py). The privacy officer's work (requests.manage); the web UI's
Verzoeken page calls the same functions."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

import click

from appliance import access_requests as ar
from appliance import request_letters
from appliance.box import Box
from appliance.clock import from_iso, parse_time
from appliance.errors import KluisError
from appliance.purposes import label as purpose_label
from .common import act, emit_json, print_table, secret_options, with_box

KIND_CHOICES = ["inzage", "bezwaar", "klacht"]


def local(box: Box, value: str | None) -> str:
    if not value:
        return ""
    return from_iso(value).astimezone(ZoneInfo(box.settings.box.timezone)).strftime("%Y-%m-%d %H:%M:%S")


def left(days: int) -> str:
    if days < 0:
        return f"{-days} day(s) overdue"
    return "due today" if days == 0 else f"{days} day(s) left"


def parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise KluisError(f"not a date: {text!r} (for example 2026-11-21)") from None


def recording_line(box: Box, row: dict) -> str:
    return (f"{row['id']}  {local(box, row['start_time'])} - {local(box, row['end_time'])[11:]}  "
            f"camera {row['camera_serial']}  officer {row['officer'] or '-'}")


@click.group("requests")
def requests_group() -> None:
    """Requests of people who were filmed: inzage (access), bezwaar (objection), klacht (complaint)."""


@requests_group.command("add")
@with_box
@click.option("--requester", required=True, help="Who asks (name as on the request).")
@click.option("--kind", required=True, type=click.Choice(KIND_CHOICES), help="inzage, bezwaar or klacht.")
@click.option("--received", required=True, help="Date the request came in (YYYY-MM-DD); the deadline counts from it.")
@click.option("--time", "given_time", required=True,
              help="Date and time the requester gave (ISO 8601; without a zone: the box's time zone).")
@click.option("--place", help="The place the requester gave, as they said it (noted).")
@click.option("--place-at", help="The place as a point on the map (\"52.0907, 5.1214\", a geo: URI or a map link): "
                                 "recordings with a location farther than the radius are left out.")
@click.option("--radius", "radius_m", type=click.IntRange(10, 50_000),
              help="Metres around --place-at (default: [requests] place_radius_m).")
@click.option("--camera", help="Only this camera (serial), if the requester could say.")
@click.option("--officer", help="Only this officer's recordings.")
@click.option("--window", "window", type=click.IntRange(0, 1440),
              help="Minutes either side of the time to search (default: [requests] window_minutes).")
@click.option("--contact", help="How to reach the requester.")
@click.option("--notes", help="Anything else about the request.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@secret_options
def requests_add(box: Box, requester: str, kind: str, received: str, given_time: str, place, place_at, radius_m,
                 camera, officer, window, contact, notes, as_json: bool, user, password_file,
                 recovery_key_file) -> None:
    """Register a request, find the recordings around the time given and hold them for it."""
    received_on = parse_date(received)
    moment = parse_time(given_time, box.settings.box.timezone)
    actor = act(box, "requests add", user, password_file, recovery_key_file)
    done = ar.register(box, requester=requester, kind=kind, received_on=received_on, given_time=moment,
                       actor=actor.name, place=place, camera=camera, officer=officer, contact=contact, notes=notes,
                       window_minutes=window, place_at=place_at, radius_m=radius_m, client="cli")
    req = done.request
    if as_json:
        emit_json({"request": req, "found": done.matches, "holds": done.held, "place_note": done.place_note,
                   "left_out_by_place": done.elsewhere})
        return
    click.echo(f"request {req['ref']} (id {req['id']}): {purpose_label(req['kind'], 'en')}, received "
               f"{req['received_on']}, deadline {req['deadline']} ({left(ar.days_left(box, req))})")
    click.echo(f"searched {req['window_minutes']} min either side of {local(box, req['given_time'])}"
               + (f", camera {camera}" if camera else "") + (f", officer {officer}" if officer else ""))
    if done.place_note:
        click.echo(f"place {place_at or place!r}: {done.place_note}")
    for row in done.elsewhere:
        click.echo(f"left out {recording_line(box, row)}  ({row['distance_m']} m away)")
    for row in done.matches:
        extra = f"  (clock uncertainty {row['uncertainty_s']:.0f} s)" if row["uncertainty_s"] else ""
        click.echo(f"held  {recording_line(box, row)}{extra}")
    click.echo(f"{len(done.matches)} recording(s) found and held for {req['ref']}"
               if done.matches else "no recordings found: none held (link one with `kluis requests link`)")


@requests_group.command("list")
@with_box
@click.option("--all", "show_all", is_flag=True, help="Closed requests too.")
@click.option("--search", "text", help="Only requests whose reference or requester contains this.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@secret_options
def requests_list(box: Box, show_all: bool, text: str | None, as_json: bool, user, password_file,
                  recovery_key_file) -> None:
    """The register: open requests by deadline (with --all, closed ones after them)."""
    act(box, "requests list", user, password_file, recovery_key_file)
    rows = ar.list_requests(box, None if show_all else "open", text)
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        row["kind"] = purpose_label(row["kind"], "en")
        row["left"] = left(row["days_left"]) if row["status"] == "open" else row["outcome"]
    print_table(rows, ["id", "ref", "kind", "requester", "received_on", "deadline", "left", "linked", "status"])


@requests_group.command("show")
@with_box
@click.argument("request")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@secret_options
def requests_show(box: Box, request: str, as_json: bool, user, password_file, recovery_key_file) -> None:
    """One request (id or reference) with its recordings."""
    act(box, "requests show", user, password_file, recovery_key_file)
    req = ar.get(box, request)
    linked = ar.links(box, req["id"])
    if as_json:
        emit_json({"request": {**req, "days_left": ar.days_left(box, req)}, "recordings": linked})
        return
    click.echo(f"{req['ref']} (id {req['id']}): {purpose_label(req['kind'], 'en')} of {req['requester']}")
    click.echo(f"received {req['received_on']}, deadline {req['deadline']}"
               + (f" ({left(ar.days_left(box, req))})" if req["status"] == "open" else ""))
    if req["extension_months"]:
        click.echo(f"extended by {req['extension_months']} month(s) from {req['original_deadline']}: "
                   f"{req['extension_reason']}")
    click.echo(f"time given {local(box, req['given_time'])}, place {req['place'] or '-'}"
               + (f" (point {req['place_lat']}, {req['place_lon']}, within {req['place_radius_m']} m)"
                  if req["place_lat"] is not None else ""))
    status = req["status"] + (f": {req['outcome']} ({req['decision_ref'] or 'no decision reference'})"
                              if req["status"] == "closed" else "")
    click.echo(f"status {status}")
    derived = ar.derivatives(box, [item["recording_id"] for item in linked])
    for item in linked:
        rec = item["recording"]
        what = recording_line(box, rec) if rec else f"{item['recording_id']}  (deleted)"
        state = "unlinked" if item["unlinked_at"] else (item["result"] or "held")
        click.echo(f"{state:9} {what}")
        for hold in (item["result_detail"] or []):
            click.echo(f"          not deleted: held for {hold['purpose_label']} {hold['case_ref']} (hold {hold['hold']})")
        for copy in derived.get(item["recording_id"], []):
            click.echo(f"          redacted version {copy['id']}")
    if req["status"] == "open":
        copies = [c["id"] for item in linked if not item["unlinked_at"] for c in derived.get(item["recording_id"], [])]
        if copies:
            click.echo(f"hand over: kluis export prepare {' '.join(copies)} --case {req['ref']} --purpose {req['kind']} "
                       "--passphrase --receiver '<requester>' --basis 'AVG art. 15'")
        else:
            click.echo(f"no redacted version yet: kluis redact --data DIR ID --purpose {req['kind']} --request {req['ref']} ...")


@requests_group.command("link")
@with_box
@click.argument("request")
@click.argument("recording_id")
@secret_options
def requests_link(box: Box, request: str, recording_id: str, user, password_file, recovery_key_file) -> None:
    """Link a recording to an open request; it is held for it."""
    actor = act(box, "requests link", user, password_file, recovery_key_file, recording_id=recording_id)
    req = ar.get(box, request)
    hold = ar.link(box, req["id"], recording_id, actor.name, client="cli")
    click.echo(f"linked {recording_id} to {req['ref']}" + (f", hold {hold}" if hold else ", held already"))


@requests_group.command("unlink")
@with_box
@click.argument("request")
@click.argument("recording_id")
@click.option("--reason", required=True, help="Why it is not the requester's recording.")
@secret_options
def requests_unlink(box: Box, request: str, recording_id: str, reason: str, user, password_file,
                    recovery_key_file) -> None:
    """Unlink a recording from an open request; the request's hold on it is released."""
    actor = act(box, "requests unlink", user, password_file, recovery_key_file, recording_id=recording_id)
    req = ar.get(box, request)
    released = ar.unlink(box, req["id"], recording_id, actor.name, reason, client="cli")
    click.echo(f"unlinked {recording_id} from {req['ref']}; released hold(s) {', '.join(map(str, released)) or '-'}")


@requests_group.command("close")
@with_box
@click.argument("request")
@click.option("--outcome", required=True, type=click.Choice(list(ar.OUTCOMES)),
              help="answered, upheld (an objection upheld deletes its recordings ahead of term), rejected, withdrawn.")
@click.option("--decision", "decision_ref", help="The decision's reference (required unless withdrawn).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@secret_options
def requests_close(box: Box, request: str, outcome: str, decision_ref: str | None, as_json: bool, user,
                   password_file, recovery_key_file) -> None:
    """Close a request: its holds are released; an objection upheld deletes its recordings unless another
    hold keeps them (which one is said)."""
    actor = act(box, "requests close", user, password_file, recovery_key_file)
    done = ar.close(box, request, outcome, actor.name, decision_ref, client="cli")
    if as_json:
        emit_json(done.as_dict())
        return
    req = done.request
    click.echo(f"{req['ref']} closed: {outcome}" + (f" ({req['decision_ref']})" if req["decision_ref"] else ""))
    for recording_id in done.deleted:
        click.echo(f"deleted   {recording_id} (ahead of its term)")
    for recording_id in done.released:
        holds = done.blocked.get(recording_id)
        if holds:
            which = "; ".join(f"{purpose_label(h['purpose'], 'en')} {h['case_ref']} (hold {h['id']})" for h in holds)
            click.echo(f"kept      {recording_id}: not deleted, held for {which}")
        else:
            click.echo(f"released  {recording_id} (the normal term applies)")


@requests_group.command("extend")
@with_box
@click.argument("request")
@click.option("--months", required=True, type=click.IntRange(1, 2), help="1 or 2 (at most two in all).")
@click.option("--reason", required=True, help="Why more time is needed: the requester is told this.")
@secret_options
def requests_extend(box: Box, request: str, months: int, reason: str, user, password_file, recovery_key_file) -> None:
    """Extend an access request's or objection's deadline (AVG art. 12(3)), before the first one passes;
    then send the requester the extension letter (`kluis requests letter REQUEST --kind extension`)."""
    actor = act(box, "requests extend", user, password_file, recovery_key_file)
    req = ar.extend(box, request, months, reason, actor.name, client="cli")
    click.echo(f"{req['ref']}: deadline {req['original_deadline']} extended by {req['extension_months']} month(s) "
               f"to {req['deadline']} ({left(ar.days_left(box, req))})")


@requests_group.command("letter")
@with_box
@click.argument("request")
@click.option("--kind", "kind", required=True, type=click.Choice(request_letters.KINDS),
              help="receipt, extension (after `requests extend`) or outcome (after `requests close`).")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="The PDF to write.")
@secret_options
def requests_letter(box: Box, request: str, kind: str, out: Path, user, password_file, recovery_key_file) -> None:
    """The letter to the requester (Dutch, PDF), from the register; put on record."""
    actor = act(box, "requests letter", user, password_file, recovery_key_file)
    req, pdf = request_letters.make(box, request, kind, actor.name, client="cli")
    out.write_bytes(pdf)
    click.echo(f"{req['ref']}: {kind} letter written to {out}")


COMMANDS = [requests_group]
