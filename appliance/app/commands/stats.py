"""kluis stats report: the report to the council (appliance/council_report.py) for a period, as PDF and CSV.

The privacy officer or the auditor (roles.STATS_REPORT), logged in like every command; the report is on
record in the audit log before it is written. Its words are the web UI's (webui/labels.py), in Dutch: the
report is for the council."""

from __future__ import annotations

from pathlib import Path

import click

from appliance import council_report, stats_report
from appliance.box import Box
from webui.labels import dutch_stats_words
from .common import act, secret_options, with_box

CSV_HEADINGS = ("Tabel", "Waarde", "Aantal")


@click.group("stats")
def stats_group() -> None:
    """Statistics that outlive the footage: the report to the council."""


@stats_group.command("report")
@with_box
@click.option("--from", "start", help="First month (YYYY-MM, or a date YYYY-MM-DD: its month). Default: the first.")
@click.option("--to", "end", help="Last month, included (YYYY-MM or YYYY-MM-DD). Default: the last.")
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help="Write the PDF here.")
@click.option("--csv", "csv_out", type=click.Path(path_type=Path, dir_okay=False),
              help="Also write the tables as CSV (for a spreadsheet) here.")
@secret_options
def stats_report_command(box: Box, start: str | None, end: str | None, out: Path, csv_out: Path | None,
                         user: str | None, password_file, recovery_key_file) -> None:
    """Make the report to the council (PDF, Dutch: charts and a short text per section) for a period of
    whole months, counting every recording of the box; on record in the audit log."""
    period = stats_report.between(start, end)  # a mistake is told before a password is asked
    actor = act(box, "stats report", user, password_file, recovery_key_file)
    report = stats_report.report(box.catalog, None, period)
    formats = ["pdf"] + (["csv"] if csv_out else [])
    council_report.record(box, actor.name, period, formats, everything=True, client="cli")
    title, label = dutch_stats_words()
    pdf = council_report.render_pdf(report, label, title, issuer=council_report.issuer(box), made_at=box.clock(),
                                    timezone=box.settings.box.timezone)
    out.write_bytes(pdf)
    if csv_out:
        csv_out.write_bytes(council_report.csv_bytes(report, CSV_HEADINGS, title, label, box.settings.box.timezone))
    click.echo(f"report for {period.dutch()}: {report.total()} recording(s); written to {out}"
               + (f" and {csv_out}" if csv_out else ""))


COMMANDS = [stats_group]
