"""kluis update verify | apply | build | keygen: signed update bundles (appliance/update.py).

`apply` needs no login: what authorises an update is the release key's signature, and who may run it is
who may write the service's venv (root on the appliance; the web UI only stages a verified bundle).
`build` and `keygen` are the maintainer's side; the release key never goes onto a box.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from appliance import keys
from appliance import update as update_mod
from appliance.catalog import SCHEMA_VERSION
from appliance.errors import KluisError
from .common import data_option, emit_json

trusted_option = click.option(
    "--trusted-keys", type=click.Path(path_type=Path),
    help=f"Release public keys to trust (default: ${update_mod.TRUSTED_KEYS_ENV}, else {update_mod.TRUSTED_KEYS_FILE}).")


@click.group()
def update() -> None:
    """Signed update bundles: check one, install one (with backup, migrations, health check, rollback)."""


@update.command("verify")
@click.argument("bundle", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@trusted_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def verify(bundle: Path, trusted_keys: Path | None, as_json: bool) -> None:
    """Check a bundle's signature and wheel without installing anything."""
    found = update_mod.verify(bundle, update_mod.trusted_keys(trusted_keys))
    manifest = {k: v for k, v in found.manifest.items() if k != "signature"}
    if as_json:
        emit_json(manifest)
        return
    click.echo(f"ok: Kluis {found.version} ({manifest['wheel']}, sha256 {manifest['wheel_sha256']}), catalog schema "
               f"{manifest['min_schema']}..{manifest['schema']}, signed by {keys.fingerprint(bytes.fromhex(manifest['signer']))}")


@update.command("apply")
@data_option
@click.argument("bundle", required=False, type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--venv", type=click.Path(path_type=Path), default=sys.prefix, show_default="this kluis's venv",
              help="The service's venv to install into.")
@trusted_option
@click.option("--backup-to", type=click.Path(path_type=Path),
              help="Also write a full `kluis backup` here first (a USB disk, a share).")
@click.option("--service", help="systemd unit to stop during the update and start for the health check.")
@click.option("--health-timeout", type=float, default=60, show_default=True, help="Seconds to wait for health.")
@click.option("--compile/--no-compile", "compile_bytecode", default=True, help="Byte-compile the new code.")
def apply(data_dir: Path, bundle: Path, venv: Path, trusted_keys: Path | None, backup_to: Path | None,
          service: str | None, health_timeout: float, compile_bytecode: bool) -> None:
    """Install a signed bundle: verify, back up, install, migrate, check health, roll back if unhealthy.

    Without BUNDLE: the one the keeper uploaded on the web UI's Onderhoud page (DATA/update/staged.kluis-update),
    which is removed afterwards, installed or not (the appliance's updater runs this as root)."""
    staged = data_dir / update_mod.UPDATE_DIR / update_mod.STAGED
    if bundle is None and not staged.exists():
        raise KluisError(f"no bundle given and none staged ({staged})")
    try:
        result = update_mod.apply(data_dir, bundle or staged, venv, trusted=update_mod.trusted_keys(trusted_keys),
                                  backup_to=backup_to, service=service, health_timeout=health_timeout,
                                  compile_bytecode=compile_bytecode)
    finally:
        if bundle is None:
            staged.unlink(missing_ok=True)
    if result.backup:
        click.echo(f"backup {result.backup} written to {backup_to}")
    if result.healthy:
        click.echo(f"updated Kluis {result.previous or '(none)'} -> {result.version}; catalog schema "
                   f"{result.schema_before} -> {result.schema_after}; healthy")
        return
    raise KluisError(f"update to {result.version} failed ({result.why}); rolled back to "
                     f"{result.previous or '(none)'} and the catalog as it was")


@update.command("build")
@click.option("--key", "key_file", required=True, type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="The release signing key (from `kluis update keygen`).")
@click.option("--wheel", required=True, type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--out", required=True, type=click.Path(path_type=Path))
@click.option("--schema", type=int, default=SCHEMA_VERSION, show_default=True,
              help="Catalog schema version the new code brings.")
@click.option("--min-schema", type=int, default=1, show_default=True,
              help="Oldest catalog schema the new code's migrations start from.")
@click.option("--notes", default="", help="Release notes shown before installing.")
def build(key_file: Path, wheel: Path, out: Path, schema: int, min_schema: int, notes: str) -> None:
    """Make a signed update bundle from a Kluis wheel (maintainers)."""
    manifest = update_mod.build(update_mod.read_release_key(key_file), wheel, out, schema=schema,
                                min_schema=min_schema, notes=notes)
    click.echo(f"{out}: Kluis {manifest['version']}, signed by {keys.fingerprint(bytes.fromhex(manifest['signer']))}")


@update.command("keygen")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Where to write the new release key.")
def keygen(out: Path) -> None:
    """Make a release signing key; prints the public key for the image's /etc/kluis/release-keys."""
    if out.exists():
        raise KluisError(f"{out} exists already")
    key = update_mod.new_release_key(out)
    click.echo(bytes(key.verify_key).hex())


COMMANDS = [update]
