"""kluis cases add|edit|list|show|close|reopen: cases (zaken) that group recordings, holds, handovers and requests
under one reference (appliance/cases.py, appliance/case_file.py). The web UI's /zaken calls the same functions;
a team leader sees the own team's recordings only, as on the web."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import click

from appliance import case_file, cases
from appliance.box import Box
from appliance.clock import from_iso
from appliance.purposes import PURPOSES
from appliance.purposes import label as purpose_label
from .common import act, emit_json, print_table, secret_options, with_box


def local(box: Box, value: str | None) -> str:
    if not value:
        return ""
    return from_iso(value).astimezone(ZoneInfo(box.settings.box.timezone)).strftime("%Y-%m-%d %H:%M:%S")


@click.group("cases")
def cases_group() -> None:
    """Cases (zaken): one reference for a case's recordings, holds, handovers and requests."""


@cases_group.command("add")
@with_box
@click.argument("reference")
@click.option("--purpose", "kind", required=True, type=click.Choice(list(PURPOSES)),
              help="What the case is for (the purpose its holds and handovers name).")
@click.option("--title", help="A short title (no names of people filmed: it shows in lists).")
@click.option("--description", help="What the case is about.")
@secret_options
def cases_add(box: Box, reference: str, kind: str, title: str | None, description: str | None, user, password_file,
              recovery_key_file) -> None:
    """Open a case before anything names it (a hold, a handover or a request opens one by itself)."""
    actor = act(box, "cases add", user, password_file, recovery_key_file)
    case = cases.open_case(box, reference, kind, actor.name, title=title, description=description, client="cli")
    click.echo(f"opened case {case['reference']} ({purpose_label(case['kind'], 'en')})")


@cases_group.command("edit")
@with_box
@click.argument("reference")
@click.option("--title", help="The new title ('' removes it).")
@click.option("--description", help="The new description ('' removes it).")
@secret_options
def cases_edit(box: Box, reference: str, title: str | None, description: str | None, user, password_file,
               recovery_key_file) -> None:
    """Change a case's title or description (a case opened by a hold has none)."""
    actor = act(box, "cases edit", user, password_file, recovery_key_file)
    case = case_file.open_file(box, actor.user, reference).case  # NotFound outside the user's view
    case = cases.describe(box, reference, actor.name, title=case["title"] if title is None else title,
                          description=case["description"] if description is None else description, client="cli")
    click.echo(f"case {case['reference']}: {case['title'] or '(no title)'}")


@cases_group.command("list")
@with_box
@click.option("--all", "show_all", is_flag=True, help="Closed cases too.")
@click.option("--search", "text", help="Only cases whose reference or title contains this.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@secret_options
def cases_list(box: Box, show_all: bool, text: str | None, as_json: bool, user, password_file,
               recovery_key_file) -> None:
    """Open cases, newest first (with --all, closed ones too); a team leader's those with the own team's recordings."""
    actor = act(box, "cases list", user, password_file, recovery_key_file)
    rows = case_file.visible_cases(box, actor.user, None if show_all else "open", text)
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        row["kind"] = purpose_label(row["kind"], "en")
        row["opened"] = local(box, row["opened_at"])
        row["status"] = "open" if row["closed_at"] is None else "closed"
    print_table(rows, ["reference", "kind", "title", "opened", "opened_by", "status"])


@cases_group.command("show")
@with_box
@click.argument("reference")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@secret_options
def cases_show(box: Box, reference: str, as_json: bool, user, password_file, recovery_key_file) -> None:
    """One case: its recordings (in your scope), holds, handovers, requests and who did what."""
    actor = act(box, "cases show", user, password_file, recovery_key_file)
    found = case_file.open_file(box, actor.user, reference)
    if as_json:
        emit_json({"case": found.case, "recordings": found.recordings, "not_in_scope": found.hidden,
                   "holds": found.holds, "handovers": found.handovers, "requests": found.requests,
                   "audit": found.trail})
        return
    case = found.case
    click.echo(f"case {case['reference']}: {purpose_label(case['kind'], 'en')}"
               + (f" - {case['title']}" if case["title"] else ""))
    click.echo(f"opened {local(box, case['opened_at'])} by {case['opened_by']} ({case['origin']})")
    if case["closed_at"]:
        click.echo(f"closed {local(box, case['closed_at'])} by {case['closed_by']}: {case['close_reason']}")
    if case["description"]:
        click.echo(case["description"])
    click.echo(f"recordings ({len(found.recordings)}"
               + (f"; {found.hidden} more outside your scope" if found.hidden else "") + "):")
    for rec in found.recordings:
        click.echo(f"  {rec['id']}  {local(box, rec['start_time'])} - {local(box, rec['end_time'])[11:]}  "
                   f"camera {rec['camera_serial'] or '-'}  officer {rec['officer'] or '-'}  {rec['state']}  "
                   f"({', '.join(rec['sources'])})")
    for hold in found.holds:
        state = f"released {local(box, hold['released_at'])}: {hold['release_reason']}" if hold["released_at"] \
            else "active"
        click.echo(f"hold {hold['id']} on {hold['recording_id']} by {hold['placed_by']}: {state}")
    for handover in found.handovers:
        click.echo(f"handover {handover['id']} ({handover['state']}) to {handover['receiver']}, "
                   f"{len(handover['recording_ids'])} recording(s)")
    for request in found.requests:
        click.echo(f"request {request['ref']} ({purpose_label(request['kind'], 'en')}): {request['status']}")
    click.echo(f"audit trail: {len(found.trail)} entr{'y' if len(found.trail) == 1 else 'ies'} "
               f"(kluis audit show, or the custody report: kluis export custody --case {case['reference']})")


@cases_group.command("close")
@with_box
@click.argument("reference")
@click.option("--reason", help="Why the case is over (with \"case closed\" on each hold released).")
@secret_options
def cases_close(box: Box, reference: str, reason: str | None, user, password_file, recovery_key_file) -> None:
    """Close a case: its holds are released (the normal term applies again); its history stays."""
    actor = act(box, "cases close", user, password_file, recovery_key_file)
    released = case_file.close(box, actor.name, actor.user, reference, reason, client="cli")
    click.echo(f"closed case {cases.get(box, reference)['reference']}; released hold(s) "
               f"{', '.join(map(str, released)) or '-'}")


@cases_group.command("reopen")
@with_box
@click.argument("reference")
@click.option("--reason", required=True, help="Why the case is open again.")
@secret_options
def cases_reopen(box: Box, reference: str, reason: str, user, password_file, recovery_key_file) -> None:
    """Reopen a closed case (its released holds stay released; place new ones as needed)."""
    actor = act(box, "cases reopen", user, password_file, recovery_key_file)
    case_file.open_file(box, actor.user, reference)  # NotFound outside the user's view
    case = cases.reopen(box, reference, actor.name, reason, client="cli")
    click.echo(f"reopened case {case['reference']}")


COMMANDS = [cases_group]
