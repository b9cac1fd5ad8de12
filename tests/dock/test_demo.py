"""`kluis demo` runs to the end of its offload: three cameras paired and emptied, an Axis system's recording
delivered, every chunk verified. However the demo ends (SIGHUP of a closed terminal, SIGTERM, SIGKILL), its
camera simulators end too and its temporary directory goes; a second demo next to a running one (or after
a killed one) pairs and offloads its own cameras (issue 19, defect 7)."""

from __future__ import annotations

import re

import os
import signal
import time
from pathlib import Path

from dock_helpers import run_kluis
from tests.processes import Proc, wait_for
from tests.conftest import KLUIS


def test_demo_offloads_three_cameras():
    result = run_kluis("demo", "--exit-after-offload", timeout=240)
    out = result.stdout.decode()
    _offloaded(out)


def _offloaded(out: str) -> None:
    assert len(re.findall(r"^  paired CAM00[123]-[0-9A-F]{4} with code \d{8}", out, re.M)) == 3, out
    assert "Offloaded 6 recordings" in out and "the cameras are empty" in out, out
    assert "Verify: every chunk authentic" in out, out
    assert "the box is enrolled" in out and "holds" in out, out
    assert re.search(r"the archive received [0-9a-f]{16} at \S+: signed receipt for sha256 [0-9a-f]{16}", out), out
    assert re.search(r"CAM002-[0-9A-F]{4} .*offset -42\.\d s", out) and re.search(r"CAM003-[0-9A-F]{4} +P\. Bakker", out), out
    # the Axis system next to the dock cameras: one recording of two clips, the bookmark's category
    assert re.search(r"delivered \S+_B8A44F00D3M0_\d{8}T\d{6}Z: 2 clips", out), out
    assert len(re.findall(r"^  [0-9a-f]{16}  B8A44F00D3M0  M\. Visser \(1002\) .* category incident$", out, re.M)) == 2, out


def _simulators_of(pid: int) -> list[int]:
    """The pids of the camera simulators demo `pid` started (they carry --die-with-parent PID)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                args = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"camera-sim" in args and b"--die-with-parent" in args \
                    and args[args.index(b"--die-with-parent") + 1] == str(pid).encode():
                found.append(int(entry.name))
    return found


def _started_demo() -> tuple[Proc, Path]:
    """A person's `kluis demo` in a real process, once its three cameras are up."""
    demo = Proc([*KLUIS, "demo"], "demo")
    workdir = Path(demo.find(r"Demo files in (\S+) ", timeout=60).group(1))
    demo.find(r"Three cameras are on the LAN", timeout=90)
    assert len(_simulators_of(demo.proc.pid)) == 3, demo.output()
    return demo, workdir


def _gone(pids: list[int]) -> bool:
    return not any(Path(f"/proc/{pid}").exists() and "zombie" not in _state(pid) for pid in pids)


def _state(pid: int) -> str:
    try:
        return (Path(f"/proc/{pid}/status").read_text().split("State:", 1)[1].split("\n", 1)[0]).lower()
    except (OSError, IndexError):
        return "gone"


def test_a_second_demo_next_to_a_running_one_then_sighup_ends_everything():
    first, workdir = _started_demo()
    sims = _simulators_of(first.proc.pid)
    try:
        # A second demo on the same LAN (this machine) while the first one's cameras advertise.
        _offloaded(run_kluis("demo", "--exit-after-offload", timeout=240).stdout.decode())
        assert first.proc.poll() is None and workdir.exists()
        started = time.monotonic()
        first.proc.send_signal(signal.SIGHUP)  # the terminal closed
        first.proc.wait(30)  # a hang guard: the time is printed
        wait_for(lambda: _gone(sims), timeout=15, what="the simulators to end")
        print(f"demo and its simulators ended {time.monotonic() - started:.2f} s after SIGHUP")
        assert not workdir.exists()
    finally:
        first.stop(signal.SIGKILL)
        for pid in _simulators_of(first.proc.pid):
            os.kill(pid, signal.SIGKILL)


def test_a_killed_demo_leaves_no_simulator_and_the_next_one_cleans_up_and_offloads():
    first, workdir = _started_demo()
    sims = _simulators_of(first.proc.pid)
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(10)
    wait_for(lambda: _gone(sims), timeout=15, what="the simulators of a killed demo to end")
    assert workdir.exists()  # nobody was left to remove it...
    _offloaded(run_kluis("demo", "--exit-after-offload", timeout=240).stdout.decode())
    assert not workdir.exists()  # ...the next demo did
