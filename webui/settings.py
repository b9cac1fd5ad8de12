"""The settings the Instellingen page shows and may change, and how a form's text becomes their values.

No HTTP here, and no rules of its own: a value is checked by the same models that load kluis.toml
(appliance.config_models); this module only turns the model's refusal into a message the page can show
in Dutch. Writing and auditing a change is the domain's: appliance.config_change.
"""

from __future__ import annotations

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
    Setting("sync", "archive_url", URL),
    Setting("sync", "window", WINDOW),
    Setting("sync", "bandwidth_kbps", NUMBER),
    Setting("web", "idle_minutes", NUMBER),
]


# [security] totp_required on the page: one checkbox per role (named TOTP_REQUIRED + "." + role) and a
# hidden field TOTP_REQUIRED that says the boxes were on the form (an unticked box is not posted at all).
TOTP_REQUIRED = "security.totp_required"
ROLES = ("keeper", "privacy_officer", "team_leader", "officer", "auditor")  # the order of the checkboxes


def limits() -> dict[str, tuple]:
    """{name: (min, max)} of the number settings, for the form's input attributes."""
    return {s.name: bounds(s.section, s.key) for s in SETTINGS if s.refusal == NUMBER}


def current(box: Box) -> dict[str, Any]:
    return {**{s.name: getattr(getattr(box.settings, s.section), s.key) for s in SETTINGS},
            TOTP_REQUIRED: list(box.settings.security.totp_required)}


def check(box: Box, setting: Setting, text: str) -> Any:
    """The value `text` gives `setting`, as the model converts it, or Invalid."""
    section = getattr(box.settings, setting.section)
    try:
        checked = type(section).model_validate({**section.model_dump(), setting.key: text.strip()})
    except ValidationError:
        raise setting.invalid() from None
    return getattr(checked, setting.key)


def parse(box: Box, form: dict[str, str]) -> tuple[dict[str, Any], dict[str, Invalid]]:
    """(values, errors) from a form whose fields are named section.key."""
    values, errors = {}, {}
    for s in SETTINGS:
        if s.name in form:
            try:
                values[s.name] = check(box, s, str(form[s.name])[:400])
            except Invalid as exc:
                errors[s.name] = exc
    if TOTP_REQUIRED in form:
        values[TOTP_REQUIRED] = [role for role in ROLES if form.get(f"{TOTP_REQUIRED}.{role}")]
    return values, errors

