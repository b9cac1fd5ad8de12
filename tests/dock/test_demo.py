"""`kluis demo` runs to the end of its offload: three cameras paired and emptied, an Axis system's recording
delivered, every chunk verified."""

from __future__ import annotations

import re

from dock_helpers import run_kluis


def test_demo_offloads_three_cameras():
    result = run_kluis("demo", "--exit-after-offload", timeout=240)
    out = result.stdout.decode()
    assert len(re.findall(r"^  paired CAM00[123] with code \d{8}", out, re.M)) == 3, out
    assert "Offloaded 6 recordings" in out and "the cameras are empty" in out, out
    assert "Verify: every chunk authentic" in out, out
    assert "the box is enrolled" in out and "holds" in out, out
    assert re.search(r"the archive received [0-9a-f]{16} at \S+: signed receipt for sha256 [0-9a-f]{16}", out), out
    assert re.search(r"CAM002 .*offset -42\.\d s", out) and re.search(r"CAM003 +P\. Bakker", out), out
    # the Axis system next to the dock cameras: one recording of two clips, the bookmark's category
    assert re.search(r"delivered \S+_B8A44F00D3M0_\d{8}T\d{6}Z: 2 clips", out), out
    assert len(re.findall(r"^  [0-9a-f]{16}  B8A44F00D3M0  M\. Visser \(1002\) .* category incident$", out, re.M)) == 2, out
