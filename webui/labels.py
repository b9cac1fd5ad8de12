"""The words the web UI shows for the domain's codes: states of recordings, cameras, offloads and the archive
queue, and the kinds of device alert. In one place, so that a page never shows a code ("discovered",
"spoofed_serial") and two pages never name the same state differently.

The domain layer speaks English codes and English messages to logs and the CLI; a page looks the code up
here (marked with N_, translated where shown) and falls back to a neutral sentence for a code it does not
know, never to the code itself. tests/webui/test_dutch_pages.py fails on a code that reaches a Dutch page.
"""

from __future__ import annotations

from typing import Callable

from appliance import purposes, todo

from . import i18n
from .i18n import N_

Gettext = Callable[[str], str]

# A recording's state as one word. "held" is no state in the catalog: a stored recording with an active
# hold. recording_state() is the one place that decides which of the two a page shows.
RECORDING_STATES = {
    "stored": N_("stored"), "held": N_("held"), "deleting": N_("being deleted"), "deleted": N_("deleted"),
}

# A dock camera's offload (appliance.dock.offload.CameraProgress.state) and a device's own status
# (devices.status) when nothing is being offloaded.
CAMERA_STATES = {
    "waiting": N_("waiting"), "checking": N_("checking"), "offloading": N_("offloading"), "done": N_("done"),
    "offline": N_("offline"), "error": N_("error"), "refused": N_("refused"), "storage_full": N_("storage full"),
    "discovered": N_("found on the network, not paired"), "paired": N_("paired"), "unpaired": N_("unpaired"),
    "idle": N_("idle"), "found": N_("found, not registered"),  # a USB camera outside an ingest
    "waiting for disk space": N_("waiting for disk space"),
}
# A device status that carries the reason after a colon ("refused: ...", "error: ..."): its first word.
STATUS_PREFIXES = {"refused": N_("refused"), "error": N_("error")}

# A handover (appliance.handover: prepared, approved, refused, cancelled).
HANDOVER_STATES = {"prepared": N_("awaiting approval"), "approved": N_("approved"), "refused": N_("refused"),
                   "cancelled": N_("cancelled")}

# A background job (appliance.redaction.jobs: the jobs table's state).
JOB_STATES = {"queued": N_("waiting"), "running": N_("running"), "done": N_("done"), "failed": N_("failed")}

# A USB camera's ingest (usb_sessions.state), as the overview says it to the officer at the box.
USB_STATES = {
    "reading": N_("reading"), "done": N_("done, you can take the camera out"),
    "gone": N_("camera taken out while being read"), "error": N_("error"), "storage_full": N_("storage full"),
}

# A recording's place in the queue to the central archive (appliance.outbox.STATES): the long form on the
# recording's page, the short form for the counters on /instellingen.
SYNC_STATES = {
    "needs_rewrap": N_("waiting until a user with a key logs in to seal it for the archive"),
    "queued": N_("queued"), "sending": N_("sending"), "failing": N_("failing, will be retried"), "sent": N_("sent"),
}
SYNC_COUNTS = {
    "needs_rewrap": N_("waiting for a key"), "queued": N_("queued"), "sending": N_("sending"),
    "failing": N_("failing"), "sent": N_("sent"),
}

# Device alerts (device_alerts.kind): what happened, as a sentence; %(camera)s and %(address)s are filled
# in (a '?' when the alert has none). The domain's own message stays available as technical detail.
ALERT_KINDS = {
    "pair_refused": N_("Pairing of camera %(camera)s was refused."),
    "wrong_code": N_("Pairing of camera %(camera)s was refused: the code was wrong."),
    "key_mismatch": N_("Camera %(camera)s at %(address)s answered with another key than the one it was paired "
                       "with."),
    "spoofed_serial": N_("A device at %(address)s claims to be the paired camera %(camera)s, with another key: "
                         "refused."),
    "bad_manifest": N_("Camera %(camera)s sent a list of recordings that was refused."),
    "bad_recording": N_("Camera %(camera)s sent a recording that was refused; it stays on the camera."),
    "storage_full": N_("The box's disk is full: camera %(camera)s could not be read."),
    "protocol_error": N_("Camera %(camera)s broke off the offload (protocol error); it is retried at the next "
                         "dock."),
    "bad_advert": N_("A device at %(address)s announced itself in a way the box does not accept; ignored."),
    "usb_unknown": N_("A USB device that is no known camera was plugged in; it was not read."),
    "usb_no_serial": N_("A USB camera without a readable serial number was plugged in; it was not read."),
    "usb_found": N_("USB camera %(camera)s was found; the keeper registers it under Cameras."),
    "usb_gone": N_("USB camera %(camera)s was taken out while it was being read."),
    "usb_error": N_("Reading USB camera %(camera)s went wrong."),
    "usb_read_mismatch": N_("A file on USB camera %(camera)s read differently twice; it was not stored and stays "
                            "on the camera."),
    "usb_refused_file": N_("A file on USB camera %(camera)s was refused and left on the camera."),
    "spoofed_usb": N_("A USB volume claims the serial number of dock camera %(camera)s: refused."),
    "axis_auth_throttled": N_("Too many wrong Axis credentials from %(address)s: refused for a while."),
    "axis_auth_refused": N_("Wrong Axis credentials from %(address)s."),
    "axis_system_id_refused": N_("Another Axis system at %(address)s used the credentials of a connected system: "
                                 "refused."),
}
UNKNOWN_ALERT = N_("Device alert (%(kind)s) for %(camera)s.")


def label(_: Gettext, table: dict[str, str], code: str | None) -> str:
    """`code`'s word from `table` in the user's language; an unknown code as it is (it is data then)."""
    if not code:
        return ""
    return _(table[code]) if code in table else code


def recording_state(_: Gettext, recording: dict, held: bool | None = None) -> str:
    """What a recording is, in one word, on every page: 'held' when it is stored and an active hold keeps it
    (as the state filter 'held' finds it), else its catalog state. `held`: whether it has an active hold;
    None takes it from the row's hold_purposes (the recordings list gives those)."""
    if held is None:
        held = bool(recording.get("hold_purposes"))
    state = recording.get("state") or ""
    if state == "stored" and held:
        state = "held"
    return label(_, RECORDING_STATES, state)


def camera_status(_: Gettext, status: str | None) -> str:
    """A device's status, whose 'refused: ...' and 'error: ...' carry the domain's English reason: the
    reason stays behind (technical detail), the state is said in words."""
    if not status:
        return ""
    if status in CAMERA_STATES:
        return _(CAMERA_STATES[status])
    head = status.split(":", 1)[0].strip()
    if head in STATUS_PREFIXES:
        return _(STATUS_PREFIXES[head])
    return status


def alert_text(_: Gettext, alert: dict) -> str:
    """A device alert as a sentence in the user's language."""
    kind = alert.get("kind") or ""
    if kind == "spoofed_serial" and not alert.get("address"):
        kind = "spoofed_usb"  # the USB ingest's: a volume, not a network address
    params = {"camera": alert.get("serial") or "?", "address": alert.get("address") or "?", "kind": kind}
    return _(ALERT_KINDS.get(kind, UNKNOWN_ALERT)) % params


def sync_skipped(_: Gettext, why: str | None) -> str:
    """Why the last sync pass sent nothing (sync.client.PassResult.skipped, English) in the user's words."""
    if not why:
        return ""
    if why.startswith("not enrolled"):
        return _("not enrolled with an archive")
    if why.startswith("outside the sync window"):
        return _("outside the sync window")
    return _("incomplete")


# The redaction plan's mistakes (appliance.redaction.plan.PlanError.code); %(text)s is the line.
PLAN_ERRORS = {
    "region": N_("Not a region: %(text)s. Give X,Y,W,H in pixels, for example 100,40,80,80."),
    "range": N_("Not a time range: %(text)s. Give START-END in seconds, for example 12-15,5."),
    "backwards": N_("The range %(text)s ends before it starts."),
    "box": N_("Not a box: %(text)s. Give T:X,Y,W,H or LABEL:T:X,Y,W,H."),
    "label": N_("A box label is 1 to 40 characters: %(text)s."),
}


def plan_error(_: Gettext, exc: Exception) -> str:
    """Why a redaction plan's line was refused, in the user's language."""
    code, text = getattr(exc, "code", None), getattr(exc, "text", "")
    if code in PLAN_ERRORS:
        return _(PLAN_ERRORS[code]) % {"text": text}
    if str(exc).startswith("not a time"):  # appliance.time_offsets.parse_seconds
        return _("A time is not understood: give seconds (12,5) or minutes:seconds (1:02,5).")
    return _("A line is not understood; check the regions, boxes and times.")

# The overview's "Te doen" block: appliance.todo's kinds of task.
TASK_LABELS = {
    todo.HANDOVER_APPROVE: N_("Handovers waiting for your approval"),
    todo.HANDOVER_WAITING: N_("Handovers of your team waiting for approval"),
    todo.REQUEST_OVERDUE: N_("Requests past their deadline"),
    todo.REQUEST_DUE: N_("Requests near their deadline"),
    todo.REVIEW_DUE: N_("Holds due for review"),
    todo.REASON_MISSING: N_("Recordings without a reason"),
    todo.SYNC_FAILING: N_("Archive sync failing"),
    todo.ALERTS_UNREAD: N_("Unread alerts"),
    todo.CAMERAS_FOUND: N_("Cameras found, not paired"),
}


# Why a recording was started ([reasons] choices in kluis.toml), as the officer's form and the lists say it:
# the built-in codes in both languages; the configured label wins in Dutch (the keeper may word it their way).
REASON_LABELS = {
    "aggression": ("agressie", "aggression"), "insult": ("belediging", "insult"),
    "threat": ("bedreiging", "threat"), "unsafe_feeling": ("onveilig gevoel", "feeling unsafe"),
    "other": ("anders", "other"),
}


def reason_label(code: str | None, lang: str, choices: dict[str, str] | None = None) -> str:
    """A reason code's label; `choices`: [reasons] choices (code -> label) for the codes the box adds."""
    if not code:
        return ""
    configured = (choices or {}).get(code)
    nl, en = REASON_LABELS.get(code, (configured or code, configured or code))
    return (configured or nl) if lang == "nl" else en


# The statistics (appliance/statistics.py): what each table counts, and the words for its values. The
# page, its CSV and the council report (PDF, CSV; also `kluis stats report`) all label through here.
STATS_TABLES = {  # table key (appliance.stats_report.TABLES) -> (title, label of the first column)
    "per_month": (N_("Recordings per month"), N_("Month")),
    "per_team": (N_("Recordings per team"), N_("Team")),
    "reason": (N_("Recordings per reason for recording"), N_("Reason")),
    "warning": (N_("Warning given before recording"), N_("Warning")),
    "warnings": (N_("Number of warnings given"), N_("Warnings")),
    "category": (N_("Recordings per retention category"), N_("Category")),
    "camera_model": (N_("Recordings per camera model"), N_("Camera model")),
    "source": (N_("Recordings per way into the box"), N_("Way in")),
    "viewed": (N_("Recordings viewed, per purpose"), N_("Purpose")),
    "views": (N_("Views per purpose"), N_("Purpose")),
    "hold_purpose": (N_("Holds per purpose"), N_("Purpose")),
    "outcome": (N_("What became of the recordings"), N_("Outcome")),
}
STATS_VALUES = {
    "warning": {"yes": N_("warning given"), "no": N_("no warning")},
    "source": {"dock": N_("docking station"), "usb": N_("USB cable"), "axis": N_("Axis system"),
               "import": N_("imported by hand")},
    "outcome": {"held": N_("held (kept past the term)"), "handed_over": N_("handed over to police or prosecutor"),
                "access_request": N_("part of an access request"), "objection": N_("part of an objection"),
                "complaint": N_("part of a complaint"), "redacted": N_("redacted copy made"),
                "deleted_term": N_("deleted at the end of the term"), "deleted_early": N_("deleted ahead of term")},
}
MONTH_NAMES = (N_("January"), N_("February"), N_("March"), N_("April"), N_("May"), N_("June"), N_("July"),
               N_("August"), N_("September"), N_("October"), N_("November"), N_("December"))


def month_label(_: Gettext, month: str) -> str:
    """'2026-11' as 'november 2026' (in the viewer's language)."""
    return f"{_(MONTH_NAMES[int(month[5:7]) - 1])} {month[:4]}"


def stats_value(_: Gettext, lang: str, key: str, value: str) -> str:
    """A value of a statistics table as people read it; '' (not known, not set) says so."""
    if key == "per_month":
        return month_label(_, value)
    if key == "per_team":
        return value or _("unknown")
    if not value:
        return _("(not set)") if key in ("reason", "warning", "category") else _("unknown")
    if key == "reason":
        return reason_label(value, lang)
    if key in ("viewed", "views", "hold_purpose"):
        return purposes.label(value, lang)
    if key == "camera_model" and value.startswith("usb:"):
        return _("USB camera (profile %(profile)s)") % {"profile": value[4:]}
    known = STATS_VALUES.get(key, {})
    return _(known[value]) if value in known else value


def stats_words(_: Gettext, lang: str) -> tuple[Callable[[str], tuple[str, str]], Callable[[str, str], str]]:
    """The words of the statistics in a language: title(table) -> (title, first column) and
    label(table, value) (appliance.council_report's Title and Label)."""
    return (lambda key: (_(STATS_TABLES[key][0]), _(STATS_TABLES[key][1])),
            lambda key, value: stats_value(_, lang, key, value))


def dutch_stats_words() -> tuple[Callable[[str], tuple[str, str]], Callable[[str, str], str]]:
    """stats_words in Dutch, whatever the viewer's language: the report to the council (also the CLI's)."""
    return stats_words(i18n.translations("nl").gettext, "nl")
