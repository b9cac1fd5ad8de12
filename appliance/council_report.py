"""The report to the council (raadsrapportage): the statistics of a period (appliance/stats_report.py) as a
Dutch PDF, a bar chart and a short text per section, and as CSV; made from the web UI (/statistieken) and
`kluis stats report`, by the privacy officer or the auditor, and on record in the audit log.

The charts are fpdf2's own rectangles: no plotting library for a handful of bars. The report holds no
personal data: the statistics have none (appliance/statistics.py says why). Its tables and values are
worded by the caller's `title(table)` and `label(table, value)` (the web UI's words in Dutch,
webui/labels.py: one place for the page and the report), so that a table, a reason or a purpose reads the
same on the page, in the CSV and on paper.
"""

from __future__ import annotations

from datetime import datetime
from typing import Callable, Sequence
from zoneinfo import ZoneInfo

from fpdf.enums import XPos, YPos

from . import audit, spreadsheet
from .box import Box
from .stats_report import TABLES, Period, Report, month_dutch
from . import pdf_document
from .pdf_document import Document

Label = Callable[[str, str], str]   # (table, value) -> words
Title = Callable[[str], tuple[str, str]]  # table -> (title, heading of its first column)

BAR = (1, 104, 155)  # the web UI's blue (#01689b)


def number(n: int) -> str:
    """An integer as Dutch writes it: 12.345."""
    return f"{n:,}".replace(",", ".")


def opnames(n: int) -> str:
    """'1 opname', '12 opnames'."""
    return f"{number(n)} opname" if n == 1 else f"{number(n)} opnames"


def _share(part: int, whole: int) -> str:
    return f"{round(100 * part / whole)}%" if whole else "0%"


def section_text(report: Report, key: str, label: Label) -> str:
    """The short Dutch text above a section's chart: what is counted and what stands out."""
    total = report.total()
    rows = report.tables.get(key, [])
    if key == "per_month":
        if not rows:
            return "In deze periode zijn geen opnames gemaakt."
        busiest = max(rows, key=lambda row: (row[1], row[0]))
        return (f"In deze periode zijn {opnames(total)} gemaakt, in {len(rows)} "
                f"{'maand' if len(rows) == 1 else 'maanden'}. De drukste maand was {month_dutch(busiest[0])} "
                f"met {opnames(busiest[1])}. Elke opname telt in de maand waarin zij begon (UTC).")
    if key == "per_team":
        unknown = report.count(key, "")
        text = "Het team van de handhaver die de opname maakte."
        if unknown:
            text += (f" {opnames(unknown)} {'staat' if unknown == 1 else 'staan'} onder 'onbekend': de box kende de "
                     "handhaver niet, of de opname was al verwijderd voordat de box deze cijfers bijhield.")
        return text
    if key == "reason":
        given = total - report.count(key, "")
        text = (f"Na de dienst legt de handhaver vast waarom de camera werd aangezet. Voor {number(given)} van de "
                f"{opnames(total)} ({_share(given, total)}) is een reden vastgelegd.")
        named = [row for row in rows if row[0]]
        if named:
            first = max(named, key=lambda row: row[1])
            text += f" De meest genoemde reden is {label(key, first[0])} ({number(first[1])} keer)."
        return text
    if key == "warning":
        yes, no = report.count(key, "yes"), report.count(key, "no")
        return (f"Bij {opnames(yes)} ({_share(yes, total)}) is vooraf gewaarschuwd dat de camera zou "
                f"worden aangezet, bij {number(no)} niet; bij {number(total - yes - no)} is het niet vastgelegd.")
    if key == "warnings":
        return "Hoe vaak de handhaver waarschuwde voordat de camera werd aangezet, waar dat is vastgelegd."
    if key == "category":
        return ("De bewaarcategorie bepaalt hoe lang een opname bewaard blijft; zonder categorie geldt de gewone "
                "bewaartermijn. Een opname kan in meer dan één categorie vallen.")
    if key == "camera_model":
        return "Met welke camera's de opnames zijn gemaakt."
    if key == "source":
        return "Hoe de opnames in de box kwamen: via het dockingstation, een USB-kabel, het Axis-systeem, of met de hand."
    if key == "viewed":
        return ("Opnames worden alleen bekeken met een doel, en elke keer staat in het logboek wie keek en "
                "waarom. Hier staat hoeveel opnames voor elk doel zijn bekeken (een opname kan voor meer doelen "
                "bekeken zijn).")
    if key == "views":
        return "Hoe vaak er in totaal voor elk doel is gekeken of gedownload."
    if key == "hold_purpose":
        return ("Een bewaring houdt een opname langer vast dan de bewaartermijn, voor een aangifte, klacht, "
                "verzoek of vordering. Hier staat het aantal geplaatste bewaringen per doel.")
    if key == "outcome":
        term, early = report.count(key, "deleted_term"), report.count(key, "deleted_early")
        left = total - term - early
        text = (f"Van de {opnames(total)} zijn er {number(term)} na afloop van de bewaartermijn verwijderd"
                f"{f' en {number(early)} eerder, na een besluit' if early else ''}; "
                f"{number(left)} {'staat' if left == 1 else 'staan'} nog in de box. Een opname kan meer dan één "
                "uitkomst hebben.")
        return text
    return ""


class _Report(Document):
    def __init__(self, issuer: str, period: str):
        super().__init__(f"Bodycams: rapportage aan de raad · {period}", f"Bodycams: rapportage {period}", issuer)

    def heading(self, text: str, rows: float = 0) -> None:
        """`rows`: the rows of the chart below it, of which the first six stay on its page."""
        super().heading(text, room=42 + 6.5 * min(rows, 6))

    def bars(self, column: str, rows: Sequence[tuple[str, int]]) -> None:
        """A horizontal bar chart that is also the table: label, bar, count."""
        label_w, count_w = 62.0, 18.0
        bar_w = self.epw - label_w - count_w - 2
        top = max((n for _, n in rows), default=0)
        self.set_font(self.sans, "B", 8.5)
        self.cell(label_w, 5, self.t(column))
        self.cell(bar_w + 2, 5, "")
        self.cell(count_w, 5, "Aantal", align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_font(self.sans, "", 8.5)
        for text, n in rows:
            if self.get_y() + 6 > self.h - 18:
                self.add_page()
            y = self.get_y()
            self.cell(label_w, 5.5, self.t(text, 60))
            width = bar_w * n / top if top else 0
            self.set_fill_color(*BAR)
            if width > 0:
                self.rect(self.l_margin + label_w, y + 1, max(width, 0.4), 3.6, style="F")
            self.set_x(self.l_margin + label_w + bar_w + 2)
            self.cell(count_w, 5.5, number(n), align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.ln(1)


def render_pdf(report: Report, label: Label, title: Title, *, issuer: str, made_at: datetime, timezone: str) -> bytes:
    """The council report of `report` as PDF bytes; `title` and `label` give the Dutch words."""
    period = report.period.dutch()
    pdf = _Report(issuer, period)
    pdf.add_page()
    pdf.set_font(pdf.sans, "B", 16)
    pdf.multi_cell(0, 8, pdf.t("Bodycams van de handhaving: rapportage aan de raad"), align="L",
                   new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(pdf.sans, "B", 11)
    pdf.cell(0, 6, pdf.t(f"Periode: {period}"), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    local = made_at.astimezone(ZoneInfo(timezone))
    scope = "alle opnames van de box" if report.everything else f"de opnames van team {report.team or '-'}"
    pdf.paragraph(f"Opgesteld op {local:%d-%m-%Y} om {local:%H:%M} uit de statistieken van Kluis"
                  f"{f' ({issuer})' if issuer else ''}; geteld: {scope}.")
    pdf.ln(1)
    total = report.total()
    pdf.paragraph(
        f"In deze periode maakten handhavers {opnames(total)} met hun bodycam. Daarvan langer bewaard voor een "
        f"aangifte, klacht, verzoek of vordering: {number(report.count('outcome', 'held'))}; verstrekt aan politie "
        f"of Openbaar Ministerie: {number(report.count('outcome', 'handed_over'))}; na de bewaartermijn "
        f"verwijderd: {number(report.count('outcome', 'deleted_term'))}.", bold=True)
    pdf.ln(1)
    pdf.paragraph("Deze cijfers bevatten geen persoonsgegevens. De box houdt ze bij vanaf het moment dat een "
                  "opname binnenkomt, en bewaart ze ook nadat de opname zelf is verwijderd: per maand en per team "
                  "opgeteld, zonder verwijzing naar de opname, de handhaver, de plaats of een zaak. Een opname die "
                  "onherkenbaar is gemaakt (een bewerkte kopie) telt niet als eigen opname.", size=8.5)
    for number_of, key in enumerate([k for k in TABLES if report.tables.get(k) or k in ("per_month", "reason")], 1):
        heading, column = title(key)
        rows = [(label(key, value), n) for value, n in report.tables.get(key, [])]
        pdf.heading(f"{number_of}. {heading}", len(rows))
        text = section_text(report, key, label)
        if text:
            pdf.paragraph(text)
            pdf.ln(1)
        if rows:
            pdf.bars(column, rows)
    return pdf.pdf_bytes()


def csv_rows(report: Report, title: Title, label: Label) -> list[tuple[str, str, int]]:
    """The report's tables as CSV rows (table, value, count), in TABLES' order."""
    return [(title(key)[0], label(key, value), n) for key in TABLES for value, n in report.tables.get(key, [])]


def csv_bytes(report: Report, headings: Sequence[str], title: Title, label: Label, timezone: str) -> bytes:
    return spreadsheet.to_bytes(headings, csv_rows(report, title, label), timezone)


def issuer(box: Box) -> str:
    """Who the report is from: the municipality ([box] municipality), else the box's own name unless that is
    the product's."""
    settings = box.settings.box
    return pdf_document.issuer(settings.municipality, settings.name)


def record(box: Box, actor: str, period: Period, formats: Sequence[str], *, everything: bool,
           client: str | None = None) -> None:
    """Put the making of a council report on record (before it is handed out)."""
    with box.catalog.transaction():
        audit.record(box.catalog, actor=actor, action="stats_report", client=client, clock=box.clock,
                     details={**period.as_dict(), "formats": list(formats), "everything": everything})
