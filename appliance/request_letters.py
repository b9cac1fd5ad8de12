"""Letters to a person who asked about their footage (Dutch PDF): the receipt, the extension of the
deadline (AVG art. 12(3)), and the answer for each outcome.

Every sentence is filled in from the register (appliance.access_requests): the reference, the dates, the
number of recordings found, released, deleted or kept, the decision's reference, the extension's reason.
A letter holds nothing the register does not, so it is made again whenever it is asked for; that it was
made (which letter, by whom, when) is kept in `request_letters` and in the audit log, without the
requester's name. What a letter may say follows the state: no extension letter for a request that was not
extended, no answer before the request is closed.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from . import access_requests as ar
from . import audit
from .box import Box
from .clock import from_iso, to_iso
from .errors import KluisError
from . import pdf_document
from .pdf_document import Document

KINDS = ("receipt", "extension", "outcome")
SUBJECT = {"access_request": "uw inzageverzoek", "objection": "uw bezwaar", "complaint": "uw klacht"}
MONTHS = ("januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus", "september", "oktober",
          "november", "december")
RIGHTS = ("Bent u het niet eens met dit besluit? Dan kunt u binnen zes weken na de datum van deze brief "
          "bezwaar maken bij het college van burgemeester en wethouders. U kunt ook een klacht indienen bij de "
          "Autoriteit Persoonsgegevens (autoriteitpersoonsgegevens.nl).")


def day_text(day: date) -> str:
    return f"{day.day} {MONTHS[day.month - 1]} {day.year}"


def allowed(request: dict) -> list[str]:
    """The letters this request can have now."""
    kinds = ["receipt"]
    if request.get("extension_months"):
        kinds.append("extension")
    if request["status"] == "closed":
        kinds.append("outcome")
    return kinds


def make(box: Box, request: int | str, kind: str, actor: str, client: str | None = None) -> tuple[dict, bytes]:
    """Put the letter on record (request_letters, audit) and return (request, PDF bytes)."""
    req = ar.get(box, request)
    if kind not in KINDS:
        raise KluisError(f"unknown letter {kind!r}: one of {', '.join(KINDS)}")
    if kind not in allowed(req):
        raise KluisError({"extension": f"{req['ref']} was not extended: there is no extension letter",
                          "outcome": f"{req['ref']} is still open: the answer follows when it is closed"}[kind])
    now = to_iso(box.clock())
    with box.catalog.transaction():
        box.catalog.db.execute("INSERT INTO request_letters (request_id, kind, made_by, made_at) VALUES (?, ?, ?, ?)",
                               [req["id"], kind, actor, now])
        audit.record(box.catalog, actor=actor, action="request_letter", purpose=req["kind"], case_ref=req["ref"],
                     client=client, details={"request": req["id"], "letter": kind})
    return req, render(box, req, kind)


def made(box: Box, request_id: int) -> list[dict]:
    return list(box.catalog.db.query("SELECT kind, made_by, made_at FROM request_letters WHERE request_id = ? "
                                     "ORDER BY made_at, id", [request_id]))


def _results(box: Box, req: dict) -> dict[str, int]:
    """How many linked recordings ended how (released, deleted, blocked, gone) and how many were found."""
    counts = {"found": 0}
    for item in ar.links(box, req["id"], include_unlinked=False):
        counts["found"] += 1
        counts[item["result"] or "open"] = counts.get(item["result"] or "open", 0) + 1
    return counts


def _recordings(n: int) -> str:
    return "één opname" if n == 1 else f"{n} opnames"


def body(box: Box, req: dict, kind: str) -> list[str]:
    """The letter's paragraphs (Dutch), from the register."""
    tz = ZoneInfo(box.settings.box.timezone)
    what = SUBJECT[req["kind"]]
    received = day_text(date.fromisoformat(req["received_on"]))
    deadline = day_text(date.fromisoformat(req["deadline"]))
    moment = from_iso(req["given_time"]).astimezone(tz)
    when = f"{day_text(moment.date())} omstreeks {moment:%H:%M} uur"
    where = f" bij {req['place']}" if req.get("place") else ""
    counts = _results(box, req)
    found = counts["found"]
    if kind == "receipt":
        kept = (f"Wij hebben rond dat moment {_recordings(found)} gevonden. Die bewaren wij in elk geval tot uw "
                "verzoek is afgehandeld; daarna gelden weer de gewone bewaartermijnen.") if found else (
                "Wij hebben rond dat moment geen opnames van bodycams gevonden. Camerabeelden worden na de "
                "bewaartermijn automatisch verwijderd.")
        return [f"Op {received} hebben wij {what} ontvangen over camerabeelden van handhavers van {when}{where}.",
                kept, f"U ontvangt ons antwoord uiterlijk op {deadline}."]
    if kind == "extension":
        first = day_text(date.fromisoformat(req["original_deadline"]))
        months = req["extension_months"]
        return [f"Op {received} hebben wij {what} ontvangen over camerabeelden van {when}{where}. Wij zouden u "
                f"uiterlijk op {first} antwoorden.",
                f"Wij hebben meer tijd nodig. Op grond van artikel 12, derde lid, van de Algemene verordening "
                f"gegevensbescherming verlengen wij de termijn met {months} maand{'en' if months > 1 else ''}. "
                f"De reden: {req['extension_reason']}",
                f"U ontvangt ons antwoord uiterlijk op {deadline}."]
    outcome, decision = req["outcome"], req.get("decision_ref")
    ref = f" (besluit {decision})" if decision else ""
    opening = f"Op {received} hebben wij {what} ontvangen over camerabeelden van {when}{where}."
    if outcome == "withdrawn":
        return [opening, "U hebt uw verzoek ingetrokken. Wij hebben het afgesloten. De opnames die voor uw "
                "verzoek werden bewaard, vallen weer onder de gewone bewaartermijn."]
    if req["kind"] == "objection" and outcome == "upheld":
        deleted, blocked = counts.get("deleted", 0), counts.get("blocked", 0)
        text = [opening, f"Wij hebben besloten uw bezwaar toe te kennen{ref}."]
        text.append(f"Wij hebben {_recordings(deleted)} verwijderd, voordat de gewone bewaartermijn was "
                    "verstreken." if deleted else "Er waren geen opnames meer om te verwijderen.")
        if blocked:
            which = "Eén opname" if blocked == 1 else f"{blocked} opnames"
            text.append(f"{which} kunnen wij nog niet verwijderen, omdat wij {'die' if blocked > 1 else 'deze'} "
                        "moeten bewaren voor een andere wettelijke verplichting (bijvoorbeeld een aangifte of een "
                        "vordering van het Openbaar Ministerie). Zodra die verplichting vervalt, volgt de "
                        "verwijdering.")
        return [*text, RIGHTS]
    if outcome == "rejected":
        return [opening, f"Wij hebben besloten {what} af te wijzen{ref}. De redenen staan in het besluit.", RIGHTS]
    if req["kind"] == "access_request":
        copies = sum(1 for rows in ar.derivatives(
            box, [i["recording_id"] for i in ar.links(box, req["id"], include_unlinked=False)]).values()
            for copy in rows if copy["state"] == "stored")
        text = [opening]
        if found:
            text.append(f"Wij hebben {_recordings(found)} gevonden van het moment en de plaats die u noemde{ref}.")
            if copies:
                text.append(f"Wij hebben daarvan {_recordings(copies)} gemaakt waarin andere personen "
                            "onherkenbaar zijn gemaakt. U ontvangt die apart, beveiligd met een wachtwoord dat wij "
                            "u langs een andere weg geven.")
        else:
            text.append(f"Wij hebben geen opnames van u gevonden{ref}.")
        return [*text, RIGHTS]
    # a complaint, answered or upheld
    verdict = "gegrond" if outcome == "upheld" else "behandeld"
    return [opening, f"Wij hebben uw klacht {verdict}{ref}. De toelichting staat in het besluit.",
            "Bent u niet tevreden over de afhandeling van uw klacht? Dan kunt u zich wenden tot de Nationale "
            "ombudsman of de gemeentelijke ombudsman."]


def render(box: Box, req: dict, kind: str, at: datetime | None = None) -> bytes:
    """The letter as PDF bytes (no catalog writes: `make` puts it on record)."""
    conf = box.settings.box
    issuer = pdf_document.issuer(conf.municipality, conf.name)
    title = {"receipt": "Ontvangstbevestiging", "extension": "Verlenging van de beslistermijn",
             "outcome": "Besluit op " + SUBJECT[req["kind"]]}[kind]
    pdf = Document(f"Brief · {req['ref']}", f"{title} {req['ref']}", issuer)
    pdf.add_page()
    pdf.paragraph(req["requester"], size=10)
    if req.get("contact"):
        pdf.paragraph(req["contact"], size=10)
    pdf.ln(8)
    today = (at or box.clock()).astimezone(ZoneInfo(conf.timezone)).date()
    pdf.fields([("Datum", day_text(today), False), ("Ons kenmerk", req["ref"], False),
                ("Onderwerp", title, False)])
    pdf.ln(4)
    pdf.paragraph(f"Geachte heer/mevrouw {req['requester']},", size=10)
    pdf.ln(2)
    for text in body(box, req, kind):
        pdf.paragraph(text, size=10)
        pdf.ln(2)
    contact = ar.settings(box).contact
    if contact:
        pdf.paragraph(f"Hebt u vragen? Neem dan contact met ons op, met ons kenmerk {req['ref']}: {contact}", size=10)
        pdf.ln(2)
    pdf.ln(4)
    pdf.paragraph("Met vriendelijke groet,", size=10)
    pdf.paragraph(issuer or "Team Handhaving", size=10)
    return pdf.pdf_bytes()
