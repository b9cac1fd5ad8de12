"""The settings the Instellingen page shows and may change, and how a form's text becomes their values.

No HTTP here, and no rules of its own: a value is checked by the same models that load kluis.toml
(appliance.config_models); this module only turns the model's refusal into a message the page can show
in Dutch. Writing and auditing a change is the domain's: appliance.config_change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from appliance.box import Box
from appliance.config_models import bounds
from appliance.errors import KluisError

from .i18n import N_

NUMBER = N_("A whole number from %(min)d to %(max)d.")
URL = N_("An https:// address, or empty.")
WINDOW = N_("Two times like 22:00-06:00, or empty.")
TEXT_200 = N_("At most 200 characters.")
TEXT_300 = N_("At most 300 characters.")
TEXT_400 = N_("At most 400 characters.")
ADDRESSES = N_("E-mail addresses separated by commas, or empty.")
HOST = N_("A host name, or empty.")
HOST_PORT = N_("Host and port like logs.gemeente.nl:6514, or empty.")
PATH = N_("A file on the box, or empty.")
ADDRESS = N_("An e-mail address, or empty.")
LISTEN = N_("An address and port like 0.0.0.0:8444.")
FOLDER = N_("A folder on the box, or empty.")
SFTP_URL = N_("An address like sftp://kluis@nas.gemeente.local/kluis (user, server, folder), or empty.")
HOST_KEY = N_("The server's key as ssh-keyscan prints it, like ssh-ed25519 AAAA..., or empty.")
TIME = N_("A time like 03:30.")
LISTEN_NEEDED = N_("Give the address and port to listen on, for example 0.0.0.0:8444.")
# Why the Axis content destination could not listen on an address (appliance.axis.server.CannotListen.reason)
CANNOT_LISTEN = {
    "in_use": N_("This port is already in use on this box (by the web interface or another program); choose another port."),
    "not_here": N_("This box has no such address; use 0.0.0.0 to listen on all its addresses."),
    "denied": N_("The service may not listen on this port; use a port above 1024, for example 8444."),
    "other": N_("The box cannot listen on this address; nothing was changed."),
}
AXIS_DEFAULT_LISTEN = "0.0.0.0:8444"  # what the form offers when the destination is off (docs/axis.md)


class Invalid(KluisError):
    """A value the form may not save; `message` is a msgid, `params` fill it in."""

    def __init__(self, message: str, **params):
        super().__init__(message % params)
        self.message, self.params = message, params


@dataclass(frozen=True)
class Setting:
    section: str
    key: str
    refusal: str  # the msgid shown when the model refuses a value

    @property
    def name(self) -> str:
        return f"{self.section}.{self.key}"

    def invalid(self) -> Invalid:
        if self.refusal == NUMBER:
            low, high = bounds(self.section, self.key)
            return Invalid(NUMBER, min=low, max=high)
        return Invalid(self.refusal)


SETTINGS = [
    Setting("box", "municipality", TEXT_200),
    Setting("retention", "default_days", NUMBER),
    Setting("retention", "review_days", NUMBER),
    Setting("retention", "grace_days", NUMBER),
    Setting("reasons", "todo_days", NUMBER),  # the officer's reason (appliance/recording_reasons.py)
    Setting("sync", "archive_url", URL),
    Setting("sync", "window", WINDOW),
    Setting("sync", "bandwidth_kbps", NUMBER),
    Setting("audit", "term_days", NUMBER),
    Setting("web", "idle_minutes", NUMBER),
    Setting("axis", "listen", LISTEN),
    # alerts by e-mail and the log collector (appliance/alerts.py, docs/alerts.md)
    Setting("alerts", "smtp_server", HOST),
    Setting("alerts", "smtp_port", NUMBER),
    Setting("alerts", "sender", ADDRESS),
    Setting("alerts", "smtp_user", TEXT_200),
    Setting("alerts", "smtp_password_file", PATH),
    Setting("alerts", "smtp_ca_file", PATH),
    Setting("alerts", "keeper", ADDRESSES),
    Setting("alerts", "privacy_officer", ADDRESSES),
    Setting("alerts", "team_leader", ADDRESSES),
    Setting("alerts", "auditor", ADDRESSES),
    Setting("alerts", "checkpoints", ADDRESSES),
    Setting("alerts", "digest", ADDRESSES),
    Setting("syslog", "server", HOST_PORT),
    Setting("syslog", "ca_file", PATH),
    Setting("syslog", "cert_file", PATH),
    Setting("syslog", "key_file", PATH),
    # the backup targets (appliance/backup_targets.py, docs/backup.md)
    Setting("backup", "disk", FOLDER),
    Setting("backup", "network", SFTP_URL),
    Setting("backup", "network_host_key", HOST_KEY),
    Setting("backup", "ssh_key_file", PATH),
    Setting("backup", "network_time", TIME),
    Setting("backup", "keep", NUMBER),
    # what the processing register cannot read from the box (appliance/register.py)
    Setting("privacy", "controller", TEXT_300),
    Setting("privacy", "dpo", TEXT_300),
    Setting("privacy", "legal_basis", TEXT_400),
]


# [security] totp_required on the page: one checkbox per role (named TOTP_REQUIRED + "." + role) and a
# hidden field TOTP_REQUIRED that says the boxes were on the form (an unticked box is not posted at all).
TOTP_REQUIRED = "security.totp_required"
ROLES = ("keeper", "privacy_officer", "team_leader", "officer", "auditor")  # the order of the checkboxes


def limits() -> dict[str, tuple]:
    """{name: (min, max)} of the number settings, for the form's input attributes."""
    return {s.name: bounds(s.section, s.key) for s in SETTINGS if s.refusal == NUMBER}


def current(box: Box) -> dict[str, Any]:
    values = {s.name: getattr(getattr(box.settings, s.section), s.key) for s in SETTINGS}
    # The Axis content destination is a switch and an address: off is listen = "" in kluis.toml.
    values["axis.on"] = bool(values["axis.listen"])
    values["axis.listen"] = values["axis.listen"] or AXIS_DEFAULT_LISTEN
    return {**{name: ", ".join(value) if isinstance(value, list) else value for name, value in values.items()},
            TOTP_REQUIRED: list(box.settings.security.totp_required)}


def check(box: Box, setting: Setting, text: str) -> Any:
    """The value `text` gives `setting`, as the model converts it, or Invalid."""
    section = getattr(box.settings, setting.section)
    value: Any = text.strip()
    if setting.refusal == ADDRESSES:  # a list in kluis.toml, one line of text in the form
        value = [part for part in re.split(r"[,;\s]+", value) if part]
    try:
        checked = type(section).model_validate({**section.model_dump(), setting.key: value})
    except ValidationError:
        raise setting.invalid() from None
    return getattr(checked, setting.key)


def parse(box: Box, form: dict[str, str]) -> tuple[dict[str, Any], dict[str, Invalid]]:
    """(values, errors) from a form whose fields are named section.key. The Axis content destination's
    switch (axis.on) off means listen = "" whatever the address field holds."""
    if "axis.listen" in form and not form.get("axis.on"):
        form = {**form, "axis.listen": ""}
    values, errors = {}, {}
    for s in SETTINGS:
        if s.name in form:
            try:
                values[s.name] = check(box, s, str(form[s.name])[:400])
            except Invalid as exc:
                errors[s.name] = exc
    if TOTP_REQUIRED in form:
        values[TOTP_REQUIRED] = [role for role in ROLES if form.get(f"{TOTP_REQUIRED}.{role}")]
    if form.get("axis.on") and values.get("axis.listen") == "":
        errors["axis.listen"] = Invalid(LISTEN_NEEDED)
    return values, errors


def cannot_listen(reason: str) -> Invalid:
    """The field error for an address the Axis content destination could not listen on."""
    return Invalid(CANNOT_LISTEN.get(reason, CANNOT_LISTEN["other"]))

