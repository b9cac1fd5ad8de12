"""kluis export approve and verify (handover packages) vs. age: MB/s and peak memory, by protection.

Targets: writing a package decrypts the recording from the vault, hashes its ciphertext and
plaintext, zips it, age-encrypts it and hashes the result, in one streamed pass: at least 0.1 of the
speed of `age -r` encrypting the same plaintext and syncing its output (approve fsyncs the package too;
three SHA-256 passes in hashlib, about 600 MB/s each on a CPU without SHA extensions, bound it),
and peak memory that does not grow with the recording (< 150 MB with an age key, most of it the
Argon2id login; a passphrase adds scrypt's fixed 256 MiB work area, so < 450 MB). `kluis export verify`
of the encrypted package streams too (decrypt, read the ZIP, hash every member): ratio >= 0.15 against
`age -d -o /dev/null`, peak < 150 MB.

Each run is a fresh process (the real CLI, Python's start-up included), on one recording of --size
random bytes; the tools take turns within each round. Preparing each handover (outside the timing) is
done in this process; the packages are removed after each round.
"""

from __future__ import annotations

import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import benchlib
from benchlib import MB, fmt_size, progress, ratio, result, run_child

NAME = "handover"
PASSWORD = "bench horse battery staple"


def _setup(work: Path, size: int) -> tuple[Path, str, Path, str, Path]:
    """A box with two privacy officers and one recording; an age key pair. Returns (data dir, recording
    id, identity file, public key, plaintext input)."""
    from appliance import recordings, roles, users
    from appliance.box import init_box

    data = work / "data"
    box, _ = init_box(data, "admin", PASSWORD, kdf_profile="interactive")
    identity = box.unlock("admin", PASSWORD)
    for name in ("fg", "fg2"):
        users.add_user(box, "admin", name, roles.PRIVACY_OFFICER, PASSWORD, identity=identity)
    src = benchlib.make_input(work / "input.bin", size)
    start = datetime(2026, 1, 1, 9, tzinfo=timezone.utc)
    rid = recordings.import_file(box, src, camera="BENCH-1", officer="bench", start=start,
                                 end=start + timedelta(minutes=20)).recording_id
    box.close()
    key = work / "receiver.key"
    subprocess.run(["age-keygen", "-o", str(key)], check=True, capture_output=True)
    public = next(line.split(": ", 1)[1].strip() for line in key.read_text().splitlines()
                  if line.startswith("# public key: "))
    return data, rid, key, public, src


def _prepare(data: Path, rid: str, protection: str, public: str) -> str:
    from appliance import handover
    from appliance.box import Box

    with Box(data) as box:
        return handover.prepare(box, "fg", [rid], "Politie (bench)", "vordering", "BENCH-1", "requisition",
                                protection, age_recipient=public if protection == "age-recipient" else None)


def run(args) -> list[dict]:
    work, size = Path(args.work), args.size
    kluis = benchlib.kluis_command()
    progress(f"handover: a box with one {fmt_size(size)} recording")
    data, rid, key, public, src = _setup(work, size)
    pw = work / "pw.txt"
    pw.write_text(PASSWORD + "\n")
    samples: dict[str, list[float]] = {name: [] for name in ("age", "pass", "age -r", "verify", "age -d")}
    rss: dict[str, list[float]] = {name: [] for name in samples}
    for round_no in range(args.repeats):
        progress(f"handover: round {round_no + 1}/{args.repeats}")
        benchlib.warm(src)
        for name, protection in (("age", "age-recipient"), ("pass", "passphrase")):
            hid = _prepare(data, rid, protection, public)
            out = work / f"{name}.age"
            child = run_child([*kluis, "export", "approve", "--data", data, hid, "--out", out, "--user", "fg2",
                               "--password-file", pw])
            samples[name].append(size / child.seconds / MB)
            rss[name].append(child.peak_rss_mb)
            if name == "age":
                checked = run_child([*kluis, "export", "verify", out, "--identity", key])
                samples["verify"].append(size / checked.seconds / MB)
                rss["verify"].append(checked.peak_rss_mb)
                base = run_child(["age", "-d", "-i", key, "-o", "/dev/null", out])
                samples["age -d"].append(size / base.seconds / MB)
                rss["age -d"].append(base.peak_rss_mb)
            benchlib.remove(out)
        # age too writes its output durably, as approve does (fsync before it reports the package written)
        base = run_child(["sh", "-c", 'age -r "$1" -o "$2" "$3" && sync "$2"', "age", public, work / "plain.age", src])
        samples["age -r"].append(size / base.seconds / MB)
        rss["age -r"].append(base.peak_rss_mb)
        benchlib.remove(work / "plain.age")
    label = fmt_size(size)
    approve_age = result(NAME, f"approve, age key ({label})", samples["age"], "MB/s")
    approve_pass = result(NAME, f"approve, passphrase ({label})", samples["pass"], "MB/s")
    age_r = result(NAME, f"age -r + sync ({label})", samples["age -r"], "MB/s")
    verify = result(NAME, f"verify, age key ({label})", samples["verify"], "MB/s")
    age_d = result(NAME, f"age -d ({label})", samples["age -d"], "MB/s")
    return [
        approve_age, approve_pass, age_r, verify, age_d,
        ratio(NAME, "approve/age", approve_age, age_r, target=">= 0.1"),
        ratio(NAME, "verify/age -d", verify, age_d, target=">= 0.15"),
        result(NAME, f"approve peak RSS, age key ({label})", rss["age"], "MB", target="< 150"),
        result(NAME, f"approve peak RSS, passphrase ({label})", rss["pass"], "MB", target="< 450",
               note="scrypt's work area (N=2^18, r=8: 256 MiB) is most of it"),
        result(NAME, f"verify peak RSS ({label})", rss["verify"], "MB", target="< 150"),
        result(NAME, f"age -r peak RSS ({label})", rss["age -r"], "MB", note="sh and sync included"),
    ]
