"""Camera profiles: how to recognise a USB bodycam and read it. Data, not code: one TOML file a model.

The box reads the shipped profiles (appliance/usb/profiles/*.toml) and the keeper's own
(DATA/usb-profiles/*.toml; one of the same name replaces the shipped one). A profile names:

    [profile]     name, description, priority (the highest of the matching profiles wins)
    [match]       require_paths (files or folders that must exist), usb_vendor / usb_product (hex ids),
                  volume_label (a regular expression)
    [serial]      sources, in order: "usb_serial", "volume_label", "file" (file + file_pattern with a
                  group 'serial')
    [recordings]  globs, relative to the volume's root
    [time]        sources of a recording's start, in order of trust: "filename" (filename_pattern with
                  groups Y m d H M S, in `timezone`), "container" (the MP4/MOV 'mvhd' creation time),
                  "file" (the file's modification time)
    [clock]       source: "none", "file" (file + file_pattern, the camera's time at docking, in the
                  time zone of [time]), "newest_file" (the newest recording's file time)
    [camera]      delete_after_ingest, pre_record_s, post_record_s, category (a retention category of
                  [retention.categories] that every recording of such a camera gets)

An unknown key or section is refused with the file and the key named: a typo must not pass in silence.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..errors import KluisError

SHIPPED = Path(__file__).resolve().parent / "profiles"
KEEPER_DIR = "usb-profiles"

SERIAL_SOURCES = ("usb_serial", "volume_label", "file")
TIME_SOURCES = ("filename", "container", "file")
CLOCK_SOURCES = ("none", "file", "newest_file")

_SCHEMA: dict[str, dict[str, type]] = {
    "profile": {"name": str, "description": str, "priority": int},
    "match": {"require_paths": list, "usb_vendor": str, "usb_product": str, "volume_label": str},
    "serial": {"sources": list, "file": str, "file_pattern": str},
    "recordings": {"globs": list},
    "time": {"sources": list, "filename_pattern": str, "timezone": str},
    "clock": {"source": str, "file": str, "file_pattern": str},
    "camera": {"delete_after_ingest": bool, "pre_record_s": int, "post_record_s": int, "category": str},
}


class ProfileError(KluisError):
    pass


@dataclass(frozen=True)
class Profile:
    name: str
    description: str = ""
    priority: int = 0
    require_paths: tuple[str, ...] = ()
    usb_vendor: str | None = None
    usb_product: str | None = None
    volume_label: re.Pattern | None = None
    serial_sources: tuple[str, ...] = ("usb_serial", "volume_label")
    serial_file: str | None = None
    serial_pattern: re.Pattern | None = None
    globs: tuple[str, ...] = ()
    time_sources: tuple[str, ...] = ("container", "file")
    filename_pattern: re.Pattern | None = None
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Europe/Amsterdam"))
    clock_source: str = "none"
    clock_file: str | None = None
    clock_pattern: re.Pattern | None = None
    delete_after_ingest: bool = False
    pre_record_s: int | None = None
    post_record_s: int | None = None
    category: str | None = None  # the retention category its recordings get (if the box knows it)
    path: str = ""  # where it was read from

    def matches(self, root: Path, usb: dict[str, str], label: str | None) -> bool:
        if self.usb_vendor and usb.get("vendor", "").lower() != self.usb_vendor.lower():
            return False
        if self.usb_product and usb.get("product", "").lower() != self.usb_product.lower():
            return False
        if self.volume_label and not (label and self.volume_label.search(label)):
            return False
        return all(find_nocase(root, p) is not None for p in self.require_paths)


def find_nocase(root: Path, relative: str | None) -> Path | None:
    """`relative` under `root`, whatever the case of its names (FAT is case-insensitive and a mount may
    show names either way); None when it is not there."""
    if not relative:
        return None
    here = root
    for part in Path(relative).parts:
        try:
            names = {child.name.lower(): child for child in here.iterdir()}
        except OSError:
            return None
        if (found := names.get(part.lower())) is None:
            return None
        here = found
    return here


def _regex(value: str, where: str, groups: set[str] | None = None) -> re.Pattern:
    try:
        pattern = re.compile(value)
    except re.error as exc:
        raise ProfileError(f"{where}: not a regular expression ({exc})") from None
    missing = (groups or set()) - set(pattern.groupindex)
    if missing:
        raise ProfileError(f"{where}: the pattern needs the group(s) {', '.join(sorted(missing))}")
    return pattern


def parse(data: dict, where: str) -> Profile:
    """A Profile from a profile's TOML table; ProfileError naming the file and key for anything wrong."""
    for section, values in data.items():
        if section not in _SCHEMA:
            raise ProfileError(f"{where}: unknown section [{section}] (known: {', '.join(_SCHEMA)})")
        if not isinstance(values, dict):
            raise ProfileError(f"{where}: {section} must be a table")
        for key, value in values.items():
            if key not in _SCHEMA[section]:
                raise ProfileError(f"{where}: unknown key {section}.{key}")
            if not isinstance(value, _SCHEMA[section][key]) or (isinstance(value, bool) and _SCHEMA[section][key] is int):
                raise ProfileError(f"{where}: {section}.{key} must be a {_SCHEMA[section][key].__name__}")
    get = lambda section, key, default=None: data.get(section, {}).get(key, default)  # noqa: E731
    name = get("profile", "name")
    if not name or not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,39}", name):
        raise ProfileError(f"{where}: profile.name must be lower-case letters, digits and '-'")
    serial_sources = tuple(get("serial", "sources", ["usb_serial", "volume_label"]))
    time_sources = tuple(get("time", "sources", ["container", "file"]))
    clock_source = get("clock", "source", "none")
    for what, values, allowed in (("serial.sources", serial_sources, SERIAL_SOURCES),
                                  ("time.sources", time_sources, TIME_SOURCES),
                                  ("clock.source", (clock_source,), CLOCK_SOURCES)):
        bad = [v for v in values if v not in allowed]
        if bad or not values:
            raise ProfileError(f"{where}: {what}: {bad or 'empty'} (allowed: {', '.join(allowed)})")
    globs = tuple(get("recordings", "globs", []))
    if not globs or any(not isinstance(g, str) or g.startswith("/") or ".." in Path(g).parts for g in globs):
        raise ProfileError(f"{where}: recordings.globs must be relative patterns inside the volume")
    try:
        timezone = ZoneInfo(get("time", "timezone", "Europe/Amsterdam"))
    except (ZoneInfoNotFoundError, ValueError):
        raise ProfileError(f"{where}: time.timezone is not a time zone name") from None
    stamp = {"Y", "m", "d", "H", "M", "S"}
    profile = Profile(
        name=name, description=get("profile", "description", ""), priority=get("profile", "priority", 0),
        require_paths=tuple(get("match", "require_paths", [])), usb_vendor=get("match", "usb_vendor"),
        usb_product=get("match", "usb_product"),
        volume_label=_regex(get("match", "volume_label"), f"{where}: match.volume_label")
        if get("match", "volume_label") else None,
        serial_sources=serial_sources, serial_file=get("serial", "file"),
        serial_pattern=_regex(get("serial", "file_pattern"), f"{where}: serial.file_pattern", {"serial"})
        if get("serial", "file_pattern") else None,
        globs=globs, time_sources=time_sources,
        filename_pattern=_regex(get("time", "filename_pattern"), f"{where}: time.filename_pattern", stamp)
        if get("time", "filename_pattern") else None,
        timezone=timezone, clock_source=clock_source, clock_file=get("clock", "file"),
        clock_pattern=_regex(get("clock", "file_pattern"), f"{where}: clock.file_pattern", stamp)
        if get("clock", "file_pattern") else None,
        delete_after_ingest=get("camera", "delete_after_ingest", False),
        pre_record_s=get("camera", "pre_record_s"), post_record_s=get("camera", "post_record_s"),
        category=get("camera", "category") or None, path=where,
    )
    if "filename" in time_sources and profile.filename_pattern is None:
        raise ProfileError(f"{where}: time.sources has 'filename' but no time.filename_pattern")
    if "file" in serial_sources and not (profile.serial_file and profile.serial_pattern):
        raise ProfileError(f"{where}: serial.sources has 'file' but no serial.file and serial.file_pattern")
    if clock_source == "file" and not (profile.clock_file and profile.clock_pattern):
        raise ProfileError(f"{where}: clock.source is 'file' but no clock.file and clock.file_pattern")
    return profile


def load_file(path: Path) -> Profile:
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{path}: not valid TOML ({exc})") from None
    return parse(data, str(path))


def load_all(data_dir: Path | None = None) -> list[Profile]:
    """The shipped profiles and the keeper's (same name: the keeper's wins), highest priority first."""
    found: dict[str, Profile] = {}
    dirs = [SHIPPED] + ([Path(data_dir) / KEEPER_DIR] if data_dir else [])
    for directory in dirs:
        for path in sorted(directory.glob("*.toml")) if directory.is_dir() else []:
            profile = load_file(path)
            found[profile.name] = profile
    return sorted(found.values(), key=lambda p: (-p.priority, p.name))


def choose(profiles: list[Profile], root: Path, usb: dict[str, str], label: str | None) -> Profile | None:
    return next((p for p in profiles if p.matches(root, usb, label)), None)
