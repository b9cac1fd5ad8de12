"""Verifying a handover package (docs/handover-package.md), as the receiver does with `kluis export verify`.

The package is read as it lies: an unpacked folder, a ZIP, or an age-encrypted ZIP, which is decrypted
as a stream and read front to back (nothing written to disk). Every member's hash is checked against
SHA256SUMS and the manifest, the manifest's signature against the box's key, and the chain of each
recording (ciphertext hash, plaintext hash) as the manifest states it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import struct
import threading
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Sequence

from . import agecrypt, signing
from .errors import KluisError
from .package import FORMAT, MANIFEST, READ_BLOCK, SIGNATURE, SUMS, pipe

@dataclass
class Verification:
    ok_lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    manifest: dict | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


class _Source:
    """The package's members, from a directory or a ZIP."""

    def __init__(self, root: Path | None = None, zf: zipfile.ZipFile | None = None):
        self.root, self.zf = root, zf

    @property
    def _dir(self) -> Path:
        if self.root is None:
            raise ValueError("a package source is a directory or a ZIP")
        return self.root

    def names(self) -> list[str]:
        if self.zf is not None:
            return [n for n in self.zf.namelist() if not n.endswith("/")]
        return sorted(str(p.relative_to(self._dir)) for p in self._dir.rglob("*") if p.is_file())

    def has(self, name: str) -> bool:
        return name in self.names()

    def read(self, name: str) -> bytes:
        if self.zf is not None:
            return self.zf.read(name)
        return (self._dir / name).read_bytes()

    def digest(self, name: str) -> tuple[str, int]:
        digest, size = hashlib.sha256(), 0
        opener = self.zf.open(name) if self.zf is not None else open(self._dir / name, "rb")
        with opener as f:
            while block := f.read(READ_BLOCK):
                digest.update(block)
                size += len(block)
        return digest.hexdigest(), size


class _StreamedSource:
    """The members of a ZIP read once, front to back, from a stream: their hashes and sizes, and the
    contents of the few small members verify reads (manifest, signature, SHA256SUMS)."""

    KEEP = {MANIFEST, SIGNATURE, SUMS}
    KEEP_LIMIT = 64 * 1024 * 1024

    def __init__(self):
        self.digests: dict[str, tuple[str, int]] = {}
        self.kept: dict[str, bytes] = {}
        self.damaged: list[str] = []

    def names(self) -> list[str]:
        return list(self.digests)

    def read(self, name: str) -> bytes:
        return self.kept[name]

    def digest(self, name: str) -> tuple[str, int]:
        return self.digests[name]


_LOCAL, _CENTRAL, _DESCRIPTOR = b"PK\x03\x04", b"PK\x01\x02", b"PK\x07\x08"
_ENDS = (_CENTRAL, b"PK\x05\x06", b"PK\x06\x06")


class _Pushback:
    """A byte stream with a look-ahead buffer."""

    def __init__(self, src: BinaryIO):
        self.src, self.buf = src, bytearray()

    def fill(self) -> bool:
        chunk = self.src.read(READ_BLOCK)
        if chunk:
            self.buf += chunk
        return bool(chunk)

    def take(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self.fill():
                raise KluisError("the package's ZIP is cut off")
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out


def _scan_zip(stream: BinaryIO, source: _StreamedSource) -> None:
    """Read a ZIP front to back without seeking (its central directory comes last): each member's local
    header, then its data, whose end is given by the header or, for a member written as a stream, found
    at the data descriptor whose CRC-32 and sizes match the bytes before it. Stored members only: that
    is what appliance.package writes."""
    src = _Pushback(stream)
    while True:
        signature = src.take(4)
        if signature in _ENDS:
            return
        if signature != _LOCAL:
            raise KluisError("the package is not a ZIP as Kluis writes it (unexpected bytes between members)")
        (_version, flags, method, _time, _date, crc, csize, usize, name_len,
         extra_len) = struct.unpack("<HHHHHLLLHH", src.take(26))
        name = src.take(name_len).decode("utf-8" if flags & 0x800 else "cp437", "replace")
        extra = src.take(extra_len)
        zip64 = False
        pos = 0
        while pos + 4 <= len(extra):
            tag, length = struct.unpack("<HH", extra[pos:pos + 4])
            if tag == 1:
                zip64 = True
                values = struct.unpack("<" + "Q" * (length // 8), extra[pos + 4:pos + 4 + length - length % 8])
                if usize == 0xFFFFFFFF and values:
                    usize, values = values[0], values[1:]
                if csize == 0xFFFFFFFF and values:
                    csize = values[0]
            pos += 4 + length
        if method != zipfile.ZIP_STORED:
            raise KluisError(f"{name}: compressed in the ZIP; Kluis writes stored members only")
        digest, state = hashlib.sha256(), {"crc": 0, "size": 0}
        keep = bytearray() if name in source.KEEP else None

        def consume(n: int, digest=digest, state=state, keep=keep) -> None:  # bound: defined anew per member
            view = memoryview(src.buf)[:n]
            digest.update(view)
            state["crc"] = zlib.crc32(view, state["crc"])
            state["size"] += n
            if keep is not None and len(keep) < source.KEEP_LIMIT:
                keep.extend(view)
            view.release()
            del src.buf[:n]

        if not flags & 0x08:
            left = csize
            while left:
                if not src.buf and not src.fill():
                    raise KluisError(f"{name}: cut off in the ZIP")
                n = min(left, len(src.buf))
                consume(n)
                left -= n
            expected_crc = crc
        else:
            fmt = "<4sLQQ" if zip64 else "<4sLLL"
            length = struct.calcsize(fmt)
            search = 0
            while True:
                at = src.buf.find(_DESCRIPTOR, search)
                if at < 0:
                    keep_back = min(len(src.buf), len(_DESCRIPTOR) - 1)  # a signature may straddle reads
                    consume(len(src.buf) - keep_back)
                    search = 0
                    if not src.fill():
                        raise KluisError(f"{name}: cut off in the ZIP (no end of the member found)")
                    continue
                if len(src.buf) < at + length:
                    if not src.fill():
                        raise KluisError(f"{name}: cut off in the ZIP")
                    continue
                _sig, d_crc, d_csize, d_usize = struct.unpack(fmt, bytes(src.buf[at:at + length]))
                size = state["size"] + at
                if d_csize == d_usize == size and d_crc == zlib.crc32(memoryview(src.buf)[:at], state["crc"]):
                    consume(at)
                    del src.buf[:length]
                    expected_crc = d_crc
                    break
                search = at + 1  # those bytes were footage that happened to look like a descriptor
        if state["crc"] != expected_crc:
            source.damaged.append(name)
        if name in source.digests:
            raise KluisError(f"{name}: twice in the package")
        source.digests[name] = (digest.hexdigest(), state["size"])
        if keep is not None:
            source.kept[name] = bytes(keep)


def _scan_encrypted(path: Path, identities: list[str], passphrase: str | None) -> _StreamedSource:
    """Decrypt in a thread into a pipe; read the ZIP from the other end. Memory: a few MiB, whatever the
    size; nothing is written to disk. The whole age file is read, so its last chunk is authenticated."""
    read_fd, write_fd = pipe()
    reader = os.fdopen(read_fd, "rb")
    outcome: dict = {}

    def decrypt() -> None:
        try:
            with open(path, "rb") as f, os.fdopen(write_fd, "wb") as pipe:
                agecrypt.decrypt(f, pipe, identities, passphrase)
        except BaseException as exc:  # noqa: BLE001 - handed to the reading thread
            outcome["error"] = exc

    thread = threading.Thread(target=decrypt, name="handover-verify", daemon=True)
    thread.start()
    source = _StreamedSource()
    try:
        try:
            _scan_zip(reader, source)
            while reader.read(READ_BLOCK):  # the central directory: read to the end, age checks the last tag
                pass
        except KluisError as exc:
            outcome.setdefault("parse_error", exc)
    finally:
        reader.close()
        thread.join()
    if "error" in outcome:  # damage or a wrong key explains any parse error too
        error = outcome["error"]
        if isinstance(error, KluisError):
            raise error
        if isinstance(error, BrokenPipeError) and "parse_error" in outcome:
            raise outcome["parse_error"]
        raise KluisError(f"cannot decrypt the package: {error}")
    if "parse_error" in outcome:
        raise outcome["parse_error"]
    return source


def _open_source(path: Path, identities: list[str], passphrase: str | None, report: Verification):
    if path.is_dir():
        report.notes.append(f"checking the unpacked folder {path}")
        return _Source(root=path)
    try:
        with open(path, "rb") as f:
            prefix = f.read(64)
    except OSError as exc:
        raise KluisError(f"cannot read {path}: {exc.strerror}") from None
    if agecrypt.is_age(prefix):
        if not identities and passphrase is None:
            raise KluisError(f"{path} is age-encrypted: give --identity AGE_KEY_FILE or --passphrase-file F")
        source = _scan_encrypted(path, identities, passphrase)
        how = "passphrase" if passphrase is not None else "age identity"
        report.notes.append(f"decrypted {path} as a stream ({how}); nothing written to disk")
        for name in source.damaged:
            report.problems.append(f"{name}: its CRC-32 in the ZIP does not match its bytes")
        return source
    report.notes.append(f"{path} is not encrypted")
    try:
        return _Source(zf=zipfile.ZipFile(path))
    except zipfile.BadZipFile:
        raise KluisError(f"{path} is not a handover package (neither age-encrypted nor a ZIP)") from None


def verify(path: str | os.PathLike, identities: Sequence[str] = (), passphrase: str | None = None,
           box_key: str | None = None) -> Verification:
    """Check a package (age-encrypted file, plain ZIP, or unpacked folder): the signature over
    manifest.json, every file's SHA-256 and size against the manifest, SHA256SUMS, and that nothing is
    missing or extra. `box_key`: the box's signing key (hex) as known from elsewhere; without it the
    signature is checked against the key the manifest names, which proves only self-consistency."""
    report = Verification()
    source = _open_source(Path(path), list(identities), passphrase, report)
    bad = report.problems.append
    good = report.ok_lines.append
    names = set(source.names())
    for required in (MANIFEST, SIGNATURE, SUMS):
        if required not in names:
            bad(f"{required}: missing from the package")
    if MANIFEST not in names:
        return report
    manifest_bytes = source.read(MANIFEST)
    try:
        manifest = json.loads(manifest_bytes)
        if not isinstance(manifest, dict):
            raise ValueError
    except ValueError:
        bad(f"{MANIFEST}: not valid JSON")
        return report
    report.manifest = manifest
    if manifest.get("format") != FORMAT:
        bad(f"{MANIFEST}: format {manifest.get('format')!r}, expected {FORMAT!r}")

    # The signature: over the exact bytes of manifest.json.
    named_key = str((manifest.get("box") or {}).get("signing_key") or "")
    key_hex = named_key
    if box_key:
        key_hex = box_key.strip().lower()
        if named_key.lower() != key_hex:
            bad(f"{MANIFEST}: names signing key {named_key[:16]}..., not the box key you gave ({key_hex[:16]}...)")
    if SIGNATURE in names:
        if signing.is_valid(key_hex, signing.HANDOVER_MANIFEST, manifest_bytes, source.read(SIGNATURE)):
            pinned = "the key you gave (--box-key)" if box_key else \
                "the key named in the manifest itself (give --box-key HEX to check it is the box's)"
            good(f"{SIGNATURE}: valid Ed25519 signature over {MANIFEST} by {key_hex[:16]}..., {pinned}")
            if not box_key:
                report.notes.append(f"the signing key was not pinned: compare {key_hex} with the box's key "
                                    "(kluis export box-key on the box, or the transfer form), or pass --box-key")
        else:
            bad(f"{SIGNATURE}: the signature does not match {MANIFEST} and key {key_hex[:16]}... "
                "(the manifest was changed, or signed by another key)")

    # Every file the manifest names.
    expected: dict[str, str] = {}
    for entry in manifest.get("files") or []:
        expected[entry.get("name", "")] = entry.get("sha256", "")
        _check_member(source, names, entry.get("name", ""), entry.get("sha256", ""), entry.get("size"), report)
        chain = entry.get("chain") or {}
        if entry.get("clip") is None and chain.get("plaintext_sha256") not in (None, entry.get("sha256")):
            bad(f"{entry.get('name')}: the manifest's chain says the decrypted recording had SHA-256 "
                f"{chain.get('plaintext_sha256')}, but the file's recorded hash is {entry.get('sha256')}")
    for key in ("audit_excerpt", "transfer_form"):
        entry = manifest.get(key)
        if entry:
            expected[entry["name"]] = entry["sha256"]
            _check_member(source, names, entry["name"], entry["sha256"], None, report)
        elif key == "transfer_form":
            report.notes.append("this package has no transfer form")

    # SHA256SUMS: every line right, and every file in the package listed.
    if SUMS in names:
        listed = {}
        for number, line in enumerate(source.read(SUMS).decode("utf-8", "replace").splitlines(), start=1):
            match = re.fullmatch(r"([0-9a-f]{64}) [ *](.+)", line)
            if not match:
                bad(f"{SUMS}: line {number} is not 'SHA256  NAME'")
                continue
            listed[match.group(2)] = match.group(1)
        for name, digest in listed.items():
            if name in expected and expected[name] != digest:
                bad(f"{SUMS}: {name} is listed with {digest}, the signed manifest says {expected[name]}")
            if name not in names:
                continue  # reported as missing below or above
            actual, _ = source.digest(name)
            if actual != digest:
                bad(f"{SUMS}: {name} has SHA-256 {actual}, {SUMS} says {digest}")
        for name in sorted(names - set(listed) - {SUMS}):
            bad(f"{name}: in the package but not in {SUMS} (added afterwards?)")
        for name in sorted(set(listed) - names):
            bad(f"{name}: listed in {SUMS} but missing from the package")
        for name in (MANIFEST, SIGNATURE):
            if name in names and name not in listed:
                bad(f"{SUMS}: does not list {name}")
        if not any(p.startswith(SUMS) for p in report.problems):
            good(f"{SUMS}: {len(listed)} file(s), every hash matches")
    return report


def _check_member(source: _Source, names: set[str], name: str, sha256: str, size, report: Verification) -> None:
    if not name or "/" in name or name.startswith("."):
        report.problems.append(f"{MANIFEST}: a file name {name!r} that is not a plain name")
        return
    if name not in names:
        report.problems.append(f"{name}: named in the manifest, missing from the package")
        return
    try:
        actual, actual_size = source.digest(name)
    except zipfile.BadZipFile as exc:
        report.problems.append(f"{name}: damaged inside the ZIP ({exc})")
        return
    if actual != sha256:
        report.problems.append(f"{name}: SHA-256 is {actual}, the manifest says {sha256} (the file was changed)")
    elif size is not None and actual_size != size:
        report.problems.append(f"{name}: {actual_size} bytes, the manifest says {size}")
    else:
        report.ok_lines.append(f"{name}: SHA-256 {actual} matches the manifest")
