"""The headings of the CSV files Kluis writes (the logboek and its excerpt in a handover package, the
deletion report, the handover register), in Dutch by default and in English for a web UI reader who chose
it. The rows keep the catalog's column codes; only the heading row is worded, here, in one place, so that
the web UI and the CLI head the same file the same way. The statistics' CSV is worded by the web UI's own
words (appliance/council_report.py)."""

from __future__ import annotations

from typing import Sequence

from .purposes import Label

HEADINGS: dict[str, Label] = {
    # the audit log (appliance.audit.COLUMNS)
    "seq": Label("Volgnummer", "Number"),
    "time": Label("Tijd", "Time"),
    "actor": Label("Door", "By"),
    "action": Label("Handeling", "Action"),
    "recording_id": Label("Opname", "Recording"),
    "purpose": Label("Doel", "Purpose"),
    "case_ref": Label("Zaaknummer", "Case reference"),
    "client": Label("Toegang via", "Access via"),
    "details": Label("Details", "Details"),
    "prev_hash": Label("Vorige hash", "Previous hash"),
    "hash": Label("Hash", "Hash"),
    # the deletion report (appliance.retention.REPORT_COLUMNS)
    "sha256": Label("SHA-256", "SHA-256"),
    "start_time": Label("Begin", "Start"),
    "end_time": Label("Einde", "End"),
    "ingested_at": Label("Opgeslagen", "Stored"),
    "size": Label("Grootte (bytes)", "Size (bytes)"),
    "category": Label("Categorie", "Category"),
    "term_days": Label("Bewaartermijn (dagen)", "Term (days)"),
    "reason": Label("Reden", "Reason"),
    "deleted_at": Label("Verwijderd", "Deleted"),
    "blob_removed_at": Label("Bestand verwijderd", "File removed"),
    # the handover register (appliance.handover.REGISTER_COLUMNS)
    "id": Label("Overdracht", "Handover"),
    "state": Label("Status", "State"),
    "prepared_by": Label("Voorbereid door", "Prepared by"),
    "prepared_at": Label("Voorbereid op", "Prepared at"),
    "approved_by": Label("Goedgekeurd door", "Approved by"),
    "approved_at": Label("Goedgekeurd op", "Approved at"),
    "single_approval": Label("Eén goedkeurder", "Single approval"),
    "refused_by": Label("Geweigerd door", "Refused by"),
    "refused_at": Label("Geweigerd op", "Refused at"),
    "refuse_reason": Label("Reden van weigering", "Reason refused"),
    "receiver": Label("Ontvanger", "Receiver"),
    "basis": Label("Grondslag", "Legal basis"),
    "protection": Label("Beveiliging", "Protection"),
    "recordings": Label("Opnames", "Recordings"),
    "package_sha256": Label("SHA-256 pakket", "Package SHA-256"),
    "package_size": Label("Grootte pakket (bytes)", "Package size (bytes)"),
    "manifest_sha256": Label("SHA-256 manifest", "Manifest SHA-256"),
}


def headings(columns: Sequence[str], lang: str = "nl") -> list[str]:
    """The heading row for these columns in `lang` ('nl' or 'en'); a column without a heading here keeps
    its code (a new column is never dropped)."""
    return [getattr(HEADINGS[c], "en" if lang == "en" else "nl") if c in HEADINGS else c for c in columns]
