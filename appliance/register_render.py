"""The processing register and the DPIA fact sheet (appliance/register.py) as Markdown and as PDF (on the
box's shared Dutch A4 document, appliance/pdf_document.py)."""

from __future__ import annotations

from fpdf.enums import XPos, YPos
from fpdf.fonts import FontFace

from . import audit
from .box import Box
from .errors import KluisError
from .register import Document, dpia_facts, processing_register
from .pdf_document import Document as PdfDocument

FORMATS = {".pdf": "pdf", ".md": "md"}
DOCUMENTS = {"register": ("verwerkingsregister", processing_register), "dpia": ("dpia-feitenblad", dpia_facts)}


def export(box: Box, document: str, fmt: str, actor: str, client: str | None = None) -> tuple[str, bytes]:
    """The register entry ("register") or the DPIA fact sheet ("dpia") as "pdf" or "md": (file name,
    bytes), its making on record (`register_export`) before it is handed out."""
    if document not in DOCUMENTS or fmt not in FORMATS.values():
        raise KluisError(f"no such document: {document}.{fmt}")
    stem, make = DOCUMENTS[document]
    doc = make(box)
    data = render(doc, fmt)
    with box.catalog.transaction():
        audit.record(box.catalog, actor=actor, action="register_export", client=client, clock=box.clock,
                     details={"document": document, "format": fmt, "bytes": len(data)})
    return f"{stem}-{box.clock().date().isoformat()}.{fmt}", data


def format_of(name: str) -> str:
    """"pdf" or "md" from a file name's suffix; KluisError for anything else."""
    for suffix, fmt in FORMATS.items():
        if name.lower().endswith(suffix):
            return fmt
    raise KluisError(f"{name}: give a file name ending in .pdf or .md")


def render(doc: Document, fmt: str) -> bytes:
    return to_pdf(doc) if fmt == "pdf" else to_markdown(doc).encode("utf-8")


def _cell(text: str) -> str:
    return " ".join(str(text).replace("|", "\\|").split())


def to_markdown(doc: Document) -> str:
    lines = [f"# {doc.title}", "", f"{doc.subtitle}. Gemaakt door Kluis op {doc.made_at}.", ""]
    for number, part in enumerate(doc.parts, 1):
        lines += [f"## {number}. {part.title}", ""]
        lines += [f"- **{label}**: {' '.join(value.split())}" for label, value in part.rows]
        lines += [f"- {' '.join(item.split())}" for item in part.items]
        if part.rows or part.items:
            lines.append("")
        if part.table:
            header, rows = part.table
            lines += ["| " + " | ".join(_cell(h) for h in header) + " |", "|" + "---|" * len(header)]
            lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
            lines.append("")
        if part.note:
            lines += [part.note, ""]
    return "\n".join(lines)


def _pdf(doc: Document) -> PdfDocument:
    """The shared Dutch A4 document (appliance/pdf_document.py), headed with the register's title and date."""
    return PdfDocument(f"{doc.title} · {doc.made_at}", doc.title)


def to_pdf(doc: Document) -> bytes:
    pdf = _pdf(doc)
    pdf.add_page()
    pdf.title_line(doc.title)
    pdf.set_font(pdf.sans, "", 9.5)
    pdf.multi_cell(0, 5, pdf.t(f"{doc.subtitle}. Gemaakt door Kluis op {doc.made_at}."),
                   new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    for number, part in enumerate(doc.parts, 1):
        pdf.heading(f"{number}. {part.title}", room=45)
        if part.rows:
            pdf.fields([(label, value, False) for label, value in part.rows])
        for item in part.items:
            pdf.set_font(pdf.sans, "", 9.5)
            pdf.multi_cell(0, 4.8, pdf.t(f"• {item}") if pdf.unicode else pdf.t(f"- {item}"),
                           new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            pdf.ln(0.8)
        if part.table:
            header, rows = part.table
            pdf.set_font(pdf.sans, "", 7.5)
            with pdf.table(text_align="LEFT", align="LEFT", width=pdf.epw, line_height=3.8, padding=1,
                           v_align="TOP", headings_style=FontFace(emphasis="BOLD")) as table:
                for values in [header, *rows]:
                    row = table.row()
                    for value in values:
                        row.cell(pdf.t(value))
            pdf.ln(1)
        if part.note:
            pdf.set_font(pdf.sans, "", 8.5)
            pdf.multi_cell(0, 4.5, pdf.t(part.note), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    return pdf.pdf_bytes()
