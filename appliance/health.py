"""The box's own health, as the overview and the settings page show it: is the clock synchronised, is the
data at rest protected, how many recordings were made on an unsynchronised clock."""

from __future__ import annotations

import asyncio

from . import keys, platform, roles, timesync
from .box import Box


async def box_health(box: Box, role: str) -> dict:
    """The clock's synchronisation (every role) and the data at rest (the keeper and the privacy officer,
    who answer for the data): what webui/templates/setup_status.html shows."""
    loop = asyncio.get_running_loop()
    clock = await loop.run_in_executor(None, timesync.status)  # may run timedatectl: not on the loop
    at_rest = None
    if role in (roles.KEEPER, roles.PRIVACY_OFFICER):
        at_rest = await loop.run_in_executor(None, platform.at_rest, box.data_dir)
    unsynced = box.catalog.db.execute("SELECT count(*) FROM recordings WHERE clock_synced = 0").fetchone()[0]
    # the audit signing key: sealed to the TPM2 (the appliance with one), or a plaintext file on the disk
    signing_sealed = await loop.run_in_executor(None, box.signing_key_sealed)
    # ...and whether it unsealed for this service (None: it did, or nothing is sealed)
    signing_unavailable = keys.signing_key_unavailable()
    return {"clock": clock, "at_rest": at_rest, "unsynced": unsynced, "signing_sealed": signing_sealed,
            "signing_unavailable": signing_unavailable}
