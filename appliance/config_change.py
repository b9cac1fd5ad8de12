"""Changing settings while the box runs (the web UI's settings page): kluis.toml is edited keeping its
comments, the running box takes the new values at once, and the change is audited.

The retention policy goes through appliance.retention.sync_policy (which audits a policy_change and keeps
held recordings' deletion dates from a shorter term); every other change is one settings_change entry with
old and new values. A value the models refuse (appliance.config_models) changes nothing.
"""

from __future__ import annotations

from typing import Any

from . import audit, config, retention
from .box import Box


def change_settings(box: Box, actor: str, values: dict[str, Any], client: str | None = None) -> dict[str, tuple]:
    """Write `values` ({"section.key": value}) that differ from the running settings; returns
    {name: (old, new)} of what changed. Raises config.ConfigError (nothing written) on a refused value."""
    current = box.settings.as_dict()
    changed = {}
    for name, value in values.items():
        section, key = name.split(".", 1)
        old = current[section][key]
        if old != value:
            changed[name] = (old, value)
    if not changed:
        return {}
    tables: dict[str, dict[str, Any]] = {}
    for name, (_old, value) in changed.items():
        section, key = name.split(".", 1)
        tables.setdefault(section, {})[key] = value
    box.settings = config.change(box.data_dir, tables)  # the running service reads its settings from here
    others = {k: v for k, v in changed.items() if not k.startswith("retention.")}
    if others:
        with box.catalog.transaction():
            audit.record(box.catalog, actor=actor, action="settings_change", client=client,
                         details={k: {"old": o, "new": n} for k, (o, n) in others.items()})
    if len(others) < len(changed):
        retention.sync_policy(box, actor=actor)  # audits policy_change, keeps held recordings' dates
    return changed
