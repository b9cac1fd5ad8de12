"""The box catalog's schema: one named migration set per feature, run in the fixed order of `BOX`.

Each module here holds the tables of one feature and names the module that owns them (the only code
that writes them). They sit apart from their owners and import nothing but `appliance.migrations`:
every owner works on a `Box`, whose opening runs these migrations, so a set declared inside its owner
would make the catalog import the whole domain, and each owner import itself through it.

A new table or column is a new step appended to its owner's set (a step that has shipped is never
edited); a new feature is a new set appended to `BOX`. `legacy.py` maps the single numbered list of the
releases before named sets onto these steps.
"""

from __future__ import annotations

from ..migrations import Migrations
from . import (alerts, audit, axis, cases, devices, handover, jobs, outbox, redaction, requests, retention, statistics,
               teams, usb, users, vault)

BOX: tuple[Migrations, ...] = (
    vault.MIGRATIONS,
    users.MIGRATIONS,
    devices.MIGRATIONS,
    audit.MIGRATIONS,
    outbox.MIGRATIONS,
    retention.MIGRATIONS,
    handover.MIGRATIONS,
    requests.MIGRATIONS,
    redaction.MIGRATIONS,
    jobs.MIGRATIONS,
    axis.MIGRATIONS,
    usb.MIGRATIONS,
    teams.MIGRATIONS,
    alerts.MIGRATIONS,
    statistics.MIGRATIONS,  # after teams: its backfill reads the teams that set filled in
    cases.MIGRATIONS,
)
