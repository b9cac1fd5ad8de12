"""The box's configuration: `kluis.toml` in the data directory, written at init with commented defaults.

Reading merges the file over DEFAULTS, so a setting missing from an older file takes its default.
"""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

from .errors import KluisError

FILENAME = "kluis.toml"

DEFAULTS: dict[str, Any] = {
    "box": {"name": "Kluis", "timezone": "Europe/Amsterdam"},
    "security": {"kdf_profile": "moderate"},
    "storage": {"chunk_size": 1024 * 1024, "reserve_mb": 512},
    "dock": {"interfaces": [], "concurrency": 3, "probe_interval_s": 10, "retry_s": 5, "read_timeout_s": 30},
    "sync": {"archive_url": "", "central_purposes": ["police_report", "requisition", "complaint"],
             "window": "", "bandwidth_kbps": 0, "interval_s": 300, "retry_max_s": 900, "pass_retry_s": 120},
    "retention": {"default_days": 28, "review_days": 90, "grace_days": 7, "sweep_minutes": 15, "categories": {}},
    "audit": {"checkpoint_minutes": 60},
    "web": {"idle_minutes": 15,
            "map_url": "https://www.openstreetmap.org/?mlat={lat}&mlon={lon}#map=17/{lat}/{lon}"},
    "axis": {"listen": "", "urls": [], "max_uploads": 4, "queue_wait_s": 10, "max_clip_mb": 8192},
    "usb": {"concurrency": 3},
    "handover": {"single_approval": False},
    "requests": {"deadline_months": 1, "window_minutes": 15, "warn_days": 7},
}

TEMPLATE = """\
# Kluis configuration. Every setting shows its default; remove the '#' to change one.

[box]
# name = "Kluis"                  # the district office, shown in the web UI and on forms
# timezone = "Europe/Amsterdam"   # how times without a zone (on the command line) are read

[security]
# kdf_profile = "moderate"        # Argon2id cost of the key slots: "moderate" or "interactive"

[storage]
# chunk_size = 1048576            # container chunk size in bytes for imports (65536 to 4194304)
# reserve_mb = 512                # ingest stops before free space drops below this

[dock]
# interfaces = []                 # mDNS on these interfaces (names or IPv4 addresses); [] = all with IPv4
# concurrency = 3                 # cameras offloading at the same time
# probe_interval_s = 10           # how often paired cameras are asked whether they are still docked
# retry_s = 5                     # wait before retrying an offload that failed (cut link, full disk)
# read_timeout_s = 30            # a camera silent this long mid-transfer is taken as gone (resumes later)

[retention]
# default_days = 28               # bewaartermijn: days a recording is kept, counted from its end
# review_days = 90                # a hold without an end date comes up for review this often
# grace_days = 7                  # after the last hold ends, kept at least this long
# sweep_minutes = 15              # how often expired recordings are deleted (and at start)

[retention.categories]            # a term per category of recording, in days; e.g.
# incident = 90

[audit]
# checkpoint_minutes = 60         # how often the box signs the audit log's head (and at shutdown)

[web]
# idle_minutes = 15               # a web UI session ends after this long without a request
# map_url = "https://www.openstreetmap.org/?mlat={lat}&mlon={lon}#map=17/{lat}/{lon}"
                                  # where a recording's location links to ({lat}, {lon}); "" = no link

[axis]
# listen = ""                     # the Axis content destination (docs/axis.md), e.g. "0.0.0.0:8444"; "" = off
# urls = []                       # its addresses for the connection file, e.g. ["https://kluis.local:8444/auth/v1.0"]
                                  # ([] = this host's name and the listen port)
# max_uploads = 4                 # clip uploads at once; more wait for a slot ...
# queue_wait_s = 10               # ... this long, then get "busy, retry soon" (503)
# max_clip_mb = 8192              # a larger clip is refused as never storable (400)

[usb]
# concurrency = 3                 # USB cameras read at the same time (a 10-port dock: the rest wait their turn)

[requests]
# deadline_months = 1             # an access request or objection is answered within this many calendar months
# window_minutes = 15             # search this long either side of the time a requester gives (widened per
                                  # camera by how much its clock offset changed between the docks around it)
# warn_days = 7                   # the overview lists open requests this close to their deadline, and late ones

[handover]
# single_approval = false         # true: the preparer may approve a handover alone (small municipalities);
                                  # the transfer form and the manifest then say so

[sync]
# archive_url = ""                # the central archive (set by `kluis sync enroll`; set here if it moves)
# central_purposes = ["police_report", "requisition", "complaint"]   # holds that send footage centrally
# window = ""                     # send only between these local times, e.g. "22:00-06:00"; "" = always
# bandwidth_kbps = 0              # upload limit in KiB/s; 0 = no limit
# interval_s = 300                # how often `kluis serve` syncs
# retry_max_s = 900               # longest wait between attempts when the archive is unreachable
# pass_retry_s = 120              # how long one pass keeps retrying a cut upload before it gives up
"""


def _merge(base: dict, override: dict) -> dict:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load(data_dir: Path) -> dict[str, Any]:
    path = data_dir / FILENAME
    try:
        with open(path, "rb") as f:
            values = tomllib.load(f)
    except FileNotFoundError:
        values = {}
    except tomllib.TOMLDecodeError as exc:
        raise KluisError(f"{path}: not valid TOML ({exc})") from None
    return _merge(DEFAULTS, values)


def write_template(data_dir: Path, settings: dict[str, dict[str, Any]] | None = None) -> None:
    """Write the commented template; `settings` that differ from the default are written uncommented."""
    text = TEMPLATE
    for section, values in (settings or {}).items():
        for key, value in values.items():
            if DEFAULTS.get(section, {}).get(key) != value:
                literal = f'"{value}"' if isinstance(value, str) else str(value).lower()
                line = next(l for l in text.splitlines() if l.startswith(f"# {key} = "))
                text = text.replace(line, f"{key} = {literal}", 1)
    (data_dir / FILENAME).write_text(text)
