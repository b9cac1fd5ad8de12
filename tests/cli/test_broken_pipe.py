"""`kluis cat ... | head`: the reader stops early, and kluis ends as a Unix tool does (as `cat` does)."""

from __future__ import annotations

import os
import shlex
import subprocess

from tests.conftest import KLUIS, PASSWORD


def test_cat_into_head_ends_quietly_with_the_sigpipe_status(box_dir, kluis, privacy_officer, tmp_path):
    data = box_dir[0]
    clip = tmp_path / "clip.bin"
    clip.write_bytes(os.urandom(3 * 1024 * 1024))  # far more than a pipe holds: head leaves mid-stream
    keeper = tmp_path / "keeper.txt"
    keeper.write_text(PASSWORD + "\n")
    recording = kluis("import", "--data", data, clip, "--camera", "CAM001", "--officer", "J. Jansen",
                      "--start", "2026-11-20T14:05:00+01:00", "--end", "2026-11-20T14:07:00+01:00",
                      "--password-file", keeper).stdout.decode().strip()
    cat = shlex.join([*KLUIS, "cat", "--data", str(data), recording, "--purpose", "complaint", "--case", "KL-1",
                      *map(str, privacy_officer)])
    # bash's PIPESTATUS: the exit status of kluis itself, not of head
    script = f"{cat} 2>{tmp_path / 'err'} | head -c 100 >{tmp_path / 'out'}; echo ${{PIPESTATUS[0]}}"
    status = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120, check=True)
    assert (tmp_path / "out").read_bytes() == clip.read_bytes()[:100]
    assert (tmp_path / "err").read_text() == ""  # no "Broken pipe", no "Exception ignored"
    assert status.stdout.strip() == "141"  # 128 + SIGPIPE, what `cat` reports in the same place


def test_cat_reports_141_like_coreutils_cat(tmp_path):
    """The status chosen above is the one the shell reports for cat itself."""
    big = tmp_path / "big"
    big.write_bytes(b"x" * 4 * 1024 * 1024)
    script = f"cat {big} | head -c 100 >/dev/null; echo ${{PIPESTATUS[0]}}"
    assert subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True).stdout.strip() == "141"
