"""kluis export: handovers to police and prosecutor (appliance/handover.py, appliance/package.py)."""

from __future__ import annotations

import click


@click.group()
def export() -> None:
    """Handovers to police and prosecutor: prepare, approve (a second person), verify a package."""


COMMANDS = [export]
