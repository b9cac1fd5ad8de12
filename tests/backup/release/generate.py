"""Make the data directories of a released Kluis that the migration tests open: run this with that
release's code, not with the code under test; any venv with Kluis's dependencies serves, the release's
checkout goes first on the path:

    git worktree add /tmp/rel f82f3c0
    cd /tmp/rel && PYTHONPATH=/tmp/rel $REPO/.venv/bin/python $REPO/tests/backup/release/generate.py \
        $REPO/tests/backup/release/f82f3c0.tar.xz

The box is made through the release's own CLI: init, users, imports, holds, a request, a handover, an
Axis account, a USB camera's files and a sync pass to an archive, so every feature's tables hold rows.
The archive's data directory goes into the same tarball (box/ and archive/)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tarfile
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

PASSWORD = "correct horse battery staple"
ARCHIVE_PASSWORD = "archive password for tests"


def kluis(*args, data: Path | None = None) -> str:
    command = [sys.executable, "-m", "appliance", *map(str, args)]
    if data is not None:
        command += ["--data", str(data)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise SystemExit(f"kluis {' '.join(map(str, args))} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def fill(box: Path, work: Path, pw: Path) -> None:
    from appliance.box import Box
    from appliance.dock.footage import make_mp4
    from appliance.usb import ingest
    from appliance.usb.volume import Volume

    auth = ["--user", "admin", "--password-file", pw]
    kluis("users", "add", "fg", "--role", "privacy_officer", "--new-password-file", pw, *auth, data=box)
    kluis("users", "add", "tl", "--role", "team_leader", "--team", "Noord", "--new-password-file", pw, *auth,
          data=box)
    fg = ["--user", "fg", "--password-file", pw]
    start = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)
    ids = []
    for n in range(3):
        clip = work / f"clip{n}.mp4"
        at = start + timedelta(hours=n)
        make_mp4(clip, 1.0, at, label=f"clip {n}", width=64, height=48, fps=5)
        ids.append(kluis("import", clip, "--camera", "CAM00" + str(n % 2 + 1), "--officer", "J. Jansen",
                         "--start", at.strftime("%Y-%m-%dT%H:%M:%S"), *auth, data=box).split()[-1])
    kluis("hold", "add", ids[0], "--purpose", "complaint", "--case", "K-2026-1", *fg, data=box)
    kluis("requests", "add", "--requester", "A. de Vries", "--kind", "inzage", "--received", "2026-11-03",
          "--time", "2026-11-02T10:00:00", "--window", "30", *fg, data=box)
    handover = kluis("export", "prepare", ids[2], "--receiver", "Politie Noord", "--basis",
                     "vrijwillige verstrekking", "--case", "PV-1", "--purpose", "police_report", "--unencrypted",
                     *fg, data=box).split()[-1]
    kluis("axis", "connection-file", "--site", "Stadhuis", "--url", "https://kluis.local:8444/auth/v1.0",
          "--out", work / "axis.conn", *auth, data=box)

    # A USB camera: a DCIM folder (the generic profile), read from a plain directory.
    volume = work / "usbcam"
    (volume / "DCIM" / "100MEDIA").mkdir(parents=True)
    make_mp4(volume / "DCIM" / "100MEDIA" / "VID0001.MP4", 1.0, start - timedelta(days=40), label="usb",
             width=64, height=48, fps=5)
    (volume / "DCIM" / "100MEDIA" / "NOTES.TXT").write_text("not video")
    for _ in range(2):  # found (the keeper registers it), then read
        with Box(box) as opened:
            report = ingest.ingest(opened, Volume(root=volume, label="USBCAM01"), actor="system")
        if not report.as_dict().get("files"):
            kluis("cameras", "pair", "--usb", "USBCAM01", "--officer", "P. de Boer", *auth, data=box)
    print("usb:", report.as_dict(), file=sys.stderr)

    print("handover", handover, "recordings", ids, file=sys.stderr)

def main(out: Path) -> None:
    from appliance.box import Box
    from sync import client
    from sync.archive.store import Archive, init_archive
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "sync"))
    from sync_helpers import ArchiveProcess, free_port

    work = Path(tempfile.mkdtemp())
    box, archive = work / "box", work / "archive"
    pw = work / "pw.txt"
    pw.write_text(PASSWORD + "\n")
    kluis("init", "--admin", "admin", "--password-file", pw, "--kdf-profile", "interactive", data=box)
    # Enrolled at an archive first, so what is sealed next is sealed to it too; a sync pass at the end.
    init_archive(archive, ARCHIVE_PASSWORD, kdf_profile="interactive")[0].close()
    proc = ArchiveProcess(archive, free_port(), work / "archive.log")
    proc.start()
    try:
        with Archive(archive) as opened:
            token = opened.new_token()
        with Box(box) as opened:
            asyncio.run(client.enroll(opened, proc.url, token))
        fill(box, work, pw)
        kluis("sync", "run", data=box)
    finally:
        proc.stop()

    with tarfile.open(out, "w:xz") as tar:
        for name, path in (("box", box), ("archive", archive)):
            tar.add(path, arcname=name, filter=lambda info: None if info.name.endswith(("-wal", "-shm")) else info)


if __name__ == "__main__":
    os.environ.setdefault("KLUIS_TZ", "Europe/Amsterdam")
    main(Path(sys.argv[1]).resolve())
