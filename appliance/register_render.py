"""The processing register and the DPIA fact sheet (appliance/register.py) as Markdown and as PDF (fpdf2,
with the DejaVu font the transfer form uses; the PDF core fonts, Latin-1 only, where it is missing)."""

from __future__ import annotations

from fpdf import FPDF
from fpdf.enums import XPos, YPos
from fpdf.fonts import FontFace

from . import audit
from .box import Box
from .errors import KluisError
from .register import Document, dpia_facts, processing_register
from .transfer_form import FONT_DIRS, FONT_FILES

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


class _Pdf(FPDF):
    def __init__(self, doc: Document):
        super().__init__(orientation="P", unit="mm", format="A4")
        self.doc = doc
        paths = next(({k: folder / name for k, name in FONT_FILES.items()} for folder in FONT_DIRS
                      if all((folder / name).is_file() for name in FONT_FILES.values())), None)
        self.unicode = paths is not None
        if paths:
            self.add_font("kluis", "", str(paths[("sans", "")]))
            self.add_font("kluis", "B", str(paths[("sans", "B")]))
            self.sans = "kluis"
        else:
            self.sans = "helvetica"
        self.set_auto_page_break(True, margin=18)
        self.set_margins(18, 16, 18)
        self.alias_nb_pages()
        self.set_title(doc.title)
        self.set_creator("Kluis")

    def t(self, text: str) -> str:
        text = " ".join(str(text).split())
        if not self.unicode:
            text = text.replace("—", "-").replace("’", "'").encode("latin-1", "replace").decode("latin-1")
        return text

    def header(self) -> None:
        self.set_font(self.sans, "", 8)
        self.set_text_color(90)
        self.cell(0, 5, self.t(f"{self.doc.title} · {self.doc.made_at}"), align="R",
                  new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_text_color(0)
        self.ln(2)

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(self.sans, "", 8)
        self.set_text_color(90)
        self.cell(0, 5, f"Pagina {self.page_no()} van {{nb}}", align="C")
        self.set_text_color(0)


def to_pdf(doc: Document) -> bytes:
    pdf = _Pdf(doc)
    pdf.add_page()
    pdf.set_font(pdf.sans, "B", 16)
    pdf.multi_cell(0, 8, pdf.t(doc.title), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(pdf.sans, "", 9.5)
    pdf.multi_cell(0, 5, pdf.t(f"{doc.subtitle}. Gemaakt door Kluis op {doc.made_at}."),
                   new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    for number, part in enumerate(doc.parts, 1):
        if pdf.get_y() > pdf.h - 45:
            pdf.add_page()
        pdf.ln(3)
        pdf.set_font(pdf.sans, "B", 12)
        pdf.cell(0, 7, pdf.t(f"{number}. {part.title}"), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_draw_color(150)
        pdf.line(pdf.l_margin, pdf.get_y(), pdf.w - pdf.r_margin, pdf.get_y())
        pdf.ln(1.5)
        if part.rows:
            pdf.set_font(pdf.sans, "", 9)
            with pdf.table(col_widths=(52, 122), first_row_as_headings=False, text_align="LEFT", align="LEFT",
                           width=pdf.epw, line_height=4.6, padding=1.2, borders_layout="HORIZONTAL_LINES",
                           v_align="TOP") as table:
                for label, value in part.rows:
                    row = table.row()
                    row.cell(pdf.t(label), style=FontFace(emphasis="BOLD"))
                    row.cell(pdf.t(value))
            pdf.ln(1)
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
    return bytes(pdf.output())
