"""The layers, checked from the source: which module imports which, read with `ast` (nothing is imported).

    domain      appliance/** except appliance/app: no aiohttp (but the three ingest adapters), and none of
                webui, sync, simulators or the app layer
    webui, sync the domain only: never the app layer, the simulators or each other
    simulators  test and demo equipment: the domain only
    app layer   appliance/app/** and appliance/__main__.py: may import everything

Every import counts, also one inside a function: a lazy import hides a cycle from Python, not from the
design. No module imports a private name (`_x`) of another package. And every module imports on its own
in a fresh interpreter (python-zeroconf's tests/test_circular_imports.py), which catches what the graph
cannot: an import that works only after another module was loaded first.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("appliance", "webui", "sync", "simulators")

# The ingest adapters: each speaks HTTP to a camera or an Axis system, so aiohttp is their job.
AIOHTTP_ADAPTERS = {"appliance.axis.server", "appliance.dock.client", "appliance.dock.offload",
                    "appliance.dock.pairing"}

@dataclass(frozen=True)
class Import:
    importer: str
    target: str  # a module of PACKAGES, or the top-level name of a third-party package
    line: int
    private_name: str | None = None  # `from target import _x`: the private name taken
    typing_only: bool = False  # under `if TYPE_CHECKING:`: a layer rule, but no edge of a runtime cycle


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found[_module_name(path)] = path
    return found


def _is_package(module: str) -> bool:
    return modules()[module].name == "__init__.py"


def _resolve(importer: str, level: int, name: str | None) -> str:
    if not level:
        return name or ""
    base = importer.split(".")
    if not _is_package(importer):
        base.pop()
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def _known(name: str) -> str | None:
    """The module of PACKAGES that `name` is, or is in (`appliance.catalog.MIGRATIONS` -> appliance.catalog)."""
    parts = name.split(".")
    while parts:
        if ".".join(parts) in modules():
            return ".".join(parts)
        parts.pop()
    return None


@cache
def imports_of(module: str) -> tuple[Import, ...]:
    tree = ast.parse(modules()[module].read_text(encoding="utf-8"))
    typing_only = {id(inner) for node in ast.walk(tree) if isinstance(node, ast.If) and _is_type_checking(node.test)
                   for stmt in node.body for inner in ast.walk(stmt)}
    found = []
    for node in ast.walk(tree):
        hint = id(node) in typing_only
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.append(Import(module, _known(alias.name) or alias.name.split(".")[0], node.lineno,
                                    typing_only=hint))
        elif isinstance(node, ast.ImportFrom):
            source = _resolve(module, node.level, node.module)
            for alias in node.names:
                full = f"{source}.{alias.name}"
                if full in modules():  # `from package import module`
                    found.append(Import(module, full, node.lineno, typing_only=hint))
                    continue
                target = _known(source) or source.split(".")[0]
                private = alias.name if alias.name.startswith("_") else None
                found.append(Import(module, target, node.lineno, private, typing_only=hint))
    found += _private_attributes(module, tree)
    return tuple(found)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _private_attributes(module: str, tree: ast.Module) -> list[Import]:
    """`from appliance import catalog` then `catalog._statements(...)`: a private name all the same."""
    bound: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname and alias.name in modules():
                    bound[alias.asname] = alias.name
        elif isinstance(node, ast.ImportFrom):
            source = _resolve(module, node.level, node.module)
            for alias in node.names:
                if f"{source}.{alias.name}" in modules():
                    bound[alias.asname or alias.name] = f"{source}.{alias.name}"
    return [Import(module, bound[node.value.id], node.lineno, node.attr) for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in bound
            and node.attr.startswith("_") and not node.attr.startswith("__")]


def _internal_edges() -> dict[str, set[str]]:
    # Imports for type hints only (`if TYPE_CHECKING:`) run never, so they close no cycle at import time.
    return {m: {i.target for i in imports_of(m) if i.target in modules() and i.target != m and not i.typing_only}
            for m in modules()}


def _layer(module: str) -> str:
    top = module.split(".")[0]
    if top != "appliance":
        return top
    if module in ("appliance.__main__", "appliance.app") or module.startswith("appliance.app."):
        return "app"
    return "domain"


def _forbidden(imp: Import) -> str | None:
    """Why this import breaks the layers, or None."""
    layer, top = _layer(imp.importer), imp.target.split(".")[0]
    target_layer = _layer(imp.target) if imp.target in modules() else None
    if layer == "domain":
        if top == "aiohttp" and imp.importer not in AIOHTTP_ADAPTERS:
            return "the domain has no HTTP in it (aiohttp belongs to the ingest adapters and webui)"
        if top in ("webui", "sync", "simulators") or target_layer == "app":
            return f"the domain imports no outer layer ({target_layer or top})"
    elif layer in ("webui", "sync", "simulators"):
        if target_layer == "app" or (top in ("webui", "sync", "simulators") and top != layer):
            return f"{layer} imports the domain only, not {target_layer or top}"
    return None


def _package_of(module: str) -> str:
    return module if _is_package(module) else module.rpartition(".")[0]


def _private_reach(imp: Import) -> str | None:
    """`from other.package import _x`, or `from other import _module`: a private name of another package."""
    if imp.target not in modules():
        return None
    if imp.private_name is not None:
        if _package_of(imp.target) != _package_of(imp.importer):
            return f"{imp.target}.{imp.private_name}"
    elif imp.target.rpartition(".")[2].startswith("_") and not imp.target.endswith(("__init__", "__main__")):
        if _package_of(imp.target) != _package_of(imp.importer):
            return imp.target
    return None


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """One concrete cycle per strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return [_a_cycle_in(set(c), edges) for c in components]


def _a_cycle_in(component: set[str], edges: dict[str, set[str]]) -> list[str]:
    """The shortest way from the component's first module back to itself (breadth first)."""
    start = min(component)
    paths = {start: [start]}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(edges[v] & component):
            if w == start:
                return paths[v] + [start]
            if w not in paths:
                paths[w] = paths[v] + [w]
                queue.append(w)
    return sorted(component)


def test_the_graph_sees_the_packages():
    """The test reads what it means to: each package's modules and their imports."""
    assert {"appliance.box", "appliance.app.cli", "webui.app", "sync.client", "simulators.dock.camera"} <= set(modules())
    assert "appliance.box" in {i.target for i in imports_of("appliance.app.commands.box")}


def test_no_import_cycles():
    cycles = _cycles(_internal_edges())
    assert not cycles, "import cycles:\n" + "\n".join("  " + " -> ".join(c) for c in cycles)


def _violations(check) -> list[str]:
    """Every import of every module that `check` names a reason for, as 'module:line target: reason'."""
    return [f"  {module}:{imp.line} {imp.target}: {why}" for module in modules() for imp in imports_of(module)
            if (why := check(imp))]


def test_no_forbidden_imports():
    found = _violations(_forbidden)
    assert not found, "imports across the layers:\n" + "\n".join(found)


def test_no_private_names_of_another_package():
    found = _violations(_private_reach)
    assert not found, "private names taken from another package:\n" + "\n".join(found)


def test_the_rules_catch_what_they_should():
    """The checks themselves: a made-up import of each kind is caught, a fine one is not."""
    assert _forbidden(Import("appliance.recordings", "aiohttp", 1))
    assert not _forbidden(Import("appliance.dock.offload", "aiohttp", 1))
    assert _forbidden(Import("appliance.recordings", "webui.app", 1))
    assert _forbidden(Import("appliance.recordings", "appliance.app.service", 1))
    assert _forbidden(Import("webui.app", "sync.client", 1))
    assert _forbidden(Import("sync.client", "webui.app", 1))
    assert _forbidden(Import("webui.app", "simulators.dock.camera", 1))
    assert not _forbidden(Import("appliance.app.service", "webui.server", 1))
    assert not _forbidden(Import("webui.app", "appliance.box", 1))
    assert _private_reach(Import("sync.client", "appliance.catalog", 1, "_statements"))
    assert not _private_reach(Import("simulators.axis.w800", "simulators.axis.protocol", 1, "_etag"))
    tree = ast.parse("from appliance import catalog\ncatalog._statements('')\n")
    assert [_private_reach(i) for i in _private_attributes("sync.client", tree)] == ["appliance.catalog._statements"]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]


# One interpreter loads the third-party packages once, then forks a child per module: each child starts with
# none of the project's modules loaded, as a fresh interpreter would, at a fraction of the cost of starting
# one per module (aiohttp, pydantic, OpenCV and PyAV take seconds to import, a fork takes milliseconds).
_FORKED_IMPORTS = r"""
import importlib, os, sys, traceback
for name in sys.argv[2].split(","):
    try:
        importlib.import_module(name)
    except Exception:
        pass  # not installed or not importable alone: the child that needs it reports it
running = {}
def reap():
    pid, status = os.wait()
    if status:
        print(running[pid], flush=True)
    del running[pid]
for module in sys.argv[1].split(","):
    if len(running) >= (os.cpu_count() or 1):
        reap()
    sys.stdout.flush(); sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        try:
            importlib.import_module(module)
        except BaseException:
            print(f"--- {module}", file=sys.stderr)
            traceback.print_exc()
            sys.stderr.flush()
            os._exit(1)
        os._exit(0)
    running[pid] = module
while running:
    reap()
"""


def test_each_module_imports_on_its_own():
    """An import that works only when another module came first fails here."""
    project = sorted(m for m in modules() if not m.endswith("__main__"))
    third_party = sorted({i.target.split(".")[0] for m in project for i in imports_of(m)} - set(PACKAGES))
    result = subprocess.run([sys.executable, "-c", _FORKED_IMPORTS, ",".join(project), ",".join(third_party)],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [], "modules that do not import on their own:\n" + result.stderr


def test_the_forked_import_check_catches_a_module_that_needs_another_first(tmp_path):
    (tmp_path / "first.py").write_text("import second\n")
    (tmp_path / "second.py").write_text("import first\nVALUE = first.__name__\nfirst.NEEDED\n")
    result = subprocess.run([sys.executable, "-c", _FORKED_IMPORTS, "first,second", "json"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert "first" in result.stdout.split() or "second" in result.stdout.split()
