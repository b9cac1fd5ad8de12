"""kluis camera-sim: run a simulated bodycam in its dock, and make it record (simulators/dock/)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from appliance.errors import KluisError
from simulators.dock import camera as sim
from simulators.dock import state as camera_state

state_option = click.option("--state", "state_dir", required=True, type=click.Path(path_type=Path),
                            help="The camera's state directory (keys, pairing, recordings).")


@click.group(invoke_without_command=True)
@click.option("--serial", help="The camera's serial, e.g. CAM001 (fixed at the first start).")
@click.option("--state", "state_dir", type=click.Path(path_type=Path),
              help="The camera's state directory (keys, pairing, recordings); survives restarts.")
@click.option("--port", type=int, default=0, show_default=True, help="HTTP port (0: any free port).")
@click.option("--bind", default="0.0.0.0", show_default=True, help="Address the HTTP server listens on.")
@click.option("--interface", "interfaces", multiple=True,
              help="Advertise on this network interface (repeatable). Default: every interface with IPv4.")
@click.option("--address", "addresses", multiple=True,
              help="Advertise on this IPv4 address (repeatable), e.g. 127.0.0.1.")
@click.option("--clock-drift", type=float, default=0.0, show_default=True,
              help="Seconds the camera clock runs ahead (negative: behind) of the real time.")
@click.option("--record-every", type=float, help="Also record an incident every this many seconds.")
@click.option("--record-seconds", type=float, default=10, show_default=True,
              help="Length of the scheduled incidents (plus pre- and post-record).")
@click.option("--model", default=camera_state.MODEL, show_default=True, help="Model name (first start only).")
@click.option("--fw", default=camera_state.FIRMWARE, show_default=True, help="Firmware version (first start only).")
@click.option("--cut-after", type=int, help="Fault: cut the connection after N bytes of a recording.")
@click.option("--cut-count", type=int, help="Fault: ... only this many times (default: every time).")
@click.option("--rate", type=int, help="Fault: serve recordings at this many bytes per second.")
@click.option("--corrupt", is_flag=True, help="Fault: flip a byte in every recording served.")
@click.option("--wrong-manifest-key", is_flag=True, help="Fault: sign manifests with a wrong key.")
@click.option("--bad-txt", type=click.Choice(["oversized", "malformed"]), help="Fault: advertise a bad TXT.")
@click.option("--impostor-of", metavar="KEY",
              help="Fault: an impostor of the paired camera with this public key (hex, from its info): "
                   "advertise its serial and key fingerprint while holding another key.")
@click.option("--impostor-info", is_flag=True, help="Fault: ... and name that key in the info too.")
@click.option("--die-with-parent", "parent", type=int, hidden=True,
              help="Stop when the process with this pid ends (kluis demo's simulators).")
@click.pass_context
def camera_sim(ctx: click.Context, serial, state_dir, port, bind, interfaces, addresses, clock_drift,
               record_every, record_seconds, model, fw, cut_after, cut_count, rate, corrupt,
               wrong_manifest_key, bad_txt, impostor_of, impostor_info, parent) -> None:
    """Run a simulated camera: advertises _bodycam._tcp.local. over mDNS and speaks the dock protocol
    (docs/dock-protocol.md) until SIGTERM or Ctrl-C. Prints `pairing code: NNNNNNNN` while unpaired."""
    if ctx.invoked_subcommand is not None:
        return
    if state_dir is None:
        raise click.UsageError("--state DIR is required")
    if record_every is not None and record_every <= 0:
        raise click.UsageError("--record-every must be positive")
    if parent is not None:
        from .demo_lifetime import die_with_parent

        die_with_parent(parent)
    lock = sim.lock_state(state_dir)
    try:
        state = camera_state.CameraState(state_dir, serial, model, fw, clock=sim.drifting_clock(clock_drift))
        sim.setup_logging(state.serial)
        faults = sim.Faults(cut_after=cut_after, cut_count=cut_count, rate=rate, corrupt=corrupt,
                            wrong_manifest_key=wrong_manifest_key, bad_txt=bad_txt)
        try:
            faults.update({"impostor_of": impostor_of, "impostor_info": impostor_info})
        except KluisError as exc:
            raise click.BadParameter(str(exc), param_hint="--impostor-of") from None
        asyncio.run(sim.run(state, port=port, bind=bind,
                            addresses=sim.choose_addresses(list(interfaces), list(addresses)), faults=faults,
                            record_every=record_every, record_seconds=record_seconds))
    except OSError as exc:
        raise KluisError(f"camera simulator: {exc}") from None
    finally:
        lock.close()


@camera_sim.command("record")
@state_option
@click.option("--seconds", type=click.FloatRange(0, 3600, min_open=True), default=5, show_default=True,
              help="Length of the incident (the configured pre- and post-record come on top).")
@click.option("--filler-mb", type=click.FloatRange(0), default=0,
              help="Pad the MP4 with a `free` box of this many MiB (for benchmarks).")
@click.option("--wait", type=float, default=30, show_default=True,
              help="Wait this many seconds for the running simulator to make it (0: do not wait).")
def record(state_dir: Path, seconds: float, filler_mb: float, wait: float) -> None:
    """Make a recording now: the running simulator on DIR picks the request up and prints its id."""
    recording_id = sim.request_recording(state_dir, seconds, filler_mb, wait or None)
    click.echo(recording_id if recording_id else "requested")


COMMANDS = [camera_sim]
