"""Helpers of the update tests: real wheels of this repository's code (built with zipfile, so no build
backend runs), a throwaway venv that borrows the dependencies of the test venv, and bundles."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("appliance", "sync", "webui")


def repo_files() -> dict[str, bytes]:
    files = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*")):
            # Not the face model (7.3 MB): these tests are about the bundle's checks, and a bundle that carries
            # it is over the web UI's upload limit (issue 23's note: updates with it go by USB).
            if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".pyc", ".mo", ".onnx"):
                files[path.relative_to(REPO).as_posix()] = path.read_bytes()
    return files


def with_migration(files: dict[str, bytes], name: str, sql: str) -> dict[str, bytes]:
    """The code with one more migration set appended to schema.BOX (what a new release brings)."""
    text = files["appliance/schema/__init__.py"].decode()
    start = text.index("BOX: tuple[Migrations, ...] = (")
    end = text.index("\n)\n", start)  # the tuple's closing line, whichever set is last today
    text = text[:end] + f'\n    Migrations("{name}", [("create", """{sql}""")]),' + text[end:]
    return {**files, "appliance/schema/__init__.py": text.encode()}


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def make_wheel(out_dir: Path, version: str, files: dict[str, bytes], entry_point: str = "appliance.app.cli:main") -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    dist = f"kluis-{version}.dist-info"
    meta = {
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: kluis\nVersion: {version}\n\n".encode(),
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: kluis-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{dist}/entry_points.txt": f"[console_scripts]\nkluis = {entry_point}\n".encode(),
    }
    path = out_dir / f"kluis-{version}-py3-none-any.whl"
    record = []
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in {**files, **meta}.items():
            zf.writestr(name, data)
            record.append(f"{name},{_record_hash(data)},{len(data)}")
        record.append(f"{dist}/RECORD,,")
        zf.writestr(f"{dist}/RECORD", "\n".join(record) + "\n")
    return path


def make_venv(path: Path) -> Path:
    """A venv without its own pip (the base interpreter's pip serves, through --system-site-packages) whose
    .pth adds the test venv's site-packages as a plain path: the dependencies are there, but not the
    editable Kluis (a path in a .pth is not itself scanned for .pth files)."""
    subprocess.run([sys._base_executable, "-m", "venv", "--without-pip", "--system-site-packages", str(path)],
                   check=True, capture_output=True)
    site = Path(subprocess.run([str(path / "bin" / "python"), "-c",
                                "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    (site / "kluis-test-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return path


def pip_install(venv: Path, wheel: Path) -> None:
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-index", "--no-deps",
                    "--no-compile", "--disable-pip-version-check", str(wheel)], check=True, capture_output=True)


def installed_version(venv: Path) -> str | None:
    from appliance import update

    info = update.installed(venv)
    return info and info["version"]
