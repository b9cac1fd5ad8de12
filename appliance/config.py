"""The box's configuration: `kluis.toml` in the data directory, written at init as a commented template.

Reading validates the file against appliance.config_models: a setting missing from the file takes its
default, an unknown key or a value out of bounds is refused with one line per problem naming the file, the
key and the rule. Changing settings (the web UI's settings page) edits the file with tomlkit, so its comments
stay, and refuses a change that would not load.
"""

from __future__ import annotations

import difflib
import json
import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .config_models import Settings, section_model
from .errors import KluisError
from .durable import write_atomic

FILENAME = "kluis.toml"


class ConfigError(KluisError):
    """kluis.toml does not load; `problems` holds one self-contained line per problem."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


def _where(loc: tuple) -> tuple[str, str]:
    """('retention', 'categories', 'incident') -> ('[retention.categories]', 'incident')."""
    if len(loc) == 1:
        return "", str(loc[0])
    section, key, *rest = loc
    if rest and isinstance(rest[0], str):
        return f"[{section}.{key}]", str(rest[0])
    return f"[{section}]", f"{key}[{rest[0]}]" if rest else str(key)


def _suggest(loc: tuple) -> str:
    """" (did you mean default_days?)" for a key close to a known one in the same table."""
    if len(loc) == 1:
        known = [f"[{name}]" for name in Settings.model_fields]
        wanted = f"[{loc[0]}]"
    else:
        known, wanted = list(section_model(loc[0]).model_fields), str(loc[-1])
    close = difflib.get_close_matches(wanted, known, n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


RULES = {
    "greater_than_equal": "at least {ge}", "less_than_equal": "at most {le}",
    "greater_than": "more than {gt}", "less_than": "less than {lt}",
    "int_type": "a whole number", "float_type": "a number", "string_type": "a text in quotes",
    "bool_type": "true or false", "list_type": "a list [...]", "dict_type": "a table",
    "model_type": "a [section] of settings, not a single value", "literal_error": "one of {expected}",
    "string_too_short": "at least {min_length} character(s)", "string_too_long": "at most {max_length} characters",
}


def problems(error: ValidationError, source: str) -> list[str]:
    """One line per problem, e.g. `kluis.toml: unknown setting [retention] default_day (did you mean
    default_days?)` or `kluis.toml: [retention] default_days = 0: at least 1`."""
    lines = []
    for item in error.errors():
        loc, kind = item["loc"], item["type"]
        table, key = _where(loc)
        where = f"{table} {key}" if table else key
        if kind == "extra_forbidden":
            if len(loc) > 1:
                lines.append(f"{source}: unknown setting {where}{_suggest(loc)}")
            elif isinstance(item["input"], dict):
                lines.append(f"{source}: unknown section [{key}]{_suggest(loc)}")
            else:
                lines.append(f"{source}: unknown setting {key} outside any [section]")
            continue
        rule = RULES.get(kind)
        if rule is not None:
            rule = rule.format(**{k: v for k, v in (item.get("ctx") or {}).items()})
        else:
            rule = str(item["msg"]).removeprefix("Value error, ")
        value = item["input"]
        shown = f" = {json.dumps(value, ensure_ascii=False)}" if isinstance(value, (str, int, float, list)) else ""
        lines.append(f"{source}: {where}{shown}: {rule}")
    return lines


def validate(values: dict[str, Any], source: str = FILENAME) -> Settings:
    """The settings in `values` (tables as TOML gives them), or ConfigError."""
    try:
        return Settings.model_validate(values, strict=True)
    except ValidationError as exc:
        raise ConfigError(problems(exc, source)) from None


def load(data_dir: Path) -> Settings:
    path = Path(data_dir) / FILENAME
    try:
        with open(path, "rb") as f:
            values = tomllib.load(f)
    except FileNotFoundError:
        values = {}
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML ({exc})"]) from None
    return validate(values, str(path))


def write_template(data_dir: Path, settings: dict[str, dict[str, Any]] | None = None) -> None:
    """Write the commented template; `settings` ({section: {key: value}}) are written uncommented."""
    from .config_docs import template

    validate(settings or {}, FILENAME)
    write_atomic(Path(data_dir) / FILENAME, template(settings))  # old settings or new, never half


def change(data_dir: Path, changes: dict[str, dict[str, Any]]) -> Settings:
    """Set {section: {key: value}} in kluis.toml, keeping its comments; the result must load (else
    ConfigError and the file is unchanged). Returns the new settings."""
    import tomlkit  # only a change needs it: every command loads the settings, few change them

    path = Path(data_dir) / FILENAME
    doc = tomlkit.parse(path.read_text()) if path.exists() else tomlkit.document()
    for section, values in changes.items():
        if section not in doc:
            doc[section] = tomlkit.table()
        for key, value in values.items():
            doc[section][key] = value
    text = tomlkit.dumps(doc)
    settings = validate(tomllib.loads(text), str(path))
    write_atomic(path, text)
    return settings
