"""Changing settings while the box runs (the web UI's settings page): kluis.toml is edited keeping its
comments, the running box takes the new values at once, and the change is audited.

The retention policy goes through appliance.retention.sync_policy (which audits a policy_change and keeps
held recordings' deletion dates from a shorter term); every other change is one settings_change entry with
old and new values. A value the models refuse (appliance.config_models) changes nothing.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from . import audit, config, retention
from .box import Box

# What `kluis serve` gives the web UI to switch the Axis content destination while it runs
# (appliance.axis.server.AxisSwitch.apply): listen ("" = off) -> the bound host:port, or None when off.
AxisSwitch = Callable[[str], Awaitable[str | None]]


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


async def change_settings_live(box: Box, actor: str, values: dict[str, Any], client: str | None = None,
                               axis_switch: AxisSwitch | None = None) -> tuple[dict[str, tuple], bool]:
    """change_settings, with a change of `[axis] listen` applied to the running service first when it
    gives `axis_switch`: an address the destination cannot listen on raises (appliance.axis.server.
    CannotListen) and nothing is written; a file that cannot be written puts the destination back.
    Returns (changed, live): live is True when the Axis change took effect now, False when it waits for
    the service's restart (or nothing about Axis changed)."""
    new, old = values.get("axis.listen"), box.settings.axis.listen
    if axis_switch is None or new is None or new == old:
        return change_settings(box, actor, values, client), False
    await axis_switch(new)
    try:
        changed = change_settings(box, actor, values, client)
    except BaseException:
        await axis_switch(old)  # kluis.toml still says the old address: serve what it says
        raise
    return changed, True
