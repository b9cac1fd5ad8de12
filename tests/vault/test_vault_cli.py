"""Import, list, cat and verify through the real `kluis` CLI (a subprocess on a real data directory):
plaintext never lands on disk, duplicates are noticed, and every bad input gets one clear line."""

from __future__ import annotations

import json
import os
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pytest

from appliance import container, recordings
from appliance.box import Box
from appliance.dock.footage import make_mp4
from appliance.app.commands.box import parse_range
from appliance.errors import KluisError
from appliance.keys import new_recovery_key
from tests.conftest import plaintext, secret_file

START = "2026-11-20T14:05:00+01:00"
END = "2026-11-20T14:07:00+01:00"
PURPOSE = ("--purpose", "complaint", "--case", "KL-1")


def import_args(data: Path, *files: Path) -> list:
    return ["import", "--data", data, *files, "--camera", "CAM001", "--officer", "J. Jansen",
            "--start", START, "--end", END, "--password-file", keeper_password(data)]


def keeper_password(data: Path) -> Path:
    """Importing is the keeper's work, with a login: the keeper's password in a file beside the data dir."""
    return secret_file(Path(data).parent / "keeper-password.txt")


def refused(result, *needles: str) -> str:
    """A user error: non-zero exit, exactly one line on stderr naming the problem, no traceback."""
    err = result.stderr.decode(errors="replace")
    out = result.stdout.decode(errors="replace")
    assert result.returncode != 0, (out, err)
    assert "Traceback" not in err and "Traceback" not in out, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def data(box_dir) -> Path:
    return box_dir[0]


@pytest.fixture
def clip(tmp_path) -> Path:
    path = tmp_path / "clip.bin"
    path.write_bytes(os.urandom(1536 * 1024))  # 1.5 chunks of 1 MiB, random: no accidental matches
    return path


def import_here(data: Path, path: Path) -> str:
    """Import in this process: for tests whose subject is another command (a subprocess costs ~0.5 s)."""
    with Box(data) as box:
        return recordings.import_file(box, path, camera="CAM001", officer="J. Jansen",
                                      start=datetime(2026, 11, 20, 13, 5, tzinfo=timezone.utc),
                                      end=datetime(2026, 11, 20, 13, 7, tzinfo=timezone.utc)).recording_id


def rows_of(data: Path) -> list[dict]:
    with Box(data) as box:
        return box.catalog.list_recordings()


def decrypt_here(data: Path, rid: str, password: str) -> bytes:
    with Box(data) as box:
        return plaintext(box, box.unlock("admin", password), rid)


@pytest.fixture
def imported(data, clip) -> str:
    return import_here(data, clip)


# import -----------------------------------------------------------------------------------------------

def aligned_blocks(plain: bytes, width: int = 16) -> set[bytes]:
    return {plain[i : i + width] for i in range(0, len(plain) - width + 1, width)}


def leaks(blocks: set[bytes], data: bytes, width: int = 16) -> int | None:
    """Offset in `data` of a 16-byte block of the plaintext, or None. Any run of 32 plaintext bytes
    contains a whole aligned 16-byte block, so None proves that no 32-byte window leaked."""
    for i in range(len(data) - width + 1):
        if data[i : i + width] in blocks:
            return i
    return None


def test_no_plaintext_run_anywhere_under_the_data_dir(kluis, data, clip, password_file, privacy_officer):
    imported = kluis(*import_args(data, clip)).stdout.decode().strip()
    plain = clip.read_bytes()
    blocks = aligned_blocks(plain)
    control = os.urandom(100) + plain[1000:1032] + os.urandom(100)
    assert leaks(blocks, control) is not None  # the scanner does find a 32-byte run
    files = [p for p in data.rglob("*") if p.is_file()]
    assert any(p.parent.parent.name == "blobs" for p in files)
    for path in files:
        assert leaks(blocks, path.read_bytes()) is None, path
    # and the blob is what it should be: payload chunks only, opening to the clip
    assert kluis("cat", "--data", data, imported, *PURPOSE, *privacy_officer).stdout == plain


def test_import_prints_one_id_per_file_and_lists_them(kluis, data, tmp_path, privacy_officer):
    files = []
    for n, size in enumerate([0, 1, 70_000]):
        path = tmp_path / f"f{n}.bin"
        path.write_bytes(os.urandom(size))
        files.append(path)
    ids = kluis(*import_args(data, *files)).stdout.decode().split()
    assert len(ids) == 3 == len(set(ids))
    rows = {r["id"]: r for r in json.loads(kluis("list", "--data", data, "--json", *privacy_officer).stdout)}
    assert set(rows) == set(ids)
    assert [rows[i]["size"] for i in ids] == [0, 1, 70_000]
    row = rows[ids[2]]
    assert (row["camera_serial"], row["officer"], row["state"]) == ("CAM001", "J. Jansen", "stored")
    assert (row["start_time"], row["end_time"]) == ("2026-11-20T13:05:00.000Z", "2026-11-20T13:07:00.000Z")
    table = kluis("list", "--data", data, *privacy_officer).stdout.decode()
    assert all(i in table for i in ids) and "J. Jansen" in table


def test_same_file_twice_is_detected(kluis, data, clip, password, privacy_officer):
    imported = kluis(*import_args(data, clip)).stdout.decode().strip()
    again = kluis(*import_args(data, clip))
    assert again.returncode == 0 and again.stdout == b""
    err = again.stderr.decode()
    assert f"imported before as {imported}" in err and "--allow-duplicate" in err
    assert [r["id"] for r in rows_of(data)] == [imported]
    # a renamed copy is the same footage
    copy = clip.with_name("KOPIE.bin")
    copy.write_bytes(clip.read_bytes())
    assert kluis(*import_args(data, copy)).stdout == b""
    # on purpose: stored again, as a recording of its own
    second = kluis(*import_args(data, clip), "--allow-duplicate").stdout.decode().strip()
    assert second and second != imported
    rows = json.loads(kluis("list", "--data", data, "--json", *privacy_officer).stdout)
    assert sorted(r["id"] for r in rows) == sorted([imported, second])
    assert rows[0]["sha256"] != rows[1]["sha256"]  # new file key: a different container
    for rid in (imported, second):
        assert decrypt_here(data, rid, password) == clip.read_bytes()


def test_video_length_sets_the_end(kluis, data, tmp_path):
    video = tmp_path / "clip.mp4"
    make_mp4(video, 3, datetime(2026, 11, 20, 13, 5, tzinfo=timezone.utc), "CAM001")
    rid = kluis("import", "--data", data, video, "--camera", "CAM001", "--officer", "A. de Vries",
                "--start", "2026-11-20T13:05:00Z", "--password-file", keeper_password(data)).stdout.decode().strip()
    row = rows_of(data)[0]
    assert row["id"] == rid and row["end_time"] == "2026-11-20T13:05:03.000Z"


def test_cat_range_and_recovery_key(kluis, data, box_dir, clip, imported, tmp_path, password_file, privacy_officer):
    plain = clip.read_bytes()
    recovery = tmp_path / "recovery.txt"
    recovery.write_text(box_dir[1] + "\n")
    assert kluis("cat", "--data", data, imported, *PURPOSE, "--recovery-key-file", recovery).stdout == plain
    mib = 1024 * 1024  # a range across the chunk boundary
    assert kluis("cat", "--data", data, imported, *PURPOSE, *privacy_officer,
                 "--range", f"{mib - 3}-{mib + 2}").stdout == plain[mib - 3 : mib + 3]


def test_parse_range():
    assert parse_range(None, 100) == (0, 100)
    assert parse_range("10-19", 100) == (10, 20)  # inclusive, as in HTTP
    assert parse_range("10-", 100) == (10, 100)
    assert parse_range("-10", 100) == (90, 100)
    assert parse_range("-500", 100) == (0, 100)
    assert parse_range("90-500", 100) == (90, 100)
    for bad in ("abc", "10-5", "5", "-", "1-2-3", "-1-5"):
        with pytest.raises(KluisError, match="bad range"):
            parse_range(bad, 100)


# bad input --------------------------------------------------------------------------------------------

def test_wrong_password(kluis, data, imported, tmp_path, privacy_officer):
    wrong = tmp_path / "wrong.txt"
    wrong.write_text("not the password\n")
    refused(kluis("cat", "--data", data, imported, *PURPOSE, "--user", "fg", "--password-file", wrong, check=False),
            "wrong password")
    refused(kluis("verify", "--data", data, "--password-file", wrong, check=False), "wrong password")


def test_bad_recovery_keys(kluis, data, imported, tmp_path):
    other = tmp_path / "other.txt"
    other.write_text(new_recovery_key() + "\n")
    refused(kluis("cat", "--data", data, imported, *PURPOSE, "--recovery-key-file", other, check=False),
            "wrong recovery key")
    typo = tmp_path / "typo.txt"
    typo.write_text("KLUIS-AAAAA-BBBBB\n")
    refused(kluis("cat", "--data", data, imported, *PURPOSE, "--recovery-key-file", typo, check=False),
            "typing errors")


def test_secret_files_missing_or_empty(kluis, data, imported, tmp_path, privacy_officer):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    refused(kluis("cat", "--data", data, imported, *PURPOSE, "--user", "fg", "--password-file", empty, check=False), "empty")
    refused(kluis("cat", "--data", data, imported, *PURPOSE, "--user", "fg", "--password-file", tmp_path / "nope",
                  check=False), "cannot read")


def test_missing_data_dir(kluis, tmp_path, clip):
    missing = tmp_path / "nowhere"
    for args in (["list", "--data", missing], import_args(missing, clip)):
        refused(kluis(*args, check=False), "no Kluis data directory")
    assert not missing.exists()


def test_unknown_id(kluis, data, password_file, privacy_officer):
    refused(kluis("cat", "--data", data, "feedfacecafebeef", *PURPOSE, *privacy_officer,
                  check=False), "feedfacecafebeef")


def test_import_of_directory_or_missing_path(kluis, data, clip, tmp_path):
    refused(kluis(*import_args(data, tmp_path), check=False), "not a file")
    refused(kluis(*import_args(data, tmp_path / "gone.mp4"), check=False), "gone.mp4", "not a file")
    # all arguments are checked before any is stored
    refused(kluis(*import_args(data, clip, tmp_path / "gone.mp4"), check=False), "not a file")
    assert rows_of(data) == []
    assert list((data / "blobs").rglob("*.*")) == [] and list((data / "tmp").iterdir()) == []


def test_other_bad_import_input(kluis, data, clip):
    refused(kluis("import", "--data", data, clip, "--camera", "C", "--officer", "O", "--start", "gisteren",
                  check=False), "ISO 8601")
    keeper = ["--password-file", keeper_password(data)]
    refused(kluis("import", "--data", data, clip, "--camera", "C", "--officer", "O", "--start", START, *keeper,
                  check=False), "--end")  # not a video: its length is unknown
    refused(kluis("import", "--data", data, clip, "--camera", "C", "--officer", "O", "--start", END,
                  "--end", START, *keeper, check=False), "ends before it starts")
    assert rows_of(data) == []


def test_import_stops_before_the_disk_is_full(kluis, data, clip):
    """The space check runs before a byte is written: one line, nothing stored, nothing left in tmp/."""
    config = data / "kluis.toml"
    text = config.read_text()
    assert "# reserve_mb = 512" in text
    config.write_text(text.replace("# reserve_mb = 512", "reserve_mb = 1000000000"))
    refused(kluis(*import_args(data, clip), check=False), "not enough room")
    assert rows_of(data) == []
    assert list((data / "tmp").iterdir()) == [] and not any(p.is_file() for p in (data / "blobs").rglob("*"))


def test_bad_range(kluis, data, imported, password_file, privacy_officer):
    refused(kluis("cat", "--data", data, imported, *PURPOSE, *privacy_officer,
                  "--range", "10-5", check=False), "bad range")


def test_newer_catalog_schema(kluis, data):
    conn = sqlite3.connect(data / "catalog.db")
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    conn.execute(f"PRAGMA user_version = {version + 1}")
    conn.close()
    refused(kluis("list", "--data", data, check=False), "newer than this Kluis")


def test_init_refuses_an_existing_box(kluis, data, password_file):
    refused(kluis("init", "--data", data, "--password-file", password_file, "--kdf-profile", "interactive",
                  check=False), "already")


# damage: verify names the recording ----------------------------------------------------------------

HEADER_DAMAGE = ["magic", "chunk size", "nonce", "recipient key", "sealed file key", "MAC", "truncated header"]
BLOB_DAMAGE = ["blob bit flip", "blob truncated", "blob with trailing bytes", "blob missing"]


def damage_header(header: bytes, kind: str) -> bytes:
    if kind == "truncated header":
        return header[:-40]
    stanza = 38 + len(container.parse_header(header).metadata)
    offset = {"magic": 0, "chunk size": 13, "nonce": 20, "recipient key": stanza + 5,
              "sealed file key": stanza + 32 + 50, "MAC": len(header) - 1}[kind]
    bad = bytearray(header)
    bad[offset] ^= 0x04
    return bytes(bad)


def damage_blob(blob: Path, kind: str) -> None:
    raw = blob.read_bytes()
    if kind == "blob bit flip":
        blob.write_bytes(raw[: len(raw) // 2] + bytes([raw[len(raw) // 2] ^ 1]) + raw[len(raw) // 2 + 1 :])
    elif kind == "blob truncated":
        blob.write_bytes(raw[:-100])
    elif kind == "blob with trailing bytes":
        blob.write_bytes(raw + bytes(20))
    else:
        blob.unlink()


def test_verify_names_every_damaged_recording(kluis, data, tmp_path, password_file, password, privacy_officer):
    """One recording per kind of damage (header bytes broken in the catalog with sqlite3, blobs broken on
    disk) and one intact: both verify modes name exactly the damaged ones and exit non-zero; cat refuses
    a damaged one in one line and still serves the intact one."""
    ids, plain = {}, {}
    with Box(data) as box:
        for kind in HEADER_DAMAGE + BLOB_DAMAGE + ["intact"]:
            path = tmp_path / f"{kind}.bin"
            plain[kind] = os.urandom(150_000)
            path.write_bytes(plain[kind])
            ids[kind] = recordings.import_file(box, path, camera="CAM001", officer="J. Jansen",
                                               start=datetime(2026, 11, 20, 13, 5, tzinfo=timezone.utc),
                                               end=datetime(2026, 11, 20, 13, 7, tzinfo=timezone.utc)
                                               ).recording_id
        paths = {r["id"]: data / r["stored_path"] for r in box.catalog.list_recordings()}
    conn = sqlite3.connect(data / "catalog.db")
    with conn:
        for kind in HEADER_DAMAGE:
            (header,) = conn.execute("SELECT header FROM file_keys WHERE recording_id = ?", [ids[kind]]).fetchone()
            conn.execute("UPDATE file_keys SET header = ? WHERE recording_id = ?",
                         [damage_header(header, kind), ids[kind]])
    conn.close()
    for kind in BLOB_DAMAGE:
        damage_blob(paths[ids[kind]], kind)
    expected = {ids[k] for k in HEADER_DAMAGE + BLOB_DAMAGE}
    for extra in ([], ["--password-file", password_file]):
        result = kluis("verify", "--data", data, *extra, check=False)
        out = result.stdout.decode()
        line = refused(result, f"{len(expected)} of {len(ids)} recording(s) damaged or missing")
        named = {text.split(": ")[0] for text in out.splitlines() if ": " in text}
        assert named == expected, (extra, out, line)
    assert f"{ids['blob missing']}: blob missing" in out
    for kind in ("sealed file key", "blob bit flip"):
        refused(kluis("cat", "--data", data, ids[kind], *PURPOSE, *privacy_officer,
                      check=False))
    assert kluis("cat", "--data", data, ids["intact"], *PURPOSE, *privacy_officer
                 ).stdout == plain["intact"]
