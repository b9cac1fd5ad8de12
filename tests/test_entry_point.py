"""The `kluis` entry point: the command -> module table stays true, and a command loads only its module."""

import importlib
import json
import pkgutil
import subprocess
import sys

from appliance.app import cli, commands


def test_every_command_is_mapped_to_the_module_that_defines_it():
    defined = {}
    for info in pkgutil.iter_modules(commands.__path__):
        for command in getattr(importlib.import_module(f"appliance.app.commands.{info.name}"), "COMMANDS", []):
            defined[command.name] = info.name
    assert defined == cli.COMMAND_MODULES


def _loaded(code: str, packages: tuple[str, ...]) -> list[str]:
    """The modules of `packages` that a fresh interpreter has loaded after running `code`."""
    probe = (f"import sys, json\n{code}\n"
             f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {packages!r})))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_import_does_not_load_the_web_and_camera_stack():
    code = ("from appliance.app.cli import main\n"
            "try:\n    main(['import', '--help'], standalone_mode=False)\nexcept SystemExit: pass")
    assert _loaded(code, ("aiohttp", "av", "zeroconf", "webui", "sync")) == []


def test_the_sync_client_does_not_load_aiohttp():
    """`kluis sync run` talks to the archive through sync/link.py: aiohttp's client would cost every
    run ~0.1 s of imports, the system CA store loaded twice among them."""
    assert _loaded("from sync import client", ("aiohttp", "webui")) == []


def test_help_lists_every_area(kluis):
    listed = kluis("--help").stdout.decode()
    for name in cli.COMMAND_MODULES:
        assert name in listed


def test_a_damaged_catalog_is_one_line_not_a_traceback(box_dir, kluis):
    data, _ = box_dir
    (data / "catalog.db").write_bytes(b"\x00not sqlite" * 800)
    for name in ("catalog.db-wal", "catalog.db-shm"):
        (data / name).unlink(missing_ok=True)
    result = kluis("list", "--data", data, check=False)
    err = result.stderr.decode()
    assert result.returncode == 1 and "Traceback" not in err
    assert err.strip().splitlines() == ["Error: the catalog cannot be read (file is not a database); nothing was changed"]
