"""The settings the Instellingen page may change, written into kluis.toml (comments kept, with tomlkit).

No HTTP here. A change is validated, written atomically, re-read into `box.config` (the running service
reads its settings from there, so sync window and bandwidth apply at the next pass), and audited: the
retention policy through appliance.retention.sync_policy (which also protects held recordings from a
shorter term), everything else as one settings_change entry with old and new values.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

import tomlkit

from appliance import audit, config, retention
from appliance.box import Box
from appliance.durable import write_atomic
from appliance.errors import KluisError

from .i18n import N_

NUMBER = N_("A whole number from %(min)d to %(max)d.")
URL = N_("An https:// address, or empty.")
WINDOW = N_("Two times like 22:00-06:00, or empty.")


class Invalid(KluisError):
    """A value the form may not save; `message` is a msgid, `params` fill it in."""

    def __init__(self, message: str, **params):
        super().__init__(message % params)
        self.message, self.params = message, params


def _int(minimum: int, maximum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise Invalid(NUMBER, min=minimum, max=maximum) from None
        if not minimum <= value <= maximum:
            raise Invalid(NUMBER, min=minimum, max=maximum)
        return value
    return parse


def _url(text: str) -> str:
    text = text.strip()
    if text and not (text.startswith("https://") and len(text) < 300 and " " not in text):
        raise Invalid(URL)
    return text


def _window(text: str) -> str:
    from sync.client import in_window  # the sync client's own rule for a window

    text = text.strip()
    if text:
        try:
            in_window(text, datetime.now(timezone.utc), "UTC")  # the sync client's own check
        except KluisError:
            raise Invalid(WINDOW) from None
    return text


@dataclass(frozen=True)
class Setting:
    section: str
    key: str
    parse: Callable[[str], Any]


SETTINGS = [
    Setting("retention", "default_days", _int(1, 3650)),
    Setting("retention", "review_days", _int(1, 3650)),
    Setting("retention", "grace_days", _int(0, 365)),
    Setting("sync", "archive_url", _url),
    Setting("sync", "window", _window),
    Setting("sync", "bandwidth_kbps", _int(0, 10_000_000)),
    Setting("web", "idle_minutes", _int(1, 480)),
]


def current(box: Box) -> dict[str, Any]:
    return {f"{s.section}.{s.key}": box.config[s.section][s.key] for s in SETTINGS}


def parse(form: dict[str, str]) -> tuple[dict[str, Any], dict[str, Invalid]]:
    """(values, errors) from a form whose fields are named section.key."""
    values, errors = {}, {}
    for s in SETTINGS:
        name = f"{s.section}.{s.key}"
        if name in form:
            try:
                values[name] = s.parse(str(form[name])[:400])
            except Invalid as exc:
                errors[name] = exc
    return values, errors


def update(box: Box, actor: str, values: dict[str, Any], client: str | None = None) -> dict[str, tuple]:
    """Write the values that differ; returns {name: (old, new)} of what changed."""
    old = current(box)
    changed = {name: (old[name], value) for name, value in values.items() if old.get(name) != value}
    if not changed:
        return {}
    path = box.data_dir / config.FILENAME
    doc = tomlkit.parse(path.read_text()) if path.exists() else tomlkit.document()
    for name, (_old, value) in changed.items():
        section, key = name.split(".")
        if section not in doc:
            doc[section] = tomlkit.table()
        doc[section][key] = value
    write_atomic(path, tomlkit.dumps(doc))
    box.config = config.load(box.data_dir)
    others = {k: v for k, v in changed.items() if not k.startswith("retention.")}
    if others:
        with box.catalog.transaction():
            audit.record(box.catalog, actor=actor, action="settings_change", client=client,
                         details={k: {"old": o, "new": n} for k, (o, n) in others.items()})
    if len(others) < len(changed):
        retention.sync_policy(box, actor=actor)  # audits policy_change, keeps held recordings' dates
    return changed
