"""The one gate to footage (appliance.footage), and the two parsers every front end shares with it.

- Fitness: no module of the box, the web UI or the sync but the gate reaches for the decrypting API.
- A refusal (role, scope, purpose, case) writes nothing and hands out nothing.
- The audit entry is committed (visible to another connection) before a reader exists.
- One byte-range parser (HTTP Range and `kluis cat --range`), one time-offset parser (web and CLI).
"""

from __future__ import annotations

import ast
from datetime import datetime, timezone
from pathlib import Path

import pytest

from appliance import audit, byte_ranges, footage, recordings, time_offsets
from appliance.box import Box
from appliance.catalog import Catalog
from appliance.errors import KluisError
from tests.conftest import PASSWORD, add_role_users

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("appliance", "webui", "sync", "simulators")

# The payload-decrypting API of the container format, and the gate's own insides. The gate's `Footage`
# may be named (a web session's grant holds one) but is made only by the gate.
DECRYPTING = {"Decryptor", "open_container", "_payload_aead", "_decryptor", "_SeekableReader"}
ALLOWED = {
    "appliance/footage.py": "the gate itself",
    "appliance/container.py": "the container format defines the decryptor",
    "appliance/restore.py": "opens the box's own sealed backups (catalog and key slots), no footage",
    "sync/archive/store.py": "the archive's copy of a recording, read under the archive's own audit log",
}


def _uses(tree: ast.AST) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            found |= {alias.name for alias in node.names if alias.name in DECRYPTING}
        elif isinstance(node, ast.Attribute) and node.attr in DECRYPTING:
            found.add(node.attr)
        elif isinstance(node, ast.Name) and node.id in DECRYPTING:
            found.add(node.id)
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) == "Footage":
            found.add("Footage()")
    return found


def test_only_the_gate_decrypts_footage():
    offenders = {}
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*.py")) if (ROOT / top).is_dir() else []:
            rel = path.relative_to(ROOT).as_posix()
            if rel in ALLOWED:
                continue
            used = _uses(ast.parse(path.read_text(), rel))
            if used:
                offenders[rel] = sorted(used)
    assert offenders == {}, (
        "footage is decrypted only through appliance.footage (open_for_viewing, open_for_redaction, "
        f"open_for_handover), which audits first: {offenders}")


def test_the_fitness_test_sees_a_direct_decryption():
    sneaky = "from appliance.container import Decryptor\nd = Decryptor(h, k)\n"
    assert _uses(ast.parse(sneaky)) == {"Decryptor"}
    assert _uses(ast.parse("from appliance import footage\nfootage._decryptor(box, i, r)\n")) == {"_decryptor"}
    assert _uses(ast.parse("made = footage.Footage(box, r, d, 0)\n")) == {"Footage()"}
    assert _uses(ast.parse("def f(x: footage.Footage) -> None: ...\n")) == set()


# The gate --------------------------------------------------------------------------------------------

START = datetime(2026, 11, 20, 14, 5, tzinfo=timezone.utc)


@pytest.fixture
def gated(box_dir, tmp_path):
    """A box with the role users and two recordings: one of officer hh (team Noord), one of someone else."""
    data, _ = box_dir
    add_role_users(data)
    with Box(data) as box:
        ids = {}
        for officer in ("hh", "zz"):
            path = tmp_path / f"{officer}.bin"
            path.write_bytes(officer.encode() * 5000)
            ids[officer] = recordings.import_file(box, path, camera="CAM001", officer=officer, start=START,
                                                  end=datetime(2026, 11, 20, 14, 6, tzinfo=timezone.utc)).recording_id
        identity = box.unlock("admin", PASSWORD)
        yield box, ids, identity


def _count(box) -> int:
    return audit.head(box.catalog)[0]


@pytest.mark.parametrize("who, recording, purpose, case_ref, why", [
    ("hh", "hh", "complaint", "K-1", footage.ROLE_PURPOSE),   # an officer views for training only
    ("tl", "zz", "complaint", "K-1", footage.SCOPE),          # a team leader: the own team only
    ("hh", "zz", "training", None, footage.SCOPE),            # an officer: the own recordings only
    ("admin", "hh", "complaint", "K-1", footage.ROLE),        # the keeper does not view footage
    ("au", "hh", "complaint", "K-1", footage.ROLE),           # nor the auditor
    ("fg", "hh", "curiosity", "K-1", footage.UNKNOWN_PURPOSE),
    ("fg", "hh", "complaint", "", footage.CASE_REF),
])
def test_a_refusal_writes_nothing_and_hands_out_nothing(gated, who, recording, purpose, case_ref, why):
    box, ids, identity = gated
    before = _count(box)
    with pytest.raises(footage.Refused) as refused:
        footage.open_for_viewing(box, box.catalog.get_user(who), ids[recording], purpose, case_ref,
                                 identity=identity, client="test")
    assert refused.value.why == why
    assert _count(box) == before


def test_export_and_handover_and_redaction_refuse_the_wrong_role_too(gated):
    box, ids, identity = gated
    before = _count(box)
    with pytest.raises(footage.Refused, match="recordings.export"):
        footage.open_for_viewing(box, box.catalog.get_user("tl"), ids["hh"], "complaint", "K-1",
                                 identity=identity, export=True)
    with pytest.raises(footage.Refused, match="recordings.redact"):
        footage.open_for_redaction(box, "tl", ids["hh"], "access_request", "VZ-1", identity=identity,
                                   allowed=("access_request",), action="redact_start")
    with pytest.raises(footage.Refused) as no_key:
        footage.open_for_viewing(box, box.catalog.get_user("fg"), ids["hh"], "complaint", "K-1", identity=None)
    assert no_key.value.why == footage.NO_KEY
    assert _count(box) == before


def test_the_audit_entry_is_committed_before_a_reader_is_handed_out(gated):
    box, ids, identity = gated
    opened = footage.open_for_viewing(box, box.catalog.get_user("tl"), ids["hh"], "complaint", "K-7",
                                      identity=identity, client="test", details={"start": 0})
    other = Catalog(box.catalog.path)  # a second connection sees only what is committed
    try:
        (entry,) = [e for e in audit.entries(other, action="view") if e["seq"] == opened.audit_seq]
    finally:
        other.close()
    assert (entry["actor"], entry["recording_id"], entry["purpose"], entry["case_ref"], entry["client"]) == \
        ("tl", ids["hh"], "complaint", "K-7", "test")
    assert b"".join(opened.read_range(0, 4)) == b"hhhh"
    assert b"".join(opened.read_range()) == b"hh" * 5000
    with opened.open() as reader:
        reader.seek(-2, 2)
        assert reader.read() == b"hh"


def test_the_gate_will_not_audit_inside_an_open_transaction(gated):
    """An entry written inside someone else's transaction is not committed yet: no reader then."""
    box, ids, identity = gated
    with box.catalog.transaction():
        with pytest.raises(KluisError, match="committed first"):
            footage.open_for_viewing(box, box.catalog.get_user("fg"), ids["hh"], "complaint", "K-1",
                                     identity=identity)


def test_break_glass_passes_role_and_scope_but_not_the_purpose(gated):
    box, ids, identity = gated
    with pytest.raises(footage.Refused):
        footage.open_for_viewing(box, None, ids["zz"], "complaint", "", identity=identity, actor="admin",
                                 break_glass=True)
    with pytest.raises(footage.Refused):  # no user and no break-glass: nobody
        footage.open_for_viewing(box, None, ids["zz"], "complaint", "K-1", identity=identity)
    opened = footage.open_for_viewing(box, None, ids["zz"], "complaint", "K-1", identity=identity, actor="admin",
                                      break_glass=True)
    assert b"".join(opened.read_range(0, 2)) == b"zz"


# One byte-range parser -------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    (None, (0, 100)), ("", (0, 100)),
    ("bytes=0-", (0, 100)), ("bytes=10-19", (10, 20)), ("10-19", (10, 20)),   # END inclusive, as in HTTP
    ("bytes=90-", (90, 100)), ("90-", (90, 100)),                              # open end
    ("bytes=-10", (90, 100)), ("-10", (90, 100)), ("bytes=-500", (0, 100)),    # suffix: the last N bytes
    ("bytes=90-500", (90, 100)), ("bytes=99-99", (99, 100)), (" BYTES = 5-6 ", (5, 7)),
])
def test_byte_ranges(text, expected):
    assert byte_ranges.parse(text, 100) == expected


@pytest.mark.parametrize("text", ["bytes=100-", "bytes=500-600", "bytes=-0", "bytes=10-5", "bytes=0-1,5-6",
                                  "items=0-5", "bytes=abc", "bytes=-", "-", "5", "1-2-3", "-1-5", "bytes=+1-2"])
def test_unsatisfiable_byte_ranges(text):
    """Malformed, empty or past the end: HTTP answers 416, `kluis cat` a one-line error."""
    with pytest.raises(byte_ranges.Unsatisfiable, match="bad range"):
        byte_ranges.parse(text, 100)


def test_an_empty_recording_has_no_satisfiable_range():
    assert byte_ranges.parse(None, 0) == (0, 0)
    with pytest.raises(byte_ranges.Unsatisfiable):
        byte_ranges.parse("bytes=0-", 0)


def test_web_and_cli_share_the_range_parser(monkeypatch):
    from appliance.app.commands import box as box_commands
    from webui.routes import opnames

    assert box_commands.parse_range("10-19", 100) == byte_ranges.parse("bytes=10-19", 100)
    assert opnames.byte_ranges is byte_ranges
    # The CLI calls the shared parser itself, not a copy that agrees on one input.
    monkeypatch.setattr(byte_ranges, "parse", lambda text, size: ("via", "shared"))
    assert box_commands.parse_range("x", 1) == ("via", "shared")


# One time-offset parser ------------------------------------------------------------------------------

@pytest.mark.parametrize("text, seconds", [
    ("75", 75.0), ("75.5", 75.5), ("75,5", 75.5), ("1:15", 75.0), ("1:15,5", 75.5), ("0:01:15", 75.0),
    (" 12 ", 12.0),
])
def test_seconds_as_a_stopwatch_reads_them(text, seconds):
    assert time_offsets.parse_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "abc", "1:2:3:4", "-5", "7,", "1..2"])
def test_not_seconds(text):
    with pytest.raises(KluisError, match="not a time"):
        time_offsets.parse_seconds(text)


@pytest.mark.parametrize("text, seconds", [
    ("75", 75.0), ("75,5", 75.5), ("75.5", 75.5),                # seconds into the recording
    ("15:06:15", 75.0), ("15:06:15,5", 75.5), ("15:06", 60.0),   # time of day in Amsterdam (UTC+1)
    ("2026-11-20T14:06:15Z", 75.0),                              # a full date and time
])
def test_a_handover_window_reads_the_same_on_the_web_and_the_command_line(text, seconds, monkeypatch):
    from appliance import clip_window
    from appliance.app.commands import export
    from webui.routes import overdracht

    assert time_offsets.parse_offset(text, START, "Europe/Amsterdam") == seconds
    # The CLI and the web form both read a window's ends with clip_window, which reads by time_offsets.
    assert export.parse_offset is clip_window.parse_offset
    assert overdracht.clip_window is clip_window
    recording = {"start_time": "2026-11-20T14:05:00.000Z"}
    assert clip_window.parse_offset(text, recording, "Europe/Amsterdam") == seconds
    monkeypatch.setattr(time_offsets, "parse_offset", lambda text, start, tz: 4242.0)
    assert clip_window.parse_offset(text, recording, "Europe/Amsterdam") == 4242.0  # delegates, no copy


def test_a_recording_over_midnight_and_a_bad_window():
    late = datetime(2026, 11, 20, 22, 59, tzinfo=timezone.utc)  # 23:59 in Amsterdam
    assert time_offsets.parse_offset("00:01", late, "Europe/Amsterdam") == 120.0
    with pytest.raises(KluisError):
        time_offsets.parse_offset("tomorrow", START, "Europe/Amsterdam")


def test_the_redaction_reads_times_with_the_same_parser():
    from appliance import redaction
    from webui.routes import redactie

    assert redaction.parse_seconds is time_offsets.parse_seconds
    assert redactie.time_offsets is time_offsets
    plan = redaction.make_plan(keep=["12,5-15:1,2,3,4"], boxes=["1:02,5:1,2,3,4"], mute=["1,5-2"])
    assert (plan.keep[0].start, plan.boxes[0].t, plan.mute) == (12.5, 62.5, [(1.5, 2.0)])

