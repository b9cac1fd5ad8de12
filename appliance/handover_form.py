"""The transfer form (overdrachtsformulier) of a handover, printed from the box at any time, without footage.

The package holds the form as it was made at approval; the counter needs it on paper too: to sign when
the receiver collects the package, or to check a handover that waits for approval. This form is made from
the register and the catalog alone (no footage is opened, no key is needed): the recordings' metadata,
the ciphertext hashes the box keeps, and, once approved, every exported file's hash and the package's,
as the export entries in the audit log recorded them. Printing it is on record (handover_form, one entry
per recording), like every other step of a handover.

The municipality (`[box] municipality`) is the issuing party; people are named by full name and function
(appliance.users.person_entry, worded by transfer_form.person_text), the login name standing in when none
was given.
"""

from __future__ import annotations

from . import audit, handover
from .box import Box
from .errors import NotFound
from .package import issuer
from .purposes import label as purpose_label
from .users import person_entry as person

# The form says in which state it was printed: a draft before approval, not handed over after a refusal.
FORM_STATE = {handover.PREPARED: "ontwerp", handover.APPROVED: "goedgekeurd", handover.REFUSED: "geweigerd",
              handover.CANCELLED: "ingetrokken"}


def _exports(box: Box, handover_id: str, recording_id: str) -> dict | None:
    """The export entry of this recording in this handover (what approval wrote), if any."""
    for entry in audit.entries(box.catalog, recording_id=recording_id, action="export"):
        details = entry["details"] or {}
        if details.get("handover") == handover_id:
            return details
    return None


def manifest_from_register(box: Box, h: dict) -> dict:
    """A manifest-shaped dict (appliance.package's keys) for render_transfer_form, from the register."""
    files = []
    package_sha = None
    for item in h["items"]:
        try:
            recording = box.catalog.get_recording(item["recording_id"])
        except NotFound:
            recording = {"id": item["recording_id"]}
        exported = _exports(box, h["id"], item["recording_id"])
        chain = {"ciphertext_sha256": recording.get("sha256"), "ciphertext_size": recording.get("blob_size")}
        if exported:
            chain["exported_sha256"] = exported.get("sha256")
            package_sha = package_sha or exported.get("package_sha256")
        clip = (exported or {}).get("clip")
        if clip is None and item["clip_from_s"] is not None:
            clip = {"from_s": item["clip_from_s"], "to_s": item["clip_to_s"]}
        officer = person(box, recording.get("officer"))
        files.append({
            "name": (exported or {}).get("name") or "", "recording_id": item["recording_id"],
            "camera": recording.get("camera_serial"), "officer": recording.get("officer"),
            "officer_person": officer or None,
            "camera_start": recording.get("camera_start_time"), "camera_end": recording.get("camera_end_time"),
            "corrected_start": recording.get("start_time"), "corrected_end": recording.get("end_time"),
            "clock_offset_s": recording.get("clock_offset_s"),
            "pre_record_s": recording.get("pre_record_s"), "post_record_s": recording.get("post_record_s"),
            "clip": clip, "size": (exported or {}).get("size"), "sha256": (exported or {}).get("sha256"),
            "chain": chain,
        })
    return {
        "format": "kluis-handover/1", "handover_id": h["id"], "box": issuer(box),
        "state": FORM_STATE.get(h["state"], h["state"]),
        "prepared_by": h["prepared_by"], "prepared_at": h["prepared_at"],
        "prepared_by_person": person(box, h["prepared_by"]),
        "approved_by": h.get("approved_by"), "approved_at": h.get("approved_at"),
        "approved_by_person": person(box, h.get("approved_by")) or None,
        "single_approval": bool(h.get("single_approval")),
        "receiver": h["receiver"], "basis": h["basis"], "case_ref": h["case_ref"],
        "purpose": h["purpose"], "purpose_label": purpose_label(h["purpose"], "nl"),
        "protection": h["protection"], "age_recipient": h.get("age_recipient"),
        "files": files, "package_sha256": package_sha or h.get("package_sha256"),
        "manifest_sha256": h.get("manifest_sha256"),
    }

def record_print(box: Box, handover_id: str, actor: str, client: str | None = None) -> dict:
    """Put the print of the form on record and return what the form shows (manifest_from_register): the
    PDF itself touches no catalog, so a server can render it on a worker thread. The caller has checked
    that `actor` may see the handover."""
    h = handover.get(box, handover_id)
    with box.catalog.transaction():
        for recording_id in h["recording_ids"]:
            audit.record(box.catalog, actor=actor, action="handover_form", recording_id=recording_id,
                         purpose=h["purpose"], case_ref=h["case_ref"], client=client, clock=box.clock,
                         details={"handover": handover_id, "state": h["state"], "footage": False})
    return manifest_from_register(box, h)

