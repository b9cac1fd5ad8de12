"""A Dutch A4 document as PDF (fpdf2): the base of every form and letter the box prints.

The transfer form (appliance.transfer_form) and the letters to requesters (appliance.request_letters)
share it: a running header naming the issuer and the document, page numbers, headings, paragraphs and a
two-column label | value table. Every value is treated as hostile text: control characters out, length
bounded. A Unicode TrueType font (DejaVu, Debian's fonts-dejavu-core) renders any name; without it the
document falls back to the PDF core fonts with unknown characters replaced, never a crash.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import XPos, YPos
from fpdf.fonts import FontFace

FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"),
             Path("/usr/local/share/fonts/dejavu"))
FONT_FILES = {("sans", ""): "DejaVuSans.ttf", ("sans", "B"): "DejaVuSans-Bold.ttf",
              ("mono", ""): "DejaVuSansMono.ttf"}
MAX_TEXT = 2000  # characters of any one field: a hostile value cannot make a document endless
Row = tuple[str, object, bool]  # label, value, shown as code (mono: hashes, keys)
DEFAULT_OFFICE = "Kluis"  # [box] name left at its default names the product, not an office: never printed


def issuer(municipality: str, office: str) -> str:
    """Who a document is from: the municipality ([box] municipality), else the office's name if it was given."""
    return municipality or (office if office != DEFAULT_OFFICE else "")


def font_paths() -> dict | None:
    for folder in FONT_DIRS:
        paths = {key: folder / name for key, name in FONT_FILES.items()}
        if all(p.is_file() for p in paths.values()):
            return paths
    return None


def clean(value, limit: int = MAX_TEXT) -> str:
    """Any value as one printable string: control characters out, length bounded."""
    if value is None:
        return ""
    if isinstance(value, bool):
        value = "ja" if value else "nee"
    text = str(value)
    if len(text) > limit:
        text = text[:limit] + " …"
    return "".join(" " if unicodedata.category(ch)[0] == "C" and ch != "\n" else ch for ch in text)


_ASCII = str.maketrans({"‘": "'", "’": "'", "“": '"', "”": '"', "–": "-", "—": "-", "…": "...",
                        "€": "EUR", "Ø": "O", "ø": "o"})


class Document(FPDF):
    """`running`: the header line on every page (after the issuer); `title`: the PDF's title."""

    def __init__(self, running: str, title: str, issuer: str = ""):
        super().__init__(orientation="P", unit="mm", format="A4")
        self.running, self.issuer = running, issuer
        paths = font_paths()
        self.unicode = paths is not None
        if paths:
            self.add_font("kluis", "", str(paths[("sans", "")]))
            self.add_font("kluis", "B", str(paths[("sans", "B")]))
            self.add_font("kluismono", "", str(paths[("mono", "")]))
            self.sans, self.mono = "kluis", "kluismono"
        else:
            self.sans, self.mono = "helvetica", "courier"
        self.set_auto_page_break(True, margin=18)
        self.set_margins(18, 16, 18)
        self.alias_nb_pages()
        self.set_title(self.t(title, 300))
        self.set_creator("Kluis")

    def t(self, value, limit: int = MAX_TEXT) -> str:
        text = clean(value, limit)
        if not self.unicode:  # core fonts: Latin-1 only
            text = text.translate(_ASCII).encode("latin-1", "replace").decode("latin-1")
        return text

    def header(self) -> None:
        self.set_font(self.sans, "", 8)
        self.set_text_color(90)
        issuer = f"{self.issuer} · " if self.issuer else ""
        self.cell(0, 5, self.t(f"{issuer}{self.running}", 300), align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_text_color(0)
        self.ln(2)

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(self.sans, "", 8)
        self.set_text_color(90)
        self.cell(0, 5, f"Pagina {self.page_no()} van {{nb}}", align="C")
        self.set_text_color(0)

    def title_line(self, text: str) -> None:
        self.set_font(self.sans, "B", 16)
        self.multi_cell(0, 8, self.t(text), align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def heading(self, text: str, room: float = 40) -> None:
        """A numbered section's title; a new page first when less than `room` mm is left (a heading never
        ends a page alone)."""
        if self.get_y() > self.h - room:
            self.add_page()
        self.ln(3)
        self.set_font(self.sans, "B", 12)
        self.cell(0, 7, self.t(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_draw_color(150)
        self.line(self.l_margin, self.get_y(), self.w - self.r_margin, self.get_y())
        self.ln(1.5)

    def paragraph(self, text: str, size: float = 9.5, bold: bool = False) -> None:
        self.set_font(self.sans, "B" if bold else "", size)
        self.multi_cell(0, 4.8, self.t(text), align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def fields(self, rows: list[Row]) -> None:
        """A two-column table: label | value (any value: cleaned to text; mono for hashes and keys)."""
        self.set_font(self.sans, "", 9)
        mono = FontFace(family=self.mono, size_pt=8)
        with self.table(col_widths=(52, 122), first_row_as_headings=False, text_align="LEFT",
                        align="LEFT", width=self.epw, line_height=4.6, padding=1.2,
                        borders_layout="HORIZONTAL_LINES", v_align="TOP") as table:
            for label, value, is_code in rows:
                row = table.row()
                row.cell(self.t(label, 200), style=FontFace(emphasis="BOLD"))
                row.cell(self.t(value if value not in (None, "") else "—"), style=mono if is_code else None)
        self.ln(1)

    def pdf_bytes(self) -> bytes:
        return bytes(self.output())
