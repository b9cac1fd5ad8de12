"""The fixed list of purposes for which footage may be held or opened (doel).

Every view, export and hold names one of these; the code is what the catalog and the audit log store,
the labels are what people read (Dutch in the web UI, English in logs and the CLI help).
"""

from __future__ import annotations

from typing import NamedTuple

from .errors import KluisError


class Label(NamedTuple):
    nl: str
    en: str


PURPOSES: dict[str, Label] = {
    "police_report": Label("aangifte", "police report"),
    "complaint": Label("klacht", "complaint"),
    "access_request": Label("inzageverzoek", "access request"),
    "requisition": Label("vordering OM", "requisition by the public prosecutor"),
    "objection": Label("bezwaar", "objection"),
    "training": Label("training op verzoek van de handhaver", "training at the officer's request"),
}


def parse_purpose(text: str | None) -> str:
    """A purpose code from what a person typed: the code itself or its Dutch or English label."""
    wanted = (text or "").strip().lower()
    for code, label in PURPOSES.items():
        if wanted in (code, label.nl.lower(), label.en.lower()):
            return code
    choices = ", ".join(f"{code} ({label.nl})" for code, label in PURPOSES.items())
    if not wanted:
        raise KluisError(f"a purpose is required: one of {choices}")
    raise KluisError(f"unknown purpose {text!r}: choose one of {choices}")


def needs_case_ref(code: str, export: bool = False) -> bool:
    """Whether reading footage for this purpose must name a case reference (zaaknummer): always, except
    viewing for training, which the officer asks for themselves and which has no case. Web UI and CLI."""
    return export or code != "training"


def label(code: str | None, lang: str = "nl") -> str:
    """The label of a code for display; an unknown code (an old entry) is shown as it is."""
    if code in PURPOSES:
        return getattr(PURPOSES[code], lang)
    return code or ""
