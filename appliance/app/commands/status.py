"""kluis status: what a keeper checks first, including the fingerprint of the web UI's certificate."""

from __future__ import annotations

import shutil

import click

from appliance import keys, platform, timesync, tls, witness
from appliance.box import Box
from .common import emit_json, with_box


@click.command()
@with_box
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(box: Box, as_json: bool) -> None:
    """Show the box's state and the HTTPS certificate fingerprint to compare on first visit."""
    tls.ensure_certificate(box.data_dir, box.settings.box.name)  # boxes made before certificates existed
    count, stored = box.catalog.db.execute(
        "SELECT count(*), coalesce(sum(blob_size), 0) FROM recordings").fetchone()
    disk = shutil.disk_usage(box.data_dir)
    info = {
        "name": box.settings.box.name,
        "data_dir": str(box.data_dir),
        "created_at": box.catalog.get_meta("created_at"),
        "schema_version": box.catalog.version,
        "users": box.catalog.db.execute("SELECT count(*) FROM users").fetchone()[0],
        "recordings": count,
        "stored_bytes": stored,
        "disk_free_bytes": disk.free,
        "disk_total_bytes": disk.total,
        "certificate_sha256": tls.fingerprint(box.data_dir),
        "clock": timesync.status().as_dict(),             # {synchronized, source, detail}: times are evidence
        "at_rest": platform.at_rest(box.data_dir).as_dict(),  # {encrypted, kind, tpm, tpm2, ...}
        "signing_key_sealed": box.signing_key_sealed(),   # sealed to the TPM2, no plaintext copy on the disk
        "signing_key_unavailable": keys.signing_key_unavailable(),  # why the sealed key did not unseal, or None
        "recordings_clock_unsynced": box.catalog.db.execute(
            "SELECT count(*) FROM recordings WHERE clock_synced = 0").fetchone()[0],
        # the audit log's newest checkpoint the archive counter-signed: entries after it rest on the box's key alone
        "audit_witness": witness.summary(box.catalog, box.clock(), witness.archive_key(box.catalog) is not None),
    }
    if as_json:
        emit_json(info)
        return
    click.echo(f"{info['name']} in {info['data_dir']} (created {info['created_at']}, schema {info['schema_version']})")
    click.echo(f"  users: {info['users']}   recordings: {count} ({stored / 2**20:.1f} MiB)")
    click.echo(f"  disk: {disk.free / 2**30:.1f} GiB free of {disk.total / 2**30:.1f} GiB")
    click.echo("  web UI certificate (SHA-256), compare with the browser on first visit:")
    click.echo(f"    {info['certificate_sha256']}")
    clock = info["clock"]
    synced = {True: "synchronised", False: "NOT synchronised", None: "NOT known to be synchronised"}
    click.echo(f"  clock: {synced[clock['synchronized']]} ({clock['source']}: {clock['detail']})")
    if info["recordings_clock_unsynced"]:
        click.echo(f"    {info['recordings_clock_unsynced']} recording(s) were stored while the clock was not "
                   "synchronised (marked in the catalog)")
    seen = info["audit_witness"]
    if not seen["enrolled"]:
        click.echo("  audit log witnessed: no (not enrolled at an archive)")
    elif seen["last"] is None:
        click.echo("  audit log witnessed: not yet (the archive witnesses a checkpoint at each sync pass)")
    else:
        click.echo(f"  audit log witnessed by the archive: {witness.age_text(seen['age_hours'])}, "
                   f"entries 1..{seen['last']['count']}")
    rest = info["at_rest"]
    tpm = f"TPM {rest['tpm']}" if rest["tpm"] else "no TPM"
    if rest["encrypted"]:
        click.echo(f"  data at rest: encrypted ({rest['kind']} on {rest['crypt_device']}), {tpm}")
    else:
        click.echo(f"  data at rest: NOT encrypted ({rest['detail']}), {tpm}")
        click.echo(f"    {platform.NOT_ENCRYPTED_NL}")
    if info["signing_key_unavailable"]:
        click.echo(f"  audit signing key: sealed to the TPM2 but NOT unsealed ({info['signing_key_unavailable']}): "
                   "audit entries wait unsigned, cameras are not offloaded; restore from a backup")
    elif info["signing_key_sealed"]:
        click.echo("  audit signing key: sealed to the TPM2 (no plaintext copy on the disk)")
    else:
        click.echo("  audit signing key: NOT sealed to a TPM2 (a plaintext file on the data partition)")


COMMANDS = [status]
