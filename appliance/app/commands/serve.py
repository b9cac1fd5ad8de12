"""kluis serve: run the box (discovery, offload, retention, web UI, sync) until SIGTERM."""

from __future__ import annotations

from pathlib import Path

import click

from appliance.errors import KluisError
from .common import data_option


def parse_listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:  # 0: any free port
        raise KluisError(f"--listen wants HOST:PORT, for example 0.0.0.0:8080 (got {text!r})")
    return host.strip("[]") or "0.0.0.0", int(port)


@click.command()
@data_option
@click.option("--listen", help="Where the web UI listens, HOST:PORT (default 127.0.0.1:8080).")
@click.option("--verbose", "-v", is_flag=True, help="Debug logging.")
def serve(data_dir: Path, listen: str | None, verbose: bool) -> None:
    """Run the box: find and offload cameras, enforce retention, serve the web UI. Stops on SIGTERM.

    On a directory that is not initialised yet, the web UI serves only the first-boot wizard
    (https://HOST:PORT/setup) until the box is made; then the box starts as usual."""
    import logging

    from ..service import serve_data_dir, setup_logging

    address = parse_listen(listen) if listen else None
    setup_logging(logging.DEBUG if verbose else logging.INFO)
    serve_data_dir(data_dir, address)  # an uninitialised DIR: the first-boot wizard first


COMMANDS = [serve]
