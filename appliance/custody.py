"""The chain of custody of a recording, or of every recording of a case: what a court or a complaints
committee asks for. A report names each recording (its id, the SHA-256 of its sealed container, size,
camera and model, officer, team, times as the camera and as the box corrected them, the clock offset and
whether the box's clock was synchronised, where it came from) and every event the audit log holds about it,
in order: ingest, each view with its purpose and person, holds, handovers with their receivers,
redactions, sync receipts, deletion. Each event carries its audit entry's hash and the entry's own
signature, so one event can be checked against the box's key without the rest of the log.

The report is JSON (`type` "kluis-custody-report"), signed by the box (`kluis/v1/custody-report`, the
signature over the report without its `signature` field), and a PDF rendering of it for people, whose
SHA-256 the signed JSON carries. `kluis export verify REPORT.json` (or the PDF, with its JSON beside it)
checks the report's signature, each event's signature, and the PDF's hash: a one-byte change anywhere fails.
Making a report is itself an audit event (`custody_report`), recorded before the report is made, so the
report that was handed out is the last thing it does not list.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from nacl.signing import VerifyKey

from . import audit, signing
from .box import Box
from .canonical import canonical
from .clock import to_iso
from .errors import KluisError, NotFound
from .keys import fingerprint
from .pdf_document import Document

TYPE = "kluis-custody-report"
VERSION = 1
IDENTITY = ("id", "sha256", "size", "camera_serial", "officer", "team", "start_time", "end_time", "camera_start_time",
            "camera_end_time", "clock_offset_s", "clock_synced", "source", "source_ref", "ingested_at", "state",
            "category", "derived_from", "pre_record_s", "post_record_s")
# How the PDF names what happened; the JSON keeps the audit log's own action names.
ACTIONS = {"ingest": "opgeslagen in de box", "view": "bekeken", "hold_add": "bewaring geplaatst",
           "hold_release": "bewaring opgeheven", "delete": "verwijderd", "handover_prepare": "overdracht voorbereid",
           "handover_approve": "overdracht goedgekeurd en verstrekt", "handover_refuse": "overdracht geweigerd",
           "handover_cancel": "overdracht ingetrokken", "handover_form": "overdrachtsformulier afgedrukt",
           "redact_start": "redactie begonnen", "redact": "geredigeerde kopie gemaakt",
           "sync_send": "naar het archief gestuurd", "sync_receipt": "ontvangst bevestigd door het archief",
           "request_link": "gekoppeld aan een verzoek", "request_unlink": "ontkoppeld van een verzoek",
           "export": "geëxporteerd", "custody_report": "bewaarketenrapport gemaakt",
           "case_open": "zaak geopend", "case_change": "zaak gewijzigd", "case_close": "zaak gesloten",
           "case_reopen": "zaak heropend"}


def _recording(box: Box, recording_id: str) -> dict:
    db = box.catalog.db
    rows = list(db.query("SELECT * FROM recordings WHERE id = ?", [recording_id]))
    if rows:
        row = rows[0]
        found = {key: row.get(key) for key in IDENTITY}
        model = db.execute("SELECT model FROM devices WHERE serial = ?", [row["camera_serial"]]).fetchone()
        found["camera_model"] = model[0] if model else None
        return found
    gone = list(db.query("SELECT recording_id AS id, sha256, size, start_time, end_time, ingested_at, category, "
                         "reason AS deletion_reason, deleted_at FROM deletions WHERE recording_id = ?", [recording_id]))
    if gone:
        return {**gone[0], "state": "deleted"}
    raise NotFound(f"no recording {recording_id!r} (nor a record of its deletion)")


def _events(box: Box, entries: list[dict]) -> list[dict]:
    signed = audit.signatures(box.catalog, [e["seq"] for e in entries])
    return [{key: e[key] for key in ("seq", "time", "actor", "action", "recording_id", "purpose", "case_ref", "client",
                                     "details", "prev_hash", "hash")} | {"signature": signed.get(e["seq"])}
            for e in entries]


def build(box: Box, *, recording_id: str | None = None, case_ref: str | None = None, actor: str,
          client: str | None = None) -> tuple[dict, bytes]:
    """The signed report of one recording, or of a case (every recording an audit entry names under
    `case_ref`, and every entry of the case), and its PDF. Records the `custody_report` event first."""
    if (recording_id is None) == (case_ref is None):
        raise KluisError("a custody report is of one recording or of one case")
    catalog = box.catalog
    if recording_id is not None:
        _recording(box, recording_id)  # NotFound before anything is written
    elif not audit.entries(catalog, case_ref=case_ref, limit=1):
        raise NotFound(f"no case {case_ref!r} in the audit log")
    audit.record(catalog, actor=actor, action="custody_report", recording_id=recording_id, case_ref=case_ref,
                 client=client, details={"subject": "recording" if recording_id else "case"})
    if recording_id is not None:
        entries = audit.entries(catalog, recording_id=recording_id)
        ids = [recording_id]
    else:
        entries = audit.entries(catalog, case_ref=case_ref)
        ids = sorted({e["recording_id"] for e in entries if e["recording_id"]})
        by_recording = [e for rid in ids for e in audit.entries(catalog, recording_id=rid)]
        entries = sorted({e["seq"]: e for e in entries + by_recording}.values(), key=lambda e: e["seq"])
    key = box.signing_key()
    conf = box.settings.box
    count, head = audit.head(catalog)
    signer = key.verify_key.encode().hex()
    body: dict = {
        "type": TYPE, "v": VERSION, "made_at": to_iso(box.clock()), "made_by": actor, "signer": signer,
        "subject": {"recording": recording_id} if recording_id else {"case": case_ref},
        "box": {"name": conf.name, "municipality": conf.municipality, "fingerprint": fingerprint(bytes.fromhex(signer))},
        "recordings": [_recording(box, rid) for rid in ids],
        "events": _events(box, entries),
        "audit_head": {"count": count, "hash": head},
    }
    pdf = render_pdf(body)
    body["pdf_sha256"] = hashlib.sha256(pdf).hexdigest()
    return signing.signed(body, key, signing.CUSTODY_REPORT), pdf


def to_json(report: dict) -> bytes:
    return json.dumps(report, indent=1, sort_keys=True, ensure_ascii=False).encode("utf-8") + b"\n"


def render_pdf(body: dict) -> bytes:
    """The report for people (Dutch); its SHA-256 goes into the signed JSON."""
    subject = body["subject"]
    what = f"opname {subject['recording']}" if subject.get("recording") else f"zaak {subject['case']}"
    issuer = body["box"].get("municipality") or body["box"].get("name") or ""
    pdf = Document(f"Bewaarketenrapport · {what}", f"Bewaarketenrapport {what}", issuer)
    pdf.add_page()
    pdf.title_line(f"Bewaarketenrapport: {what}")
    pdf.paragraph(f"Gemaakt {body['made_at']} door {body['made_by']}, uit het logboek van box {body['box']['name']} "
                  f"(sleutel {body['box']['fingerprint']}). Het logboek telde toen {body['audit_head']['count']} "
                  f"regels; de laatste had hash {body['audit_head']['hash']}.")
    for n, rec in enumerate(body["recordings"], start=1):
        pdf.heading(f"{n}. Opname {rec['id']}")
        pdf.fields([(key, rec.get(key), key in ("sha256", "id")) for key in sorted(rec) if key != "id"])
    pdf.heading("Gebeurtenissen")
    for event in body["events"]:
        details = canonical(event["details"]).decode() if event["details"] is not None else ""
        pdf.fields([(f"#{event['seq']} {event['time']}", f"{ACTIONS.get(event['action'], event['action'])} "
                     f"({event['action']}) door {event['actor']}"
                     + (f", doel {event['purpose']}" if event["purpose"] else "")
                     + (f", zaak {event['case_ref']}" if event["case_ref"] else "")
                     + (f", opname {event['recording_id']}" if event["recording_id"] and len(body["recordings"]) > 1 else "")
                     + (f"; {details}" if details else "") + f"; hash {event['hash']}", False)])
    pdf.heading("Controle")
    pdf.paragraph("Bij dit rapport hoort een door de box ondertekend JSON-bestand met dezelfde inhoud en de SHA-256 "
                  "van deze PDF. Controleer beide met: kluis export verify RAPPORT.json [--box-key SLEUTEL]. Iedere "
                  "gebeurtenis draagt ook de eigen handtekening van haar logboekregel.")
    return pdf.pdf_bytes()


@dataclass
class Checked:
    report: dict | None = None
    problems: list[str] = field(default_factory=list)
    ok_lines: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.report is not None and not self.problems


def is_report(path: Path) -> bool:
    """Whether `path` is a custody report (its JSON, or a PDF with its JSON beside it)."""
    json_path = path.with_suffix(".json") if path.suffix.lower() == ".pdf" else path
    try:
        return json_path.is_file() and json.loads(json_path.read_bytes()[:10_000_000]).get("type") == TYPE
    except (ValueError, UnicodeDecodeError, AttributeError, OSError):
        return False


def verify(path: Path, box_key: str | None = None) -> Checked:
    """Check a report: its signature (by `box_key`, when given), every event's own signature and the chain
    of hashes between consecutive events, and the PDF beside it (REPORT.pdf) against `pdf_sha256`."""
    result = Checked()
    json_path = path.with_suffix(".json") if path.suffix.lower() == ".pdf" else path
    try:
        report = json.loads(json_path.read_bytes())
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        result.problems.append(f"{json_path.name}: not a readable custody report ({exc})")
        return result
    result.report = report
    problem = signing.check_signed(report, signing.CUSTODY_REPORT, signer=box_key.lower() if box_key else None)
    if problem:
        result.problems.append(f"the report's signature: {problem}")
        return result
    result.ok_lines.append(f"the report is signed by box key {report['box']['fingerprint']}")
    unsigned = 0
    for event in report["events"]:
        entry = {k: event[k] for k in audit.COLUMNS}
        entry["details"] = canonical(event["details"]).decode("utf-8") if event["details"] is not None else None
        if audit.entry_hash(entry) != event["hash"]:
            result.problems.append(f"event #{event['seq']}: its fields do not give its hash")
        elif event["signature"] is None:
            unsigned += 1
        elif not audit.entry_signature_valid(VerifyKey(bytes.fromhex(report["signer"])), event["hash"],
                                             event["signature"]):
            result.problems.append(f"event #{event['seq']}: its own signature does not match")
    result.ok_lines.append(f"{len(report['events']) - unsigned} event(s) carry their own good signature"
                           + (f"; {unsigned} not yet signed on their own (the report's signature covers them)"
                              if unsigned else ""))
    pdf_path = json_path.with_suffix(".pdf")
    if pdf_path.is_file():
        if hashlib.sha256(pdf_path.read_bytes()).hexdigest() != report.get("pdf_sha256"):
            result.problems.append(f"{pdf_path.name}: its SHA-256 is not the one the signed report names")
        else:
            result.ok_lines.append(f"{pdf_path.name} is the report's own rendering (SHA-256 matches)")
    elif path.suffix.lower() == ".pdf":
        result.problems.append(f"{pdf_path.name}: missing")
    return result
