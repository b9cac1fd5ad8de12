"""Web handlers are thin: they parse the request, call the domain and render. SQL lives in the domain
(appliance/), in the module that owns the data; this test fails when a module of webui/routes/ holds a SQL
statement or talks to the database itself."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROUTES = Path(__file__).resolve().parents[2] / "webui" / "routes"

# Keywords in capitals, as this code base writes its SQL: "Select the recordings ... from the list" is text.
SQL = re.compile(r"\b(SELECT\b.*\bFROM|INSERT\s+(OR\s+[A-Z]+\s+)?INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM)\b",
                 re.DOTALL)
DB_METHODS = {"execute", "executemany", "executescript", "query", "table"}


def sql_in(source: str) -> list[str]:
    """Where `source` holds SQL: string literals that read as a statement, calls of a database method,
    and `db[...]` (a sqlite-utils table)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.search(node.value):
            found.append(f"line {node.lineno}: SQL text {node.value[:60]!r}")
        elif isinstance(node, ast.JoinedStr):
            text = "".join(v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str))
            if SQL.search(text):
                found.append(f"line {node.lineno}: SQL text {text[:60]!r}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in DB_METHODS:
            found.append(f"line {node.lineno}: .{node.func.attr}(...)")
        elif isinstance(node, ast.Subscript) and isinstance(node.value, (ast.Name, ast.Attribute)) and \
                (node.value.id if isinstance(node.value, ast.Name) else node.value.attr) == "db":
            found.append(f"line {node.lineno}: db[...]")
    return found


def route_modules() -> list[Path]:
    return sorted(ROUTES.glob("*.py"))


@pytest.mark.parametrize("path", route_modules(), ids=lambda p: p.name)
def test_route_module_holds_no_sql(path):
    found = sql_in(path.read_text())
    assert not found, f"{path.name} runs SQL itself; move it into the domain module that owns the data: {found}"


def test_the_check_sees_sql_in_its_forms():
    caught = sql_in('''
x = "SELECT id FROM recordings"
y = f"SELECT count(*) FROM {t} WHERE a = ?"
box.catalog.db.execute(x)
list(db.query(y))
box.catalog.db["recordings"].insert({})
conn.executemany("INSERT OR IGNORE INTO t VALUES (?)", rows)
"UPDATE recordings SET reason = ?"
"DELETE FROM holds"
''')
    assert len(caught) == 10, caught
    assert sql_in('''
message = _("Select the recordings to hand over from the list")
updated = "Update: saved"
request.query.get("ok")
''') == []
