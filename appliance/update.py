"""Signed update bundles: a new Kluis wheel with a manifest signed by a release key the box trusts.

A bundle is an uncompressed tar of exactly two members: `kluis-update.json` (the signed manifest) and the
wheel it names. The manifest says the version, the wheel's file name, size and SHA-256, the catalog schema
version the new code brings (`schema`) and the oldest one its migrations start from (`min_schema`), and
carries an Ed25519 signature by a release key (docs/backup.md, "Update bundles").

Applying one (`apply`), in this order; nothing changes before step 3:
1. verify: signed by a trusted release key, wheel hash and size right, the catalog's schema within
   [min_schema, schema]; a refusal is audited (`update_refused`) and changes nothing else;
2. `update_start` in the audit log, then a backup: an encrypted `kluis backup` to `backup_to` when given,
   and always a snapshot of the catalog in memory (a copy on disk would keep shredded keys in free blocks);
3. the installed Kluis files are saved (`DATA/update/rollback.tar`), the wheel installed into the venv
   with pip (offline: --no-index --no-deps; the image's venv has the dependencies);
4. the new code runs the catalog migrations, then (the service restarted, when one is named) the health
   command must exit 0 within the timeout and report the new schema;
5. healthy: `update` in the audit log. Not healthy: the previous files are put back, the catalog restored
   from the snapshot, the old code's health checked, `update_rolled_back` audited, and the command fails.

Run it with the service stopped (`--service kluis.service` stops and starts it): a catalog restored from
the snapshot would otherwise lose what the running service wrote meanwhile.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import sqlite3
import subprocess
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from nacl.signing import SigningKey

from . import audit, backup, keys, signing
from .canonical import canonical
from .box import CATALOG, Box
from .catalog import SCHEMA_VERSION
from .errors import KluisError

BUNDLE_TYPE = "kluis-update"
MANIFEST_NAME = "kluis-update.json"
TRUSTED_KEYS_ENV = "KLUIS_RELEASE_KEYS"
TRUSTED_KEYS_FILE = Path("/etc/kluis/release-keys")  # shipped with the image: one public key per line
MAX_MANIFEST = 64 * 1024
MAX_WHEEL = 512 * 1024 * 1024
WHEEL_RE = re.compile(r"^kluis-([0-9][A-Za-z0-9.+!_]*)-[^-/]+-[^-/]+-[^-/]+\.whl$")
UPDATE_DIR = "update"
STAGED = "staged.kluis-update"  # a bundle the web UI checked and staged for the updater

_DIST_FILES = """
import json, sysconfig
from importlib import metadata
# Only a Kluis installed in this venv itself counts (not one reachable through a .pth path elsewhere).
found = list(metadata.distributions(name="kluis", path=[sysconfig.get_paths()["purelib"]]))
dist = found[0] if found else None
print(json.dumps(dist and {"version": dist.version, "files": [str(dist.locate_file(f)) for f in (dist.files or [])]}))
"""
_MIGRATE = """
import sys
from appliance.catalog import Catalog
catalog = Catalog(sys.argv[1])
print(catalog.version)
catalog.close()
"""


class UpdateRefused(KluisError):
    """A bundle that must not be installed: bad signature, untrusted key, wrong hash, wrong schema."""


def _member_bytes(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    src = tar.extractfile(member)
    if src is None:  # a link or a directory where a file was checked for
        raise UpdateRefused(f"the bundle's {member.name} is not a file")
    return src.read()


# Keys ---------------------------------------------------------------------------------------------------

def new_release_key(path: Path) -> SigningKey:
    """A release signing key for maintainers (the seed, 0600); its public key goes into the image."""
    return keys.write_signing_key(Path(path))


def read_release_key(path: Path) -> SigningKey:
    return keys.read_signing_key(Path(path))


def parse_public_key(text: str) -> str:
    raw = text.strip()
    try:
        key = bytes.fromhex(raw)
    except ValueError:
        import base64

        try:
            key = base64.b64decode(raw, validate=True)
        except ValueError:
            raise KluisError(f"not an Ed25519 public key: {raw[:20]!r}") from None
    if len(key) != 32:
        raise KluisError(f"not an Ed25519 public key (32 bytes): {raw[:20]!r}")
    return key.hex()


def trusted_keys(path: Path | None = None) -> list[str]:
    """The release keys this box trusts: --trusted-keys FILE, else $KLUIS_RELEASE_KEYS, else
    /etc/kluis/release-keys. One hex (or base64) Ed25519 public key per line; '#' starts a comment."""
    path = Path(path or os.environ.get(TRUSTED_KEYS_ENV) or TRUSTED_KEYS_FILE)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise KluisError(f"cannot read the trusted release keys {path}: {exc.strerror}") from None
    found = [parse_public_key(line.split("#", 1)[0]) for line in lines if line.split("#", 1)[0].strip()]
    if not found:
        raise KluisError(f"{path} names no release key")
    return found


# Bundles ------------------------------------------------------------------------------------------------

def build(key: SigningKey, wheel: Path, out: Path, *, schema: int | None = None, min_schema: int = 1,
          notes: str = "") -> dict:
    """Make a bundle (maintainer side); returns the signed manifest."""
    wheel = Path(wheel)
    match = WHEEL_RE.match(wheel.name)
    if not match:
        raise KluisError(f"{wheel.name}: not a Kluis wheel file name (kluis-VERSION-...whl)")
    data = wheel.read_bytes()
    body = {"type": BUNDLE_TYPE, "v": 1, "version": match.group(1), "wheel": wheel.name,
            "wheel_sha256": hashlib.sha256(data).hexdigest(), "wheel_size": len(data),
            "schema": SCHEMA_VERSION if schema is None else schema, "min_schema": min_schema, "notes": notes,
            "signer": bytes(key.verify_key).hex()}
    manifest = signing.signed(body, key, signing.UPDATE_MANIFEST)
    raw = canonical(manifest)
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in ((MANIFEST_NAME, raw), (wheel.name, data)):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(content), 0o644, 0
            tar.addfile(info, io.BytesIO(content))
    return manifest


@dataclass
class Bundle:
    manifest: dict
    wheel: bytes

    @property
    def version(self) -> str:
        return self.manifest["version"]


def verify(path: Path, trusted: list[str]) -> Bundle:
    """Check a bundle: its layout, the signature by one of the trusted keys, the wheel's hash and size."""
    try:
        tar = tarfile.open(path, "r:")
    except (OSError, tarfile.TarError) as exc:
        raise UpdateRefused(f"{Path(path).name}: not a Kluis update bundle ({exc})") from None
    with tar:
        members = {m.name: m for m in tar.getmembers()}
        if MANIFEST_NAME not in members or len(members) != 2 or not all(m.isfile() for m in members.values()):
            raise UpdateRefused(f"{Path(path).name}: not a Kluis update bundle (expected {MANIFEST_NAME} and one wheel)")
        if members[MANIFEST_NAME].size > MAX_MANIFEST:
            raise UpdateRefused("the bundle's manifest is too large")
        try:
            manifest = json.loads(_member_bytes(tar, members[MANIFEST_NAME]))
            body = {k: v for k, v in manifest.items() if k != "signature"}
            signature = manifest["signature"]
            signer = manifest["signer"]
        except (ValueError, KeyError, TypeError, AttributeError):
            raise UpdateRefused("the bundle's manifest is malformed") from None
        if manifest.get("type") != BUNDLE_TYPE:
            raise UpdateRefused("not a Kluis update manifest")
        if signer not in trusted:
            raise UpdateRefused(f"signed by {keys.fingerprint(bytes.fromhex(signer)) if len(signer) == 64 else signer!r}, "
                                "which is not a trusted release key")
        if not signing.is_valid(signer, signing.UPDATE_MANIFEST, body, signature):
            raise UpdateRefused("the bundle's signature does not match its manifest")
        name = manifest.get("wheel")
        wheel = WHEEL_RE.match(name) if isinstance(name, str) else None
        if wheel is None or name not in members:
            raise UpdateRefused("the bundle does not hold the wheel its manifest names")
        if members[name].size != manifest.get("wheel_size") or members[name].size > MAX_WHEEL:
            raise UpdateRefused("the wheel's size is not the signed one")
        data = _member_bytes(tar, members[name])
    if hashlib.sha256(data).hexdigest() != manifest.get("wheel_sha256"):
        raise UpdateRefused("the wheel is not the signed one (SHA-256 mismatch)")
    if wheel.group(1) != manifest.get("version"):
        raise UpdateRefused("the wheel's version is not the signed one")
    return Bundle(manifest, data)


# Applying -----------------------------------------------------------------------------------------------

@dataclass
class Applied:
    version: str
    previous: str | None
    schema_before: int
    schema_after: int
    healthy: bool
    rolled_back: bool = False
    why: str | None = None
    backup: str | None = None
    log: list[str] = field(default_factory=list)


def _python(venv: Path) -> list:
    # -I: the current directory (maybe a source tree) must not shadow the installed code
    return [Path(venv) / "bin" / "python", "-I"]


def _run(args: list, timeout: float) -> subprocess.CompletedProcess:
    try:
        return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout, cwd="/")
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(args, 124, "", f"timed out after {timeout:.0f} s")
    except OSError as exc:
        return subprocess.CompletedProcess(args, 127, "", str(exc))


def _tail(result: subprocess.CompletedProcess) -> str:
    text = (result.stderr or result.stdout or "").strip().splitlines()
    return text[-1][:300] if text else f"exit {result.returncode}"


def installed(venv: Path) -> dict | None:
    """The Kluis distribution installed in a venv: version and files, or None."""
    result = _run([*_python(venv), "-c", _DIST_FILES], 60)
    if result.returncode != 0:
        raise KluisError(f"cannot inspect the venv {venv}: {_tail(result)}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def save_install(info: dict | None, out: Path) -> None:
    """The installed Kluis files, with absolute paths, as a tar to put back on rollback."""
    out.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for name in (info or {}).get("files", []):
            path = Path(os.path.normpath(name))  # RECORD names scripts as site-packages/../../../bin/kluis
            if path.is_file() and "__pycache__" not in path.parts:
                tar.add(str(path), arcname=str(path).lstrip("/"), recursive=False)


def put_back(venv: Path, saved: Path) -> None:
    """Remove whatever Kluis is installed now and restore the saved files."""
    if installed(venv) is not None:
        result = _run([*_python(venv), "-m", "pip", "uninstall", "-y", "-q", "kluis"], 300)
        if result.returncode != 0:
            raise KluisError(f"rollback: pip uninstall failed: {_tail(result)}")
    with tarfile.open(saved, "r:") as tar:
        for member in tar.getmembers():
            if not member.isfile() or ".." in Path(member.name).parts:
                continue
            dest = Path("/") / member.name
            dest.parent.mkdir(parents=True, exist_ok=True)
            with open(dest, "wb") as f:
                f.write(_member_bytes(tar, member))
            os.chmod(dest, member.mode & 0o777)


def health(venv: Path, data_dir: Path, want_schema: int, timeout: float,
           command: list[str] | None = None) -> tuple[bool, str]:
    """Healthy: the venv's `kluis status --json` exits 0 and reports the expected schema (or a given
    health command exits 0), tried until `timeout` passes."""
    default = [str(Path(venv) / "bin" / "kluis"), "status", "--data", str(data_dir), "--json"]
    deadline = time.monotonic() + timeout
    while True:
        result = _run(command or default, max(deadline - time.monotonic(), 1))
        if result.returncode != 0:
            why = _tail(result)
        elif command:
            return True, "ok"
        else:
            try:
                schema = json.loads(result.stdout).get("schema_version")
            except (ValueError, AttributeError):
                schema = None
            if schema == want_schema:
                return True, "ok"
            why = f"reports schema {schema}, expected {want_schema}"
        if time.monotonic() + 1 >= deadline:
            return False, why
        time.sleep(1)


def _systemctl(*args: str) -> None:
    result = _run(["systemctl", *args], 120)
    if result.returncode != 0:
        raise KluisError(f"systemctl {' '.join(args)}: {_tail(result)}")


def apply(data_dir: Path, bundle_path: Path, venv: Path, *, trusted: list[str], backup_to: Path | None = None,
          service: str | None = None, health_timeout: float = 60, health_command: list[str] | None = None,
          compile_bytecode: bool = True, actor: str = "system", clock=None) -> Applied:
    data_dir, venv = Path(data_dir).resolve(), Path(venv).absolute()  # subprocesses run in /
    with (Box(data_dir, clock) if clock else Box(data_dir)) as box:
        schema_before = box.catalog.version
        try:
            bundle = verify(bundle_path, trusted)
            manifest = bundle.manifest
            if schema_before < manifest["min_schema"]:
                raise UpdateRefused(f"this box's catalog is at schema {schema_before}; version {bundle.version} "
                                    f"migrates from schema {manifest['min_schema']} on: install an earlier update first")
            if schema_before > manifest["schema"]:
                raise UpdateRefused(f"this box's catalog is at schema {schema_before}, newer than version "
                                    f"{bundle.version} knows ({manifest['schema']}): that would be a downgrade")
            if not _python(venv)[0].exists():
                raise UpdateRefused(f"{venv} is not a Python venv")
        except UpdateRefused as exc:
            with box.catalog.transaction():
                audit.record(box.catalog, actor=actor, action="update_refused", clock=box.clock,
                             details={"bundle": Path(bundle_path).name, "why": str(exc)})
            raise
        previous = installed(venv)
        result = Applied(bundle.version, previous["version"] if previous else None, schema_before,
                         schema_before, healthy=False)
        with box.catalog.transaction():
            audit.record(box.catalog, actor=actor, action="update_start", clock=box.clock,
                         details={"version": bundle.version, "previous": result.previous,
                                  "wheel_sha256": manifest["wheel_sha256"], "signer": manifest["signer"]})
        if backup_to is not None:
            result.backup = backup.run(box, backup_to, actor=actor).name
        if service:
            _systemctl("stop", service)
        snapshot = sqlite3.connect(":memory:")
        box.catalog.db.conn.backup(snapshot)
        work = data_dir / UPDATE_DIR
        work.mkdir(mode=0o700, exist_ok=True)
        saved = work / "rollback.tar"
        save_install(previous, saved)
        wheel = work / manifest["wheel"]
        wheel.write_bytes(bundle.wheel)
        try:
            ok, why = _install_and_check(result, venv, wheel, data_dir, manifest["schema"], service,
                                         health_timeout, health_command, compile_bytecode)
            if ok:
                result.healthy = True
                result.schema_after = manifest["schema"]
                with box.catalog.transaction():
                    audit.record(box.catalog, actor=actor, action="update", clock=box.clock,
                                 details={"version": bundle.version, "previous": result.previous,
                                          "schema_before": schema_before, "schema_after": result.schema_after,
                                          "backup": result.backup})
                return result
            result.why = why
            _roll_back(box, result, venv, saved, snapshot, service, health_timeout, health_command, schema_before, actor)
            return result
        finally:
            snapshot.close()
            wheel.unlink(missing_ok=True)
            _give_back(data_dir)


def _give_back(data_dir: Path) -> None:
    """The updater runs as root; what it made in the data directory (update/, the catalog's WAL files)
    goes to the directory's owner, the service user, or the service could not open its catalog."""
    if os.geteuid() != 0:
        return
    owner = data_dir.stat()
    paths = [data_dir / UPDATE_DIR, *data_dir.glob(CATALOG + "*")]
    for path in paths:
        for item in [path, *(path.rglob("*") if path.is_dir() else [])]:
            try:
                if item.lstat().st_uid != owner.st_uid or item.lstat().st_gid != owner.st_gid:
                    os.chown(item, owner.st_uid, owner.st_gid, follow_symlinks=False)
            except FileNotFoundError:
                pass


def _install_and_check(result: Applied, venv: Path, wheel: Path, data_dir: Path, schema: int, service: str | None,
                       health_timeout: float, health_command, compile_bytecode: bool) -> tuple[bool, str]:
    pip = [*_python(venv), "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--force-reinstall",
           "--disable-pip-version-check"] + ([] if compile_bytecode else ["--no-compile"]) + [wheel]
    done = _run(pip, 600)
    result.log.append(f"pip install: exit {done.returncode}")
    if done.returncode != 0:
        return False, f"pip install failed: {_tail(done)}"
    migrated = _run([*_python(venv), "-c", _MIGRATE, data_dir / CATALOG], 600)
    result.log.append(f"migrations: exit {migrated.returncode}")
    if migrated.returncode != 0:
        return False, f"catalog migrations failed: {_tail(migrated)}"
    if migrated.stdout.strip() != str(schema):
        return False, f"the new code migrated to schema {migrated.stdout.strip()}, not the signed {schema}"
    if service:
        _systemctl("start", service)
    ok, why = health(venv, data_dir, schema, health_timeout, health_command)
    result.log.append(f"health: {why}")
    return ok, (why if ok else f"not healthy: {why}")


def _roll_back(box: Box, result: Applied, venv: Path, saved: Path, snapshot: sqlite3.Connection, service: str | None,
               health_timeout: float, health_command, schema_before: int, actor: str) -> None:
    if service:
        _run(["systemctl", "stop", service], 120)
    # The catalog first: it is the data; the code can be reinstalled by hand if putting it back fails.
    snapshot.backup(box.catalog.db.conn)  # the catalog as it was before the migrations
    box.catalog.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    try:
        put_back(venv, saved)
    except (KluisError, OSError, tarfile.TarError) as exc:
        result.why = (result.why or "") + f"; putting the previous code back failed: {exc}"
    if service:
        _run(["systemctl", "start", service], 120)
    ok, why = health(venv, box.data_dir, schema_before, health_timeout, health_command)
    result.rolled_back = True
    result.log.append(f"rollback health: {why}")
    with box.catalog.transaction():
        audit.record(box.catalog, actor=actor, action="update_rolled_back", clock=box.clock,
                     details={"version": result.version, "previous": result.previous, "why": result.why,
                              "previous_healthy": ok, "backup": result.backup})
    if not ok:
        result.why = (result.why or "") + f"; after the rollback the previous version is not healthy either: {why}"
