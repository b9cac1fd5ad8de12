"""kluis demo: an all-in-one demonstration on a temporary data directory, no arguments needed."""

from __future__ import annotations

import secrets
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import click

from .. import recordings
from ..box import Box, init_box
from ..dock.footage import make_mp4


@click.command()
@click.option("--data", "data_dir", type=click.Path(path_type=Path),
              help="Use this (new) data directory instead of a temporary one.")
def demo(data_dir: Path | None) -> None:
    """Create a box, import sample footage, and show it stored, encrypted and verified."""
    workdir = Path(tempfile.mkdtemp(prefix="kluis-demo-"))
    data_dir = data_dir or workdir / "data"
    password = secrets.token_urlsafe(12)
    box, recovery_key = init_box(data_dir, "admin", password, kdf_profile="interactive")
    click.echo(f"Box created in {data_dir}")
    click.echo(f"  keeper: admin / {password}")
    click.echo(f"  recovery key: {recovery_key}")
    start = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=2)
    with box:
        for n, officer in enumerate(["J. Jansen", "A. de Vries"], start=1):
            clip = make_mp4(workdir / f"incident{n}.mp4", 8, start + timedelta(minutes=17 * n), f"CAM00{n}")
            result = recordings.import_file(box, clip, camera=f"CAM00{n}", officer=officer,
                                            start=start + timedelta(minutes=17 * n), pre_record_s=30,
                                            post_record_s=30)
            clip.unlink()  # the box holds it now, encrypted
            click.echo(f"Imported {clip.name} from CAM00{n} as recording {result.recording_id}")
        for row in box.catalog.list_recordings():
            click.echo(f"  {row['id']}  {row['camera_serial']}  {row['officer']:<12} {row['start_time']}  "
                       f"{row['size']} bytes, sha256 {row['sha256'][:16]}...")
        identity = box.unlock("admin", password)
        problems = recordings.verify(box, identity)
        click.echo("Verify: " + ("every chunk authentic" if not problems else f"{len(problems)} problem(s)"))
    click.echo(f"Try: kluis list --data {data_dir}")
    click.echo(f"     kluis cat --data {data_dir} ID --password-file <(echo {password}) > clip.mp4")

COMMANDS = [demo]
