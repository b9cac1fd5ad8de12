"""Real processes for the dock tests: `kluis camera-sim` cameras and a `kluis serve` box, talking over real
sockets and real mDNS (on loopback, or across network namespaces: netns.py)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

from appliance.box import Box
from tests.processes import ROOT, Proc, wait_for  # noqa: F401  (wait_for: the dock tests import it here)

KLUIS = [sys.executable, "-m", "appliance"]


def set_config(data_dir: Path, section: str, values: dict) -> None:
    """Set keys under an existing [section] header of kluis.toml (the template has every section)."""
    path = data_dir / "kluis.toml"
    text = path.read_text()
    lines = "".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items())
    assert f"[{section}]\n" in text, f"no [{section}] in the config template"
    text = "".join(line for line in text.splitlines(keepends=True)
                   if not any(line.startswith(f"{k} = ") for k in values))  # set before: replace
    path.write_text(text.replace(f"[{section}]\n", f"[{section}]\n{lines}", 1))


class Camera(Proc):
    """`kluis camera-sim` as a subprocess; its /sim/ endpoints for records, faults and stats."""

    def __init__(self, state: Path, serial: str, *extra: str, prefix: list[str] = (), address: str = "127.0.0.1"):
        self.serial, self.state, self.address, self.prefix = serial, state, address, list(prefix)
        super().__init__(KLUIS + ["camera-sim", "--serial", serial, "--state", str(state), "--bind", address,
                                  "--address", address, *extra], f"camera {serial}", prefix)
        self.port = int(self.find(r"listening on port (\d+)").group(1))

    @property
    def code(self) -> str:
        return [m.group(1) for line in self.lines if (m := re.search(r"^pairing code: (\d{8})$", line))][-1]

    def _call(self, method: str, path: str, body: dict | None = None) -> dict:
        if self.prefix:  # in another network namespace: ask from inside it
            cmd = [*self.prefix, "curl", "-sf", "-X", method, f"http://{self.address}:{self.port}{path}"]
            if body is not None:
                cmd += ["--data-binary", json.dumps(body)]
            return json.loads(subprocess.run(cmd, check=True, capture_output=True, timeout=60).stdout)
        request = urllib.request.Request(f"http://{self.address}:{self.port}{path}", method=method,
                                         data=json.dumps(body).encode() if body is not None else None)
        with urllib.request.urlopen(request, timeout=60) as resp:
            return json.loads(resp.read())

    def record(self, seconds: float = 1, filler_mb: float = 0) -> dict:
        return self._call("POST", "/sim/record", {"seconds": seconds, "filler_mb": filler_mb})

    def faults(self, **changes) -> dict:
        return self._call("PUT", "/sim/faults", changes)

    def stats(self) -> dict:
        return self._call("GET", "/sim/stats")

    def entries(self) -> list[dict]:
        """The recordings the camera still holds (its manifest entries on disk)."""
        out = []
        for path in sorted((self.state / "recordings").glob("*.json")):
            try:
                out.append(json.loads(path.read_text()))
            except (FileNotFoundError, ValueError):
                pass
        return out


class BoxServer(Proc):
    """`kluis serve` as a subprocess."""

    def __init__(self, data_dir: Path, prefix: list[str] = ()):
        self.data_dir = data_dir
        super().__init__(KLUIS + ["serve", "--data", str(data_dir), "--listen", "127.0.0.1:0"], "kluis serve",
                         prefix)
        self.find(r"Kluis is serving")


def configure_box(data_dir: Path, interfaces: list[str], **dock) -> None:
    set_config(data_dir, "dock", {"interfaces": interfaces, "probe_interval_s": 0.5, "retry_s": 0.5, **dock})


def run_kluis(*args, check: bool = True, timeout: float = 120, prefix: list[str] = ()) -> subprocess.CompletedProcess:
    result = subprocess.run([*prefix, *KLUIS, *map(str, args)], capture_output=True, timeout=timeout, cwd=ROOT)
    if check and result.returncode != 0:
        raise AssertionError(f"kluis {' '.join(map(str, args))} failed ({result.returncode}):\n"
                             f"{result.stderr.decode(errors='replace')}")
    return result


def box_recordings(data_dir: Path) -> list[dict]:
    """What the box holds, read from its catalog (listing through the CLI needs a role that may see it)."""
    with Box(data_dir) as box:
        return box.catalog.list_recordings()


def box_devices(data_dir: Path) -> list[dict]:
    return json.loads(run_kluis("cameras", "list", "--data", data_dir, "--json").stdout)


def box_alerts(data_dir: Path) -> list[dict]:
    return json.loads(run_kluis("cameras", "alerts", "--data", data_dir, "--json").stdout)


KEEPER_PASSWORD = "correct horse battery staple"  # the keeper 'admin' of the test boxes (tests/conftest.py)


def keeper(data_dir: Path) -> list:
    """CLI arguments acting as the keeper: pairing and assigning cameras is theirs (roles.CAMERAS_MANAGE)."""
    path = data_dir.parent / f"{data_dir.name}-keeper-password.txt"
    path.write_text(KEEPER_PASSWORD + "\n")
    return ["--user", "admin", "--password-file", path]


def pair(data_dir: Path, camera: Camera, *extra: str, prefix: list[str] = ()) -> str:
    wait_for(lambda: any(d["serial"] == camera.serial for d in box_devices(data_dir)), 20,
             what=f"{camera.serial} discovered")
    return run_kluis("cameras", "pair", "--data", data_dir, camera.serial, camera.code, *extra, *keeper(data_dir),
                     prefix=prefix).stdout.decode()


