"""How the logboek tells an audit entry: one sentence per action, in the reader's language, and the entry's
other fields labelled ("Jan de Vries bekeek opname 2026-...-cam07 voor klacht (zaak K-2026-14)").

Presentation only: no HTTP and no database. The route hands in gettext and the formatters of the page
(times in the box's zone, purpose and role labels, people's names); the sentences are gettext ids, so the
English UI gets English sentences from the same table. Every action any module writes to an audit log has
an entry in SENTENCES (tests/audit/test_audit_sentences.py finds the actions in the source and fails on one
without a sentence); an unknown action (an entry from a newer or older box) is still told, with its code.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from .i18n import N_

# action -> sentence. Placeholders: %(actor)s, %(recording)s, %(case)s (the case reference), and any key of the entry's details (shown
# inline and therefore not repeated among the labelled fields). The purpose and case reference, when the
# entry has them, follow the sentence as "for <purpose> (case <ref>)".
SENTENCES: dict[str, str] = {
    # footage (appliance/footage.py, the one gate)
    "view": N_("%(actor)s viewed recording %(recording)s"),
    "range_read": N_("%(actor)s read part of recording %(recording)s"),
    "view_played": N_("%(actor)s played part of recording %(recording)s"),
    "export": N_("%(actor)s exported recording %(recording)s"),
    "break_glass": N_("%(actor)s opened the box with the recovery key for recording %(recording)s"),
    # recordings and retention
    "ingest": N_("%(actor)s stored recording %(recording)s from camera %(camera)s"),
    "reason_set": N_("%(actor)s set the reason of recording %(recording)s to %(reason)s"),
    "category_change": N_("%(actor)s changed the retention categories of recording %(recording)s from %(old)s to "
                          "%(new)s"),
    "hold_add": N_("%(actor)s placed a hold on recording %(recording)s"),
    "hold_release": N_("%(actor)s released the hold on recording %(recording)s"),
    "hold_review": N_("%(actor)s reviewed the hold on recording %(recording)s"),
    "delete": N_("%(actor)s deleted recording %(recording)s"),
    "policy_change": N_("%(actor)s changed the retention term from %(old)s to %(new)s days"),
    # people and logging in
    "login": N_("%(actor)s logged in"),
    "login_failed": N_("Failed login as %(actor)s"),
    "command_refused": N_("%(actor)s was refused the command %(command)s"),
    "logout": N_("%(actor)s logged out"),
    "user_add": N_("%(actor)s added user %(user)s"),
    "user_change": N_("%(actor)s changed user %(user)s"),
    "role_change": N_("%(actor)s changed the role of %(user)s from %(from)s to %(to)s"),
    "key_slot_change": N_("%(actor)s changed the key slot of %(user)s"),
    # cameras and devices (appliance/dock, appliance/usb, appliance/axis)
    "pair": N_("%(actor)s paired camera %(camera)s"),
    "pair_refused": N_("Pairing of a camera was refused"),
    "device_alert": N_("A device raised an alert: %(kind)s"),
    "offload_error": N_("Offloading a camera failed"),
    "usb_found": N_("A USB camera was found"),
    "usb_unknown": N_("An unknown USB device was plugged in"),
    "usb_error": N_("A USB camera could not be read"),
    "axis_connection_file": N_("%(actor)s made an Axis connection file for account %(account)s"),
    "axis_first_contact": N_("Axis system %(system_name)s connected for the first time"),
    "axis_auth_refused": N_("An Axis system's credentials were refused"),
    "axis_system_refused": N_("An Axis system was refused"),
    "axis_abandoned": N_("An unfinished Axis upload was discarded"),
    # the box
    "setup": N_("%(actor)s set up the box"),
    "settings_change": N_("%(actor)s changed settings"),
    "alert_mail": N_("%(actor)s mailed an alert (%(what)s)"),
    "alerts_test": N_("%(actor)s sent a test alert by mail and syslog"),
    "verify": N_("%(actor)s verified the box"),
    "backup": N_("%(actor)s made a backup"),
    "backup_failed": N_("A backup to %(target)s failed"),
    "backup_push": N_("The deletions reached the backup target %(target)s"),
    "backup_test": N_("%(actor)s tested the connection to the backup target %(target)s"),
    "restore": N_("%(actor)s restored the box from a backup"),
    "update_staged": N_("%(actor)s prepared an update to version %(version)s"),
    "update_refused": N_("An update was refused"),
    "update_start": N_("%(actor)s started the update to version %(version)s"),
    "update": N_("%(actor)s installed version %(version)s"),
    "update_rolled_back": N_("The update to version %(version)s was rolled back"),
    "audit_export": N_("%(actor)s exported %(entries)s audit log entries"),
    "register_export": N_("%(actor)s made the processing register document %(document)s as %(format)s"),
    "audit_prune": N_("%(actor)s pruned audit log entries %(first)s to %(last)s, older than %(term_days)s days"),
    # access requests (appliance/access_requests.py)
    "request_add": N_("%(actor)s registered request %(request)s"),
    "request_link": N_("%(actor)s linked recording %(recording)s to request %(request)s"),
    "request_unlink": N_("%(actor)s unlinked recording %(recording)s from request %(request)s"),
    "request_close": N_("%(actor)s closed request %(request)s"),
    "custody_report": N_("%(actor)s made a custody report"),
    "request_extend": N_("%(actor)s extended the deadline of request %(request)s to %(deadline)s"),
    "request_letter": N_("%(actor)s made the %(letter)s letter to the requester of request %(request)s"),
    # cases (appliance/cases.py, appliance/case_file.py)
    "case_open": N_("%(actor)s opened case %(case)s"),
    "case_change": N_("%(actor)s changed the title of case %(case)s"),
    "case_close": N_("%(actor)s closed case %(case)s"),
    "case_reopen": N_("%(actor)s reopened case %(case)s"),
    # handovers (appliance/handover.py)
    "handover_prepare": N_("%(actor)s prepared handover %(handover)s of recording %(recording)s"),
    "handover_approve": N_("%(actor)s approved handover %(handover)s of recording %(recording)s"),
    "handover_refuse": N_("%(actor)s refused handover %(handover)s of recording %(recording)s"),
    "handover_cancel": N_("%(actor)s cancelled handover %(handover)s of recording %(recording)s"),
    "handover_denied": N_("%(actor)s was refused a handover step on recording %(recording)s"),
    "handover_failed": N_("Making the package of handover %(handover)s failed for recording %(recording)s"),
    "handover_download": N_("%(actor)s downloaded the package of handover %(handover)s with recording %(recording)s"),
    "handover_form": N_("%(actor)s printed the transfer form of handover %(handover)s for recording %(recording)s"),
    "handover_register": N_("%(actor)s read the handover register"),
    "stats_report": N_("%(actor)s made the report to the council"),  # appliance/council_report.py
    # redaction (appliance/redaction)
    "redact_start": N_("%(actor)s started a redacted copy of recording %(recording)s"),
    "redact": N_("%(actor)s made a redacted copy of recording %(recording)s"),
    "redact_failed": N_("Making a redacted copy of recording %(recording)s failed"),
    # the central archive, seen from the box (sync/client.py, appliance/outbox.py)
    "sync_send": N_("%(actor)s sent recording %(recording)s to the archive"),
    "sync_receipt": N_("The archive confirmed receiving recording %(recording)s"),
    "sync_withdrawn": N_("Recording %(recording)s was withdrawn from the queue for the archive"),
    "sync_rewrap": N_("%(actor)s re-sealed the key of recording %(recording)s for the archive"),
    "requisition_report": N_("%(actor)s reported on requisition %(requisition)s"),
    # the central archive's own log (sync/archive): recording is the footage's SHA-256 there
    "enroll": N_("Box %(name)s enrolled with the archive"),
    "receive": N_("The archive received recording %(recording)s"),
    "metadata_update": N_("The archive updated the holds of recording %(recording)s"),
    "requisition_add": N_("%(actor)s registered requisition %(requisition)s"),
    "requisition_close": N_("%(actor)s closed requisition %(requisition)s"),
    "checkpoint_refused": N_("The archive refused a signed checkpoint of a box"),
    "audit_backwards": N_("A box's audit log went backwards"),
    "audit_fork": N_("A box's audit log was rewritten"),
    "witness_restart": N_("%(actor)s restarted the archive's witness of a box's audit log"),
}

UNKNOWN = N_("%(actor)s: %(action)s")  # an action of another version of Kluis
PURPOSE = N_("for %(purpose)s")
CASE = N_("(case %(case)s)")
SYSTEM = N_("The system")  # the actor 'system': unattended work
RECOVERY = N_("The recovery key")  # the actor 'recovery': a restore unlocked with the recovery key

# Each action in a word or two: the logboek's action filter and a recording's trail (tested to cover SENTENCES).
ACTION_LABELS = {
    "view": N_("viewed"), "range_read": N_("part read"), "export": N_("exported"), "ingest": N_("stored"),
    "view_played": N_("played (positions)"),  # what a view's player played (appliance/timeline.py)
    "hold_add": N_("hold placed"), "hold_release": N_("hold released"), "hold_review": N_("hold reviewed"),
    "delete": N_("deleted"), "reason_set": N_("reason set"), "login": N_("logged in"),
    "login_failed": N_("login failed"), "command_refused": N_("command refused"), "logout": N_("logged out"), "user_add": N_("user added"),
    "user_change": N_("user changed"), "role_change": N_("role changed"), "key_slot_change": N_("key slot changed"),
    "pair": N_("camera paired"), "pair_refused": N_("pairing refused"), "settings_change": N_("settings changed"),
    "alert_mail": N_("alert mailed"), "alerts_test": N_("test alert sent"),
    "policy_change": N_("retention policy changed"), "verify": N_("verified"), "offload_error": N_("offload error"),
    "audit_prune": N_("audit log pruned"),
    "register_export": N_("processing register made"),
    "sync_send": N_("sent to the archive"), "sync_receipt": N_("receipt from the archive"),
    "setup": N_("box set up"),  # by the first-boot wizard
    "request_add": N_("request registered"), "request_link": N_("linked to a request"),
    "request_unlink": N_("unlinked from a request"), "request_close": N_("request closed"),
    "request_extend": N_("request deadline extended"), "custody_report": N_("custody report"), "request_letter": N_("letter to a requester"),
    "case_open": N_("case opened"), "case_change": N_("case changed"), "case_close": N_("case closed"),
    "case_reopen": N_("case reopened"),
    "handover_prepare": N_("handover prepared"), "handover_approve": N_("handover approved"),
    "handover_refuse": N_("handover refused"), "handover_cancel": N_("handover cancelled"),
    "handover_denied": N_("handover step refused"), "handover_failed": N_("handover package failed"),
    "handover_register": N_("handover register read"),
    "stats_report": N_("council report made"),
    "handover_download": N_("handover package downloaded"), "handover_form": N_("transfer form printed"),
    "redact_start": N_("redaction started"), "redact": N_("redacted copy made"),
    "redact_failed": N_("redaction failed"),
    "backup": N_("backup made"), "backup_failed": N_("backup failed"),
    "backup_push": N_("deletions sent to a backup"), "backup_test": N_("backup connection tested"), "restore": N_("restored from a backup"), "update": N_("update installed"),
    "update_start": N_("update started"), "update_refused": N_("update refused"),
    "update_rolled_back": N_("update rolled back"), "update_staged": N_("update prepared"),
    # Axis body-worn systems (appliance/axis/)
    "axis_connection_file": N_("Axis connection file made"), "axis_first_contact": N_("Axis system connected"),
    "axis_auth_refused": N_("Axis credentials refused"), "axis_system_refused": N_("Axis system refused"),
    # USB mass-storage bodycams (appliance/usb/); registering one is 'pair', as for a dock camera
    "usb_found": N_("USB camera found"), "usb_unknown": N_("unknown USB device"),
    "usb_error": N_("USB camera problem"),
    "audit_backwards": N_("archive: audit log went backwards"),
    "audit_export": N_("audit log exported"),
    "audit_fork": N_("archive: audit log forked"),
    "witness_restart": N_("archive: witness restarted"),
    "axis_abandoned": N_("Axis upload discarded"),
    "break_glass": N_("opened with the recovery key"),
    "category_change": N_("category changed"),
    "checkpoint_refused": N_("archive: checkpoint refused"),
    "device_alert": N_("device alert"),
    "enroll": N_("archive: box enrolled"),
    "metadata_update": N_("Axis metadata updated"),
    "receive": N_("archive: recording received"),
    "requisition_add": N_("requisition registered"),
    "requisition_close": N_("requisition closed"),
    "requisition_report": N_("requisition reported"),
    "sync_rewrap": N_("re-sealed for the archive"),
    "sync_withdrawn": N_("withdrawn from the archive queue"),
}

# The labels of the entry's own columns and of the detail keys worth reading. A key without a label (a
# hash, a key fingerprint, an editor's plan) is shown only in the raw entry behind the toggle.
FIELD_LABELS: dict[str, str] = {
    "recording_id": N_("Recording"), "client": N_("Client"),
    "account": N_("Account"), "address": N_("Address"), "archive": N_("Archive"), "assign": N_("Assigned to"),
    "backup": N_("Backup"), "basis": N_("Legal basis"), "before": N_("Before"), "bundle": N_("Update file"),
    "camera": N_("Camera"), "category": N_("Category"), "clip": N_("Clip"), "clips": N_("Clips"),
    "clock_synced": N_("Camera clock synchronised"), "copied": N_("Recordings copied"), "command": N_("Command"), "count": N_("Entries"),
    "created_at": N_("Created at"), "deadline": N_("Deadline"), "decision_ref": N_("Decision reference"),
    "deep": N_("Deep check"), "download": N_("Download number"), "deleted": N_("Deleted"), "deleted_at": N_("Deleted at"), "encrypt": N_("Encrypted"),
    "end": N_("End"), "error": N_("Error"), "expires_at": N_("Expires at"), "failures": N_("Failed attempts"),
    "first_bad": N_("First bad entry"), "footage_days": N_("Days of footage"), "for": N_("For"), "found": N_("Found"), "from": N_("From"), "full_name": N_("Full name"), "function": N_("Function"),
    "given_time": N_("Time given"), "handover": N_("Handover"), "held_recordings_kept": N_("Held recordings kept"),
    "hold": N_("Hold"), "holds": N_("Holds"), "holds_released": N_("Holds released"), "origin": N_("Opened by"),
    "title": N_("Title"), "how": N_("How"), "job": N_("Job"), "kind": N_("Kind"),
    "kept_by_other_holds": N_("Kept by other holds"), "key_slot": N_("Key slot"), "legal_basis": N_("Legal basis"),
    "locked_until": N_("Locked until"), "matched": N_("Matched"), "mode": N_("Mode"),
    "name": N_("Name"), "new": N_("New"), "office": N_("Office"), "officer": N_("Officer"), "ok": N_("Intact"),
    "old": N_("Old"), "outcome": N_("Outcome"), "permission": N_("Permission"),
    "post_record_s": N_("Post-record (s)"), "pre_record_s": N_("Pre-record (s)"), "prepared_by": N_("Prepared by"),
    "previous": N_("Previous version"), "problem": N_("Problem"), "problems": N_("Problems"),
    "profile": N_("Camera model"), "protection": N_("Protection"), "pruned": N_("Removed backups"),
    "reason": N_("Reason"), "receiver": N_("Receiver"), "received_at": N_("Received at"),
    "received_on": N_("Received on"), "recordings": N_("Recordings"),
    "recordings_past_term": N_("Deleted again: past their term"), "released": N_("Released"),
    "renewed": N_("Renewed"), "request": N_("Request"), "requisition": N_("Requisition"),
    "review_at": N_("Review on"), "role": N_("Role"), "rows": N_("Rows"), "second_factor": N_("Second factor"),
    "serial": N_("Serial number"), "since": N_("Since"), "single_approval": N_("Single approval"),
    "site": N_("Site"), "size": N_("Size (bytes)"), "skipped": N_("Skipped"), "source": N_("Source"), "state": N_("State"),
    "start": N_("Start"), "step": N_("Step"), "still_at_s": N_("Still at (s)"), "sync": N_("Synchronisation"),
    "system_id": N_("System id"), "system_name": N_("System"), "target": N_("Target"), "team": N_("Team"),
    "term_days": N_("Retention term (days)"), "throttled": N_("Further refusals unrecorded until"), "to": N_("To"), "totp": N_("Second factor"),
    "unlocked_with": N_("Unlocked with"), "unpaired": N_("Unpaired"), "until": N_("Until"), "url": N_("Address"),
    "usb": N_("USB"), "user": N_("User"), "version": N_("Version"), "via": N_("Via"), "warning_given": N_("Warned"),
    # the officer's reason (appliance/recordings.py set_reason) and the categories (appliance/retention.py)
    "text": N_("Text"), "warnings": N_("Warnings given"), "before_warnings": N_("Warnings before"),
    "added": N_("Added"), "removed": N_("Taken off"), "delete_after": N_("Deleted from"),
    "what": N_("What"), "why": N_("Why"), "window_minutes": N_("Window (minutes)"),
}
# Codes the domain writes into details, as a reader says them: (detail key, value) -> label.
VALUE_LABELS: dict[tuple[str, str], str] = {
    ("letter", "receipt"): N_("receipt"), ("letter", "extension"): N_("extension"), ("letter", "outcome"): N_("decision"),
    ("reason", "term expired"): N_("retention term expired"),
    ("reason", "term expired after hold released"): N_("retention term expired after the hold was released"),
    ("reason", "wrong password"): N_("wrong password"), ("reason", "wrong code"): N_("wrong code"),
    ("reason", "unknown user"): N_("unknown user"), ("reason", "disabled"): N_("account disabled"),
    ("reason", "role"): N_("the role does not allow it"), ("reason", "condition"): N_("not allowed for this recording or purpose"),
    ("reason", "no key slot"): N_("holds no key"), ("reason", "locked"): N_("account locked"),
    ("reason", "wrong password or code"): N_("wrong password or code"), ("reason", "no code"): N_("no code given"),
    ("reason", "wrong recovery key"): N_("wrong recovery key"),
    ("reason", "no second factor"): N_("no second factor set up"),
    ("reason", "idle"): N_("inactive too long"), ("reason", "user"): N_("by the user"),
    ("origin", "explicit"): N_("opened by hand"), ("origin", "hold"): N_("a hold naming it"),
    ("origin", "handover"): N_("a handover naming it"), ("origin", "request"): N_("a request"),
    ("reason", "case closed"): N_("case closed"),
    ("how", "search"): N_("found by the search"), ("how", "manual"): N_("linked by hand"),
    ("source", "dock"): N_("dock"), ("source", "import"): N_("import"), ("source", "usb"): N_("USB"),
    ("source", "axis"): N_("Axis system"), ("for", "redaction"): N_("making a redacted copy"),
    ("source", "web"): N_("web UI"), ("source", "cli"): N_("command line"),
    ("what", "audit_chain"): N_("the audit log's chain"),
    # device alerts (appliance/dock, appliance/usb, appliance/axis)
    ("kind", "bad_advert"): N_("unreadable announcement on the network"),
    ("kind", "key_mismatch"): N_("camera key does not match"),
    ("kind", "spoofed_serial"): N_("serial number claimed by another device"),
    ("kind", "bad_manifest"): N_("list of recordings refused"), ("kind", "bad_recording"): N_("recording refused"),
    ("kind", "storage_full"): N_("storage full"), ("kind", "protocol_error"): N_("communication error"),
    ("kind", "pair_refused"): N_("pairing refused"), ("kind", "wrong_code"): N_("wrong pairing code"),
    ("kind", "usb_unknown"): N_("unknown USB device"), ("kind", "usb_no_serial"): N_("USB camera without serial number"),
    ("kind", "usb_found"): N_("USB camera found"), ("kind", "usb_gone"): N_("USB camera removed while reading"),
    ("kind", "usb_error"): N_("USB camera problem"), ("kind", "usb_read_mismatch"): N_("file read differently twice"),
    ("kind", "usb_refused_file"): N_("file refused"), ("kind", "axis_auth_throttled"): N_("too many login attempts"),
    ("kind", "axis_auth_refused"): N_("credentials refused"), ("kind", "axis_system_id_refused"): N_("unknown system"),
}
NONE = N_("none")  # a category_change's old or new categories when there were none
SETTINGS = N_("Settings")  # the label of a settings_change's changed keys (its details are key -> old/new)
YES, NO = N_("yes"), N_("no")

_PLACEHOLDER = re.compile(r"%\((\w+)\)s")
_ISO_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$")


@dataclass
class Reader:
    """What a page knows about its reader: the language (gettext) and how it shows times, purposes, roles
    and people. The defaults make plain text (tests, a CLI)."""
    gettext: Callable[[str], str] = lambda text: text
    fmt_time: Callable[[str], str] = lambda value: value
    purpose_label: Callable[[str], str] = lambda code: code
    reason_label: Callable[[str], str] = lambda code: code  # why a recording was started (agressie, ...)
    role_label: Callable[[str], str] = lambda role: role
    name_of: Callable[[str], str] = lambda login: login  # a login name -> the person's full name
    roles: frozenset[str] = field(default_factory=frozenset)  # values shown with role_label


@dataclass(frozen=True)
class Told:
    sentence: str
    fields: list[tuple[str, str]]  # (label, value): the entry's other fields, in the reader's language
    raw: str  # the whole entry as stored (JSON), for the "details" toggle


def tell(entry: dict, reader: Reader) -> Told:
    """One audit entry (a row of appliance.audit.entries) as a sentence and labelled fields."""
    _ = reader.gettext
    action = entry.get("action") or ""
    details = entry.get("details")
    if not isinstance(details, dict):
        details = {} if details is None else {"details": details}
    values = _Values({key: _value(key, value, reader) for key, value in details.items()})
    values["actor"] = _actor(entry.get("actor") or "", reader)
    values["recording"] = entry.get("recording_id") or "?"
    values["action"] = action
    values["case"] = entry.get("case_ref") or "?"
    template = SENTENCES.get(action, UNKNOWN)
    inline = set(_PLACEHOLDER.findall(template))
    sentence = _(template) % values
    if entry.get("purpose"):
        sentence += " " + _(PURPOSE) % {"purpose": reader.purpose_label(entry["purpose"])}
    if entry.get("case_ref") and "case" not in inline:  # a case's own entries name it in the sentence
        sentence += " " + _(CASE) % {"case": entry["case_ref"]}
    fields: list[tuple[str, str]] = []
    if entry.get("recording_id") and "recording" not in inline:
        fields.append((_(FIELD_LABELS["recording_id"]), entry["recording_id"]))
    if action == "settings_change" and not set(details) & set(FIELD_LABELS):
        changed = "; ".join(_change(key, value, reader) for key, value in sorted(details.items()))
        if changed:
            fields.append((_(SETTINGS), changed))
    else:
        for key, value in details.items():
            if key in inline or key not in FIELD_LABELS or value is None or value == "" or value == []:
                continue
            fields.append((_(FIELD_LABELS[key]), values[key]))
    if entry.get("client"):
        fields.append((_(FIELD_LABELS["client"]), entry["client"]))
    return Told(sentence, fields, json.dumps(_stored(entry), ensure_ascii=False, indent=1, sort_keys=True))


class _Values(dict):
    """A sentence's values: a placeholder whose detail an (older) entry lacks reads '?', not a crash."""

    def __missing__(self, key: str) -> str:
        return "?"


def _actor(actor: str, reader: Reader) -> str:
    if actor == "system":
        return reader.gettext(SYSTEM)
    if actor == "recovery":
        return reader.gettext(RECOVERY)
    return reader.name_of(actor)


def _value(key: str, value: Any, reader: Reader) -> str:
    _ = reader.gettext
    if key in ("old", "new") and value in (None, []):
        return _(NONE)
    if isinstance(value, bool):
        return _(YES) if value else _(NO)
    if value is None:
        return ""
    if isinstance(value, str):
        if (key, value) in VALUE_LABELS:
            return _(VALUE_LABELS[key, value])
        if _ISO_TIME.match(value):
            return reader.fmt_time(value)
        if value in reader.roles:
            return reader.role_label(value)
        if key == "kind" and reader.purpose_label(value) != value:
            return reader.purpose_label(value)
        if key in ("reason", "before") and reader.reason_label(value) != value:
            return reader.reason_label(value)
        return value
    if isinstance(value, list):
        return ", ".join(_value(key, item, reader) for item in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_value(k, v, reader)}" for k, v in value.items())
    return str(value)


def _change(key: str, value: Any, reader: Reader) -> str:
    if isinstance(value, dict) and set(value) == {"old", "new"}:
        return f"{key}: {_value(key, value['old'], reader) or '-'} → {_value(key, value['new'], reader) or '-'}"
    return f"{key}: {_value(key, value, reader)}"


def _stored(entry: dict) -> dict:
    return {key: value for key, value in entry.items() if value is not None}
