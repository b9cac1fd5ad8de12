"""The transfer form (overdrachtsformulier) of a handover, as a Dutch PDF filled in from its manifest.

The police or the public prosecutor receives it with the footage; both parties sign it. It says who hands
over what to whom, on which legal basis and for which case, who prepared and who approved the handover
(or that single approval was used, as the municipality's setting allows), and every hash from the
original encrypted recording to the exported file, so the receiver can check the files with sha256sum.

Everything in the manifest is treated as hostile text: names and references may be long, hold markup or
characters outside Latin-1. A Unicode TrueType font (DejaVu, Debian's fonts-dejavu-core) renders them;
without it the form falls back to the PDF core fonts with unknown characters replaced, never a crash.
"""

from __future__ import annotations

import math
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fpdf.enums import XPos, YPos

from .pdf_document import DEFAULT_OFFICE, Document
from .pdf_document import clean as _clean


PROTECTION = {
    "age": "Versleuteld voor de publieke sleutel van de ontvanger (age, X25519)",
    "age-recipient": "Versleuteld voor de publieke sleutel van de ontvanger (age, X25519)",
    "recipient": "Versleuteld voor de publieke sleutel van de ontvanger (age, X25519)",
    "passphrase": "Versleuteld met een wachtwoordzin (age, scrypt); de wachtwoordzin is eenmalig getoond "
                  "en apart doorgegeven",
    "none": "Onversleuteld: een uitdrukkelijke keuze van de verstrekker, vastgelegd in het logboek",
}
RECEIVER_FIELDS = (("organisation", "Organisatie"), ("unit", "Eenheid / afdeling"), ("name", "Naam"),
                   ("official_number", "Dienstnummer / ambtsnummer"))
CHAIN_LABELS = {
    "ciphertext_sha256": "Origineel versleuteld in de box (SHA-256 van de container)",
    "plaintext_sha256": "Originele opname, ontsleuteld (SHA-256)",
    "clip_sha256": "Uitgesneden fragment (SHA-256)",
    "exported_sha256": "Geëxporteerd bestand (SHA-256)",
    "sha256": "Geëxporteerd bestand (SHA-256)",
    "ciphertext_size": "Grootte versleuteld (bytes)",
    "ciphertext_verified": "Versleutelde opname tegen de box gecontroleerd",
    "plaintext_size": "Grootte originele opname (bytes)",
    "exported": "Geleverd als",
}
# appliance.package describes how a file was exported in English; the form says it in Dutch.
EXPORTED_TEXT = {
    "clip": "Fragment: geknipt vanaf het sleutelbeeld op of vóór het gevraagde begin, niet opnieuw gecodeerd",
    "whole recording": "Volledige opname: de ontsleutelde opname, byte voor byte",
}


def person_text(entry, login=None) -> str:
    """A person as the form names them: "J. de Vries, teamleider handhaving (gebruiker jdv)"; the login
    name alone when no full name was given. `entry`: {'login', 'full_name', 'function'} or None."""
    entry = entry if isinstance(entry, dict) else {}
    login = _clean(entry.get("login") or login, 100)
    name = _clean(entry.get("full_name"), 200)
    function = _clean(entry.get("function"), 200)
    text = ", ".join(p for p in (name or login, function) if p)
    if name and login and name != login:
        text += f" (gebruiker {login})"
    return text


class _Form(Document):
    def __init__(self, handover_id: str, issuer: str = ""):
        super().__init__(f"Overdrachtsformulier camerabeelden · overdracht {handover_id}",
                         f"Overdrachtsformulier {handover_id}", issuer)
        self.handover_id = handover_id


def _time(value, tz: ZoneInfo | None) -> str:
    """An ISO time as dd-mm-jjjj hh:mm:ss with its zone; anything else as it came."""
    if not value:
        return ""
    text = str(value)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    if moment.tzinfo is None:
        return moment.strftime("%d-%m-%Y %H:%M:%S")
    if tz is not None:
        moment = moment.astimezone(tz)
        return moment.strftime("%d-%m-%Y %H:%M:%S ") + (moment.tzname() or "")
    offset = moment.utcoffset()
    return moment.strftime("%d-%m-%Y %H:%M:%S ") + ("UTC" if not offset else moment.strftime("UTC%z"))


def _span(start, end, tz) -> str:
    a, b = _time(start, tz), _time(end, tz)
    if a and b:
        return f"{a} – {b}"
    return f"vanaf {a}" if a else (f"tot {b}" if b else "")


def _seconds(value) -> str:
    if value is None or value == "":
        return "?"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return _clean(value, 40)
    if not math.isfinite(number):
        return "?"
    return (f"{number:.0f}" if number == int(number) else f"{number:.2f}".replace(".", ",")) + " s"


def _receiver_rows(receiver) -> list[tuple[str, object, bool]]:
    if isinstance(receiver, dict):
        rows = [(label, receiver.get(key), False) for key, label in RECEIVER_FIELDS]
        rows += [(str(key), value, False) for key, value in receiver.items()
                 if key not in dict(RECEIVER_FIELDS) and value not in (None, "")]
        return rows
    return [("Ontvanger", receiver, False)]


def receiver_text(receiver) -> str:
    """The receiving party in one line (organisation, unit, name, number), as the form names it."""
    if isinstance(receiver, dict):
        return ", ".join(_clean(receiver.get(k), 300) for k, _l in RECEIVER_FIELDS if receiver.get(k))
    return _clean(receiver, 600)


def basis_text(basis) -> str:
    """The legal basis in Dutch words: 'Vordering (artikel ...)' or 'Vrijwillige verstrekking'."""
    if isinstance(basis, dict):
        kind = str(basis.get("kind") or basis.get("type") or "")
        article = _clean(basis.get("article"), 300)
        if kind.lower().startswith("vordering"):
            return f"Vordering (artikel {article})" if article else "Vordering"
        if kind.lower().startswith(("vrijwillig", "voluntary")):
            return "Vrijwillige verstrekking" + (f" ({article})" if article else "")
        return " ".join(p for p in (_clean(kind, 300), article) if p)
    text = _clean(basis, 600)
    if text.lower() in ("vrijwillig", "vrijwillige verstrekking", "voluntary"):
        return "Vrijwillige verstrekking"
    return text


def _basis_explanation(basis) -> str:
    text = basis_text(basis).lower()
    if text.startswith("vordering"):
        return ("De beelden worden verstrekt op grond van een vordering van de politie of de officier van "
                "justitie; het artikel staat hierboven.")
    if text.startswith("vrijwillige"):
        return ("De gemeente verstrekt de beelden vrijwillig (feit zonder voorlopige hechtenis); de gemeente "
                "heeft daartoe besloten.")
    return ""


def _clip_text(clip) -> str:
    if not clip:
        return "Volledige opname"
    if isinstance(clip, dict):
        text = f"Fragment van {_seconds(clip.get('from_s'))} tot {_seconds(clip.get('to_s'))} na het begin"
        if clip.get("requested_from_s") is not None or clip.get("requested_to_s") is not None:
            text += (f" (gevraagd {_seconds(clip.get('requested_from_s'))} tot "
                     f"{_seconds(clip.get('requested_to_s'))}; begint op het sleutelbeeld ervoor)")
        return text
    return _clean(clip, 300)


def _table(value) -> dict:
    """A manifest's sub-table, or an empty one when it is missing or not a table."""
    return value if isinstance(value, dict) else {}


def render_transfer_form(manifest: dict, timezone: str | None = None) -> bytes:
    """The overdrachtsformulier for a handover's manifest (see docs of the package), as PDF bytes.
    `timezone` (e.g. "Europe/Amsterdam", or manifest["box"]["timezone"]) shows times as local time;
    without one they are shown in the zone they were written in. Missing optional keys are left blank."""
    manifest = manifest if isinstance(manifest, dict) else {}
    box = _table(manifest.get("box"))
    tz = None
    for name in (timezone, box.get("timezone"), manifest.get("timezone")):
        if name:
            try:
                tz = ZoneInfo(str(name))
                break
            except (ZoneInfoNotFoundError, ValueError):
                continue
    handover_id = _clean(manifest.get("handover_id"), 100) or "?"
    # The issuing party is the municipality ([box] municipality); older manifests name only the office.
    municipality = _clean(box.get("municipality") or box.get("name") or manifest.get("box_name"), 200)
    office = _clean(box.get("name"), 200)
    pdf = _Form(handover_id, municipality)
    pdf.add_page()

    pdf.set_font(pdf.sans, "B", 16)
    pdf.multi_cell(0, 8, pdf.t("Overdrachtsformulier camerabeelden"), align="L",
                   new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    if manifest.get("state") == "ontwerp":
        pdf.paragraph("Ontwerp: deze overdracht wacht nog op goedkeuring; er is nog geen pakket gemaakt en "
                      "de hashes van de bestanden volgen bij de goedkeuring.", bold=True)
    elif manifest.get("state") in ("geweigerd", "ingetrokken"):
        pdf.paragraph(f"Niet verstrekt: deze overdracht is {manifest['state']}; er is geen pakket gemaakt.",
                      bold=True)
    pdf.paragraph("Verstrekking van beelden van bodycams van handhavers (boa's) aan de politie of het "
                  "Openbaar Ministerie")
    pdf.ln(1)

    pdf.heading("1. Overdracht")
    issuing: list[tuple[str, object, bool]] = [("Verstrekkende gemeente", municipality, False)]
    if office not in ("", municipality, DEFAULT_OFFICE):
        issuing.append(("Afdeling / vestiging", office, False))
    approval_rows: list[tuple[str, object, bool]] = [
        ("Kenmerk overdracht", handover_id, True), *issuing,
        ("Voorbereid door", person_text(manifest.get("prepared_by_person"), manifest.get("prepared_by")), False),
        ("Voorbereid op", _time(manifest.get("prepared_at"), tz), False),
        ("Goedgekeurd door", person_text(manifest.get("approved_by_person"), manifest.get("approved_by")), False),
        ("Goedgekeurd op", _time(manifest.get("approved_at"), tz), False),
    ]
    pdf.fields(approval_rows)
    if manifest.get("single_approval"):
        pdf.set_fill_color(255, 244, 214)
        pdf.set_font(pdf.sans, "B", 9.5)
        pdf.multi_cell(0, 5, pdf.t(
            "Enkelvoudige goedkeuring: deze overdracht is zonder tweede persoon (vier-ogenprincipe) "
            "goedgekeurd, zoals de instelling van de gemeente voor kleine organisaties toestaat."),
            align="L", fill=True, border=1, padding=1.5,  # type: ignore[arg-type]  # fpdf2 takes mm as floats
            new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    else:
        pdf.paragraph("Vier ogen: de overdracht is door de ene persoon voorbereid en door een tweede "
                      "persoon goedgekeurd voordat er een bestand werd gemaakt.", size=8.5)

    pdf.heading("2. Ontvangende partij")
    pdf.fields(_receiver_rows(manifest.get("receiver")))

    pdf.heading("3. Grondslag, zaak en doel")
    pdf.fields([
        ("Grondslag", basis_text(manifest.get("basis")), False),
        ("Zaaknummer / proces-verbaal", manifest.get("case_ref"), False),
        ("Doel", manifest.get("purpose_label") or manifest.get("purpose"), False),
        ("Bescherming tijdens transport", PROTECTION.get(str(manifest.get("protection")),
                                                         _clean(manifest.get("protection"), 300)), False),
    ] + ([("Publieke sleutel ontvanger (age)", manifest["age_recipient"], True)]
         if manifest.get("age_recipient") else []))
    explanation = _basis_explanation(manifest.get("basis"))
    if explanation:
        pdf.paragraph(explanation, size=8.5)

    files = [f for f in (manifest.get("files") or []) if isinstance(f, dict)]
    pdf.heading(f"4. Bestanden ({len(files)})")
    pdf.paragraph("Tijden: cameratijd is de klok van de camera; gecorrigeerde tijd is die klok gecorrigeerd "
                  "met de afwijking die de box bij het docken mat. Vooropname/naopname: seconden die de "
                  "camera voor en na het indrukken van de knop vastlegt.", size=8.5)
    for number, item in enumerate(files, 1):
        pdf.ln(1)
        pdf.paragraph(f"Bestand {number}: {_clean(item.get('name'), 300)}", size=10, bold=True)
        pdf.fields([
            ("Opname-id", item.get("recording_id"), True),
            ("Camera", item.get("camera"), False),
            ("Handhaver", person_text(item.get("officer_person"), item.get("officer")), False),
            ("Cameratijd", _span(item.get("camera_start"), item.get("camera_end"), tz), False),
            ("Gecorrigeerde tijd", _span(item.get("corrected_start"), item.get("corrected_end"), tz), False),
            ("Klokafwijking camera", _seconds(item.get("clock_offset_s")) if item.get("clock_offset_s") is not None
             else None, False),
            ("Vooropname / naopname", f"{_seconds(item.get('pre_record_s'))} / "
                                      f"{_seconds(item.get('post_record_s'))}", False),
            ("Omvang", _clip_text(item.get("clip")), False),
            ("Grootte", f"{item['size']} bytes" if isinstance(item.get("size"), int) else item.get("size"), False),
            ("SHA-256 van het bestand", item.get("sha256"), True),
        ])

    pdf.heading("5. Hashketen")
    pdf.paragraph("Per bestand de keten van de versleutelde opname in de box tot het geleverde bestand. "
                  "Controleer elk bestand met sha256sum (of kluis export verify): de uitkomst moet gelijk "
                  "zijn aan de SHA-256 hierboven.", size=8.5)
    for number, item in enumerate(files, 1):
        chain = _table(item.get("chain"))
        rows: list[tuple[str, object, bool]] = [(f"Bestand {number}", item.get("name"), False)]
        for key, value in chain.items():
            if isinstance(value, (dict, list)):
                continue
            if key == "exported" and isinstance(value, str):
                value = next((nl for en, nl in EXPORTED_TEXT.items() if value.startswith(en)), value)
            rows.append((CHAIN_LABELS.get(key, str(key)), value, _looks_like_code(value)))
        if not {"sha256", "exported_sha256"} & set(chain) and item.get("sha256"):
            rows.append((CHAIN_LABELS["sha256"], item.get("sha256"), True))
        pdf.fields(rows)
    audit_excerpt = _table(manifest.get("audit_excerpt"))
    pdf.fields([
        ("Uittreksel logboek", audit_excerpt.get("name"), False),
        ("SHA-256 uittreksel", audit_excerpt.get("sha256"), True),
        ("Ondertekeningssleutel box (Ed25519)", box.get("signing_key"), True),
        ("Formaat", manifest.get("format"), False),
    ])
    pdf.paragraph("manifest.json is ondertekend met de Ed25519-sleutel van de box hierboven; kluis export "
                  "verify controleert de handtekening en elke hash.", size=8.5)

    pdf.heading("6. Ondertekening")
    if pdf.get_y() > pdf.h - 95:
        pdf.add_page()
    approver = manifest.get("approved_by_person")
    _signatures(pdf, municipality, receiver_text(manifest.get("receiver")),
                approver if isinstance(approver, dict) and approver.get("full_name") else None)
    return bytes(pdf.output())


def _looks_like_code(value) -> bool:
    text = str(value)
    return len(text) >= 16 and " " not in text


def _signatures(pdf: _Form, issuer: str | None, receiver: str, signer: dict | None = None) -> None:
    """Two columns of signature fields: the issuing municipality and the receiving party. `signer` (the
    approver, by full name and function) is filled in on the municipality's side; the rest by hand."""
    gap = 8
    width = (pdf.epw - gap) / 2
    top = pdf.get_y() + 1
    columns = [("Namens de verstrekkende gemeente", _clean(issuer, 300)),
               ("Namens de ontvangende partij", receiver)]
    heads = []
    for i, (title, who) in enumerate(columns):
        x = pdf.l_margin + i * (width + gap)
        pdf.set_xy(x, top)
        pdf.set_font(pdf.sans, "B", 10)
        pdf.multi_cell(width, 5.5, pdf.t(title), align="L", new_x=XPos.LEFT, new_y=YPos.NEXT)
        pdf.set_font(pdf.sans, "", 8.5)
        pdf.multi_cell(width, 4.5, pdf.t(who or " ", 300), align="L", new_x=XPos.LEFT, new_y=YPos.NEXT)
        heads.append(pdf.get_y())
    fields_top = max(heads) + 2  # both columns' fields side by side, whatever the names' lengths
    bottoms = []
    for i in range(len(columns)):
        x = pdf.l_margin + i * (width + gap)
        pdf.set_y(fields_top)
        filled = {"Naam": (signer or {}).get("full_name"), "Functie": (signer or {}).get("function")} if i == 0 else {}
        for label, height in (("Naam", 10), ("Functie", 10), ("Datum", 10), ("Handtekening", 24)):
            pdf.set_x(x)
            pdf.set_font(pdf.sans, "", 8.5)
            pdf.cell(width, 4.5, pdf.t(label), new_x=XPos.LEFT, new_y=YPos.NEXT)
            y = pdf.get_y()
            pdf.set_draw_color(120)
            pdf.rect(x, y, width, height)
            if filled.get(label):
                pdf.set_xy(x + 1.5, y + 2.5)
                pdf.set_font(pdf.sans, "", 9.5)
                pdf.cell(width - 3, 5, pdf.t(filled[label], 120))
                pdf.set_xy(x, y)
            pdf.set_y(y + height + 2)
        bottoms.append(pdf.get_y())
    pdf.set_xy(pdf.l_margin, max(bottoms) + 2)
