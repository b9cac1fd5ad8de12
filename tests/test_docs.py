"""The documentation made from the code is current (docs/cli-reference.md, README.md's permission table),
and the CLI's permission tables name exactly its commands.

When a test here fails after a change to a command or a permission: run `.venv/bin/python docs/generate.py`
and commit what it rewrote."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _load_generator():
    # By path: docs/ is a folder of documents, not a package to install.
    spec = importlib.util.spec_from_file_location("docs_generate", ROOT / "docs" / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


generate = _load_generator()
common = generate.common


def test_every_command_has_a_permission_entry_and_every_entry_a_command():
    assert generate.unclassified() == []


def test_a_command_missing_from_the_tables_is_found(monkeypatch):
    # New dicts rather than edits in place: the tables' order is the README's order.
    monkeypatch.setattr(common, "NO_LOGIN", {k: v for k, v in common.NO_LOGIN.items() if k != "status"})
    monkeypatch.setattr(common, "COMMAND_PERMISSIONS",
                        {**common.COMMAND_PERMISSIONS, "statsu": None, "verify --shallow": None})
    assert generate.unclassified() == [
        "`kluis status` is in neither COMMAND_PERMISSIONS nor NO_LOGIN",
        "'statsu' is in a permission table but `kluis statsu` is no command",
        "'verify --shallow' is in a permission table but `kluis verify` has no option --shallow",
    ]


def test_every_role_check_in_a_command_names_a_table_entry():
    """The names the commands pass to act() (directly or through their module's wrapper) are the keys of
    COMMAND_PERMISSIONS, so the table is what runs."""
    named = set()
    for source in Path(common.__file__).parent.glob("*.py"):
        text = source.read_text(encoding="utf-8")
        named |= set(re.findall(r"\b(?:_?act|act_on|_close)\(box, \"([^\"]+)\"", text))
        named |= set(re.findall(r"\b_closing_command\(\"([^\"]+)\"", text))  # export refuse, export cancel
    assert len(named) > 20
    assert named == set(common.COMMAND_PERMISSIONS)


@pytest.mark.parametrize("name", ["cli-reference.md", "README.md"])
def test_generated_docs_are_current(name):
    path = ROOT / ("docs/" if name == "cli-reference.md" else "") / name
    expected = generate.generated()[path]
    assert path.read_text(encoding="utf-8") == expected, \
        f"{name} is stale: run `.venv/bin/python docs/generate.py` and commit the result"


def test_the_reference_names_who_may_run_each_command():
    text = generate.CLI_REFERENCE.read_text(encoding="utf-8")
    assert "## kluis cameras pair\n\nWho may run it: `cameras.manage` (keeper)." in text
    assert "## kluis verify\n\nWho may run it: no login:" in text
    assert "With `--deep`: no permission of its own (keeper, team_leader, privacy_officer, officer)" in text


def _what_is_where() -> dict[str, str]:
    """README's "What is where" table: each row's first cell (the paths) to the whole row."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## What is where"):]
    section = section[:section.index("\n## ", 1)] if "\n## " in section[1:] else section
    return {row.split("|")[1]: row for row in section.splitlines() if row.startswith("| `")}


# Packages whose row names the package only: their modules are one concern, read together.
WHOLE_PACKAGES = ("appliance/redaction", "appliance/schema", "appliance/app/commands", "webui/routes")


def test_the_readme_says_where_every_module_is():
    rows = _what_is_where()
    paths = " ".join(rows)
    missing = []
    for path in sorted(p for pkg in ("appliance", "sync", "webui", "simulators") for p in (ROOT / pkg).rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if path.name in ("__init__.py", "__main__.py") or rel.startswith(WHOLE_PACKAGES):
            continue
        if f"`{rel}`" in paths:
            continue
        # Else the row of the closest package named with a trailing slash (`sync/`) must name the file.
        owners = [(len(m), row) for first, row in rows.items() for m in re.findall(r"`([\w/]+/)`", first)
                  if rel.startswith(m)]
        if not owners or f"`{path.name}`" not in max(owners)[1]:
            missing.append(rel)
    assert not missing, f"README.md's 'What is where' does not name: {missing}"
