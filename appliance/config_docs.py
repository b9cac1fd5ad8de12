"""The commented kluis.toml template and the settings reference (docs/settings.md), both written from the
models in appliance.config_models, so that neither can drift from what the box accepts.

    python -m appliance.config_docs            rewrite docs/settings.md
    python -m appliance.config_docs --check    exit 1 if docs/settings.md is stale
"""

from __future__ import annotations

import sys
import textwrap
import typing
from pathlib import Path
from typing import Any

import tomlkit

from .config_models import Section, Settings, section_model

COMMENT_AT = 34   # the column where a setting's description starts in the template
WIDTH = 112
DOCS = Path(__file__).resolve().parent.parent / "docs" / "settings.md"


def literal(value: Any) -> str:
    """A value as TOML spells it; whole floats without ".0" (the template shows 10, not 10.0)."""
    if isinstance(value, dict) and not value:
        return "{}"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return tomlkit.item(value).as_string()


def _sections() -> list[tuple[str, type[Section]]]:
    return [(name, section_model(name)) for name in Settings.model_fields]


def _is_table(model: type[Section], key: str) -> bool:
    return typing.get_origin(model.model_fields[key].annotation) is dict


def _line(setting: str, description: str) -> list[str]:
    if len(setting) >= COMMENT_AT - 1:
        setting = setting + "\n"
    first, *rest = textwrap.wrap(description, WIDTH - COMMENT_AT - 2) or [""]
    head = setting.split("\n")
    lines = head[:-1] + [head[-1].ljust(COMMENT_AT) + "# " + first]
    return lines + [" " * COMMENT_AT + "# " + more for more in rest]


def template(settings: dict[str, dict[str, Any]] | None = None) -> str:
    """kluis.toml with every setting commented out at its default; those in `settings` written uncommented."""
    settings = settings or {}
    out = ["# Kluis configuration. Every setting shows its default; remove the '#' to change one.",
           "# What each setting means and allows: docs/settings.md. Check a change: kluis config check --data DIR"]
    for name, model in _sections():
        given = settings.get(name, {})
        out += ["", f"[{name}]"]
        tables = []
        for key, field in model.model_fields.items():
            if _is_table(model, key):
                tables.append(key)
                continue
            if key in given and given[key] != field.default:
                out += _line(f"{key} = {literal(given[key])}", field.description or "")
            else:
                out += _line(f"# {key} = {literal(field.default)}", field.description or "")
        for key in tables:
            field = model.model_fields[key]
            extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
            example = extra.get("example")
            example = example if isinstance(example, dict) else {}
            out += ["", *_line(f"[{name}.{key}]", f"{field.description}; e.g.")]
            out += [f"{k} = {literal(v)}" for k, v in given.get(key, {}).items()]
            out += [f"# {k} = {literal(v)}" for k, v in example.items() if k not in given.get(key, {})]
    return "\n".join(out) + "\n"


def _kind(annotation: Any) -> str:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return " or ".join(f'"{a}"' for a in args)
    if origin is list:
        return "list of texts"
    if origin is dict:
        value = typing.get_args(args[1])[0] if typing.get_args(args[1]) else args[1]
        return "table of name = " + ("text" if value is str else "whole number")
    return {int: "whole number", float: "number", str: "text", bool: "true or false"}[annotation]


def _allowed(field) -> str:
    words = {"ge": "≥ {}", "gt": "> {}", "le": "≤ {}", "lt": "< {}",
             "min_length": "at least {} character(s)", "max_length": "at most {} characters"}
    rules = []
    for rule in field.metadata:
        for name, word in words.items():
            if getattr(rule, name, None) is not None:
                rules.append(word.format(getattr(rule, name)))
    if typing.get_origin(field.annotation) is dict:
        inner = typing.get_args(field.annotation)[1]
        rules += [f"each {_allowed(f)}" for f in [typing.get_args(inner)[1]] if typing.get_args(inner)]
    return ", ".join(rules)


def reference() -> str:
    """docs/settings.md: every section and setting, its type, default, bounds and meaning."""
    out = ["# Settings reference (`kluis.toml`)", "",
           "<!-- Generated from appliance/config_models.py by `python -m appliance.config_docs`; do not edit. -->",
           "",
           "`kluis.toml` in the data directory holds the box's settings. `kluis init` writes it with every "
           "setting commented out at its default; remove the `#` to change one. An unknown setting or a value "
           "outside the bounds below is refused with a one-line error naming the file and the key (the box "
           "does not start with it); check a file with `kluis config check --data DIR`. The web UI's "
           "settings page (Instellingen) changes some of these with the same checks."]
    for name, model in _sections():
        out += ["", f"## [{name}]", "", Settings.model_fields[name].description or "", "",
                "| Setting | Type | Default | Allowed | Meaning |", "|---|---|---|---|---|"]
        for key, field in model.model_fields.items():
            shown = f"[{name}.{key}]" if _is_table(model, key) else key
            meaning = (field.description or "").replace("|", "\\|")
            out.append(f"| `{shown}` | {_kind(field.annotation)} | `{literal(field.default)}` | "
                       f"{_allowed(field) or '—'} | {meaning} |")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    text = reference()
    if "--check" in argv:
        if DOCS.read_text() != text:
            print(f"{DOCS} is stale: run python -m appliance.config_docs", file=sys.stderr)
            return 1
        return 0
    DOCS.write_text(text)
    print(f"wrote {DOCS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
