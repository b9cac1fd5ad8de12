"""The handover package (docs/handover-package.md): build it from the vault, and verify one.

A ZIP holding the MP4 files, manifest.json, manifest.sig (Ed25519 by the box's signing key over the label
`kluis/v1/handover-manifest`, a newline and the exact bytes of manifest.json), the transfer form
(overdrachtsformulier.pdf), an excerpt of the audit log for these recordings (logboek-uittreksel.csv) and
SHA256SUMS (`sha256sum -c SHA256SUMS` in the unpacked
folder). The ZIP is written age-encrypted (appliance.agecrypt) to the receiver's key or a passphrase; an
unencrypted package only when both people chose it (appliance.handover).

Building streams: a thread writes the ZIP into a pipe while the age encryptor reads the other end and
writes the output; footage is decrypted from the vault chunk by chunk into the ZIP, its ciphertext hash
checked against the catalog in the same pass. Plaintext footage is never written to disk; a cut clip is
held in memory (it is short). Footage comes only from the gate (appliance.footage). Verifying a package
is appliance.package_verify.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import threading
import zipfile
from pathlib import Path
from typing import BinaryIO

from . import agecrypt, audit, clip, durable, signing, space
from .users import person_entry
from .box import Box
from .errors import KluisError
from .purposes import label as purpose_label
from .transfer_form import render_transfer_form

FORMAT = "kluis-handover/1"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
SUMS = "SHA256SUMS"
FORM = "overdrachtsformulier.pdf"
EXCERPT = "logboek-uittreksel.csv"
READ_BLOCK = 1024 * 1024


class _HashingWriter:
    """Passes writes on to `dst`, hashing and counting them (the package's own SHA-256)."""

    def __init__(self, dst: BinaryIO):
        self.dst, self.digest, self.size = dst, hashlib.sha256(), 0

    def write(self, data) -> int:
        self.dst.write(data)
        self.digest.update(data)
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        self.dst.flush()


def _safe(text: str, limit: int = 24) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "", text or "")[:limit] or "x"


def member_name(position: int, recording: dict, clipped: bool) -> str:
    stamp = (recording["start_time"] or "")[:19].replace("-", "").replace(":", "")
    return f"{position:02d}-{_safe(recording['camera_serial'])}-{stamp}-{recording['id']}" + \
        ("-fragment" if clipped else "") + ".mp4"


def _zip_info(name: str, date_time: tuple, size: int = 0) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=date_time)
    info.compress_type = zipfile.ZIP_STORED  # MP4 and PDF do not compress; stored keeps it simple to check
    info.external_attr = 0o644 << 16
    info.file_size = size  # lets zipfile choose ZIP64 for members over 2 GiB
    return info


def issuer(box: Box) -> dict:
    """The manifest's "box" table: the office, the issuing municipality ([box] municipality, else the office
    name), the time zone and the signing key."""
    config = box.settings.box
    return {"name": config.name, "municipality": config.municipality or config.name, "timezone": config.timezone,
            "signing_key": box.catalog.get_meta("signing_public_key")}


def _write_entries(box: Box, handover: dict, readers: dict, zf: zipfile.ZipFile) -> dict:
    """Write every member into `zf`; returns the manifest and the members' hashes."""
    date_time = box.clock().timetuple()[:6]
    sums: dict[str, str] = {}
    files = []

    def add(name: str, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        with zf.open(_zip_info(name, date_time, len(data)), "w") as member:
            member.write(data)
        sums[name] = digest
        return digest

    for position, item in enumerate(handover["items"], start=1):
        source = readers[item["recording_id"]]
        recording = source.recording
        clipped = item["clip_from_s"] is not None
        name = member_name(position, recording, clipped)
        cut = None
        if clipped:
            chain = source.copy_verified(None)
            buffer = io.BytesIO()  # a clip is short: held in memory, never on disk
            cut = clip.cut_footage(source, item["clip_from_s"], item["clip_to_s"], buffer)
            data = buffer.getvalue()
            digest, size = add(name, data), len(data)
            chain["exported"] = "clip: remuxed from the keyframe at or before the start, not re-encoded"
        else:
            with zf.open(_zip_info(name, date_time, recording["size"]), "w") as member:
                chain = source.copy_verified(member)
            digest, size = chain["plaintext_sha256"], chain["plaintext_size"]
            sums[name] = digest
            chain["exported"] = "whole recording: the decrypted plaintext, byte for byte"
        chain["exported_sha256"] = digest
        files.append({
            "name": name, "recording_id": recording["id"], "camera": recording["camera_serial"],
            "officer": recording["officer"], "officer_person": person_entry(box, recording["officer"]) or None,
            "team": recording.get("team"),
            # a redacted version names the recording it was made from
            "derived_from": recording.get("derived_from"),
            "camera_start": recording.get("camera_start_time"), "camera_end": recording.get("camera_end_time"),
            "corrected_start": recording["start_time"], "corrected_end": recording["end_time"],
            "clock_offset_s": recording.get("clock_offset_s"),
            "pre_record_s": recording.get("pre_record_s"), "post_record_s": recording.get("post_record_s"),
            "clip": None if cut is None else {
                "from_s": cut["from_s"], "to_s": cut["to_s"], "duration_s": cut.get("duration_s"),
                "requested_from_s": cut.get("requested_from_s", item["clip_from_s"]),
                "requested_to_s": cut.get("requested_to_s", item["clip_to_s"])},
            "size": size, "sha256": digest, "chain": chain,
        })

    # The audit log for these recordings, the approval included (it was committed before this started).
    seen, rows = set(), []
    for item in handover["items"]:
        for row in audit.entries(box.catalog, recording_id=item["recording_id"]):
            if row["seq"] not in seen:
                seen.add(row["seq"])
                rows.append(row)
    rows.sort(key=lambda r: r["seq"])
    text = io.StringIO(newline="")
    audit.write_csv(rows, text, box.settings.box.timezone)
    count, head_hash = audit.head(box.catalog)
    excerpt_sha = add(EXCERPT, text.getvalue().encode("utf-8"))

    manifest = {
        "format": FORMAT,
        "handover_id": handover["id"],
        "box": issuer(box),
        "prepared_by": handover["prepared_by"], "prepared_at": handover["prepared_at"],
        "prepared_by_person": person_entry(box, handover["prepared_by"]),
        "approved_by": handover["approved_by"], "approved_at": handover["approved_at"],
        "approved_by_person": person_entry(box, handover["approved_by"]),
        "single_approval": bool(handover["single_approval"]),
        "receiver": handover["receiver"], "basis": handover["basis"], "case_ref": handover["case_ref"],
        "purpose": handover["purpose"], "purpose_label": purpose_label(handover["purpose"], "nl"),
        "protection": handover["protection"],
        "age_recipient": handover.get("age_recipient"),
        "files": files,
        "audit_excerpt": {"name": EXCERPT, "sha256": excerpt_sha, "entries": len(rows),
                          "log_count": count, "log_head": head_hash},
    }
    manifest["transfer_form"] = {"name": FORM, "sha256": add(FORM, render_transfer_form(manifest))}
    manifest_bytes = json.dumps(manifest, indent=2, ensure_ascii=False).encode("utf-8") + b"\n"
    add(MANIFEST, manifest_bytes)
    add(SIGNATURE, signing.sign_raw(box.signing_key(), signing.HANDOVER_MANIFEST, manifest_bytes))
    add(SUMS, "".join(f"{digest}  {name}\n" for name, digest in sums.items()).encode("utf-8"))
    return {"manifest": manifest, "manifest_sha256": sums[MANIFEST], "files": files}


def _zip_into(box: Box, handover: dict, readers: dict, dst: BinaryIO | _HashingWriter) -> dict:
    # typeshed asks close() of the file, which ZipFile never calls on a file it was handed
    with zipfile.ZipFile(dst, "w", allowZip64=True) as zf:  # type: ignore[call-overload]
        return _write_entries(box, handover, readers, zf)


def build(box: Box, handover: dict, readers: dict, out: str | os.PathLike | BinaryIO) -> dict:
    """Write the package for an approved handover. `readers`: the gate's Footage of each recording, by id
    (appliance.footage.open_for_handover, which put the approval on record). Returns {'package_sha256', 'package_size', 'manifest_sha256', 'files',
    'manifest', 'passphrase'}."""
    protection = handover["protection"]
    passphrase = agecrypt.generate_passphrase() if protection == "passphrase" else None
    final: Path | None = None
    partial: Path | None = None
    f: BinaryIO
    if isinstance(out, (str, os.PathLike)):
        final = Path(out)
        if final.exists():
            raise KluisError(f"{final} exists already; choose another --out")
        partial = final.with_name(final.name + ".part")
    room = None
    if final is not None and space.same_disk(box, final.parent):  # a package kept on the box (a web approval)
        room = space.reserve(box, sum(r.size for r in readers.values()) + space.MiB, f"handover package {final.name}")
    if partial is not None:
        f = open(partial, "xb")
    else:
        assert not isinstance(out, (str, os.PathLike))
        f = out
    try:
        sink = _HashingWriter(f)
        if protection == "none":
            result = _zip_into(box, handover, readers, sink)
        else:
            result = _encrypted(box, handover, readers, sink, protection, handover.get("age_recipient"), passphrase)
        if final is not None:
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        if partial is not None:
            f.close()
            partial.unlink(missing_ok=True)
        raise
    finally:
        if room is not None:
            room.release()
    if final is not None and partial is not None:
        f.close()
        durable.replace(partial, final)
    return {**result, "package_sha256": sink.digest.hexdigest(), "package_size": sink.size, "passphrase": passphrase}


def pipe() -> tuple[int, int]:
    """A pipe with a 1 MiB buffer where Linux allows it (the default 64 KiB makes the two threads take
    turns sixteen times as often, each turn a context switch on a busy machine)."""
    read_fd, write_fd = os.pipe()
    try:
        import fcntl

        fcntl.fcntl(write_fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), READ_BLOCK)
    except (ImportError, OSError):
        pass  # a smaller pipe is slower, not wrong
    return read_fd, write_fd


def _encrypted(box: Box, handover: dict, readers: dict, sink: _HashingWriter, protection: str,
               recipient: str | None, passphrase: str | None) -> dict:
    """ZIP writer thread -> pipe -> age encryptor -> sink: nothing but ciphertext leaves the process."""
    secret = recipient if protection == "age-recipient" else passphrase
    if secret is None:
        needed = "recipient" if protection == "age-recipient" else "passphrase"
        raise KluisError(f"a package protected by {protection!r} needs its {needed}")
    read_fd, write_fd = pipe()
    reader = os.fdopen(read_fd, "rb", buffering=0)
    outcome: dict = {}

    def produce() -> None:
        try:
            with os.fdopen(write_fd, "wb", buffering=READ_BLOCK) as pipe:
                outcome["result"] = _zip_into(box, handover, readers, pipe)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer's thread
            outcome["error"] = exc

    # The catalog connection is shared with the producer thread (check_same_thread=False); the main
    # thread only encrypts meanwhile and touches no catalog.
    thread = threading.Thread(target=produce, name="handover-zip", daemon=True)
    thread.start()
    try:
        if protection == "age-recipient":
            agecrypt.encrypt_to_recipient(reader, sink, secret)
        else:
            agecrypt.encrypt_with_passphrase(reader, sink, secret)
    finally:
        reader.close()  # a failed encryptor: the producer's next write fails instead of blocking
        thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]
