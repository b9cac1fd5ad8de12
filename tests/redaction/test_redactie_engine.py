"""Redaction end to end through the real CLI: a real face (scikit-image's astronaut) moving across the
frame is blurred in every frame, the requester's face in a keep region is not, operator boxes are
blurred (interpolated between keyframes, tracked after the last), audio is silent in the muted range and
kept elsewhere; the derivative is a new encrypted recording linked to its original, held for the request,
and the redaction log is in the audit log."""

from __future__ import annotations

import io
import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from appliance import audit, recordings, retention
from appliance.box import Box
from appliance.redaction import laplacian_variance, redaction_of

from tests.conftest import PASSWORD, add_role_users, plaintext, run_kluis
import redactie_media as media

MUTE = (1.0, 1.5)
TRACKED = (10, 150, 40, 40)          # operator box at 0.5 s, followed by the tracker (static background)
CAR_FROM, CAR_TO = (200, 10, 30, 30), (260, 10, 30, 30)   # label 'car': keyframes at 1.0 s and 2.0 s


def face_core(box):
    """The face itself inside the pasted photo (eyes, nose, mouth), not hair or shoulders."""
    x, y, w, h = box
    return x + 18, y + 14, 36, 40


def crop(plane, box):
    x, y, w, h = box
    return plane[y:y + h, x:x + w].astype(np.float64)


@pytest.fixture(scope="module")
def redacted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("redactie")
    footage = media.make_footage(tmp / "in.mp4")
    data = tmp / "data"
    from appliance.box import init_box

    box, _ = init_box(data, "admin", PASSWORD, kdf_profile="interactive")
    box.close()
    add_role_users(data, "fg")
    pw = tmp / "pw.txt"
    pw.write_text(PASSWORD + "\n")
    with Box(data) as box:
        original = recordings.import_file(box, footage.path, camera="CAM001", officer="hh",
                                          start=datetime(2026, 11, 20, 14, 5, tzinfo=timezone.utc)).recording_id
    kx, ky, kw, kh = footage.keep
    done = run_kluis(
        "redact", "--data", data, original, "--keep", f"{kx - 10},{ky - 10},{kw + 20},{kh + 20}",
        "--mute", f"{MUTE[0]}-{MUTE[1]}", "--box", "0.5:" + ",".join(map(str, TRACKED)),
        "--box", "car:1:" + ",".join(map(str, CAR_FROM)), "--box", "car:2:" + ",".join(map(str, CAR_TO)),
        "--purpose", "access_request", "--case", "VZ-2026-0001", "--reason", "inzageverzoek mevr. X",
        "--user", "fg", "--password-file", pw)
    derivative = done.stdout.decode().strip()
    with Box(data) as box:
        identity = box.unlock("admin", PASSWORD)
        plain_in = plaintext(box, identity, original)
        plain_out = plaintext(box, identity, derivative)
    before = media.decode(io.BytesIO(plain_in))
    after = media.decode(io.BytesIO(plain_out))
    return {"data": data, "original": original, "derivative": derivative, "footage": footage,
            "before": before, "after": after, "stderr": done.stderr.decode(errors="replace")}


def test_prints_the_derivative_id_and_progress(redacted):
    assert len(redacted["derivative"]) == 16 and redacted["derivative"] != redacted["original"]
    assert "frames" in redacted["stderr"]


def test_the_moving_face_is_blurred_in_every_frame(redacted):
    footage = redacted["footage"]
    before, after = redacted["before"][0], redacted["after"][0]
    assert len(after) == len(before) == footage.frames
    for n, box in enumerate(footage.moving):
        core = face_core(box)
        sharp = laplacian_variance(crop(before[n], core).astype(np.uint8))
        blurred = laplacian_variance(crop(after[n], core).astype(np.uint8))
        assert sharp > 500, f"frame {n}: the test face is not sharp to begin with ({sharp:.0f})"
        assert blurred < 0.15 * sharp, f"frame {n}: face not blurred (sharpness {blurred:.0f} vs {sharp:.0f})"
        # and the face is really changed, not just re-encoded
        assert np.abs(crop(after[n], core) - crop(before[n], core)).mean() > 8


def test_the_face_in_the_keep_region_is_not_blurred(redacted):
    footage = redacted["footage"]
    before, after = redacted["before"][0], redacted["after"][0]
    core = face_core(footage.keep)
    for n in range(footage.frames):
        sharp = laplacian_variance(crop(before[n], core).astype(np.uint8))
        kept = laplacian_variance(crop(after[n], core).astype(np.uint8))
        assert kept > 0.6 * sharp, f"frame {n}: the requester's face was blurred ({kept:.0f} vs {sharp:.0f})"
        assert np.abs(crop(after[n], core) - crop(before[n], core)).mean() < 6


def test_operator_boxes_are_blurred_tracked_and_interpolated(redacted):
    before, after = redacted["before"][0], redacted["after"][0]
    fps = media.FPS
    inner = lambda b: (b[0] + 6, b[1] + 6, b[2] - 12, b[3] - 12)  # noqa: E731
    for n in range(len(after)):
        t = n / fps
        region = inner(TRACKED)
        sharp = laplacian_variance(crop(before[n], region).astype(np.uint8))
        got = laplacian_variance(crop(after[n], region).astype(np.uint8))
        if t >= 0.5:   # from its keyframe on, followed to the end
            assert got < 0.2 * sharp, f"frame {n}: tracked box not blurred"
        elif t < 0.4:  # before its keyframe: untouched (no face there)
            assert got > 0.6 * sharp, f"frame {n}: blurred before its keyframe"
        if 1.0 <= t <= 2.0:
            f = (t - 1.0) / 1.0
            moving = tuple(round(a + (b - a) * f) for a, b in zip(CAR_FROM, CAR_TO))
            region = inner(moving)
            sharp = laplacian_variance(crop(before[n], region).astype(np.uint8))
            got = laplacian_variance(crop(after[n], region).astype(np.uint8))
            assert got < 0.2 * sharp, f"frame {n}: interpolated box not blurred"


def rms(samples) -> float:
    return float(np.sqrt(np.mean(np.square(samples)))) if len(samples) else 0.0


def test_audio_is_silent_in_the_muted_range_and_kept_elsewhere(redacted):
    original, rate_in = redacted["before"][1], redacted["before"][2]
    audio, rate = redacted["after"][1], redacted["after"][2]
    assert rate == rate_in and abs(len(audio) - len(original)) < rate * 0.1
    tone = rms(original[int(0.2 * rate):int(0.8 * rate)])
    assert tone > 0.2
    a, b = MUTE
    # AAC frames are 1024 samples: stay 50 ms clear of the edges
    assert rms(audio[int((a + 0.05) * rate):int((b - 0.05) * rate)]) < 0.001 * tone
    assert rms(audio[int(0.2 * rate):int((a - 0.1) * rate)]) > 0.8 * tone
    assert rms(audio[int((b + 0.1) * rate):int(2.3 * rate)]) > 0.8 * tone


def test_derivative_is_linked_held_and_logged(redacted):
    with Box(redacted["data"]) as box:
        original, derivative = redacted["original"], redacted["derivative"]
        row = box.catalog.get_recording(derivative)
        source = box.catalog.get_recording(original)
        assert row["derived_from"] == original and row["source"] == "redaction"
        assert (row["start_time"], row["officer"], row["camera_serial"]) == \
               (source["start_time"], source["officer"], source["camera_serial"])
        assert row["sha256"] != source["sha256"]
        holds = retention.active_holds(box.catalog, derivative)
        assert [(h["purpose"], h["case_ref"], h["placed_by"]) for h in holds] == \
               [("access_request", "VZ-2026-0001", "fg")]
        log = redaction_of(box.catalog, derivative)
        assert log["original_id"] == original and log["created_by"] == "fg"
        # the default detector and its settings: in the redactions row and in the audit entry
        assert log["reason"] == "inzageverzoek mevr. X" and log["detector"].startswith("centerface width=960 ")
        plan = json.loads(log["plan"])
        assert plan["mute"] == [list(MUTE)] and len(plan["keep"]) == 1 and len(plan["boxes"]) == 3
        entries = audit.entries(box.catalog, recording_id=original)
        actions = [e["action"] for e in entries]
        assert actions.index("redact_start") < actions.index("redact")
        entry = [e for e in entries if e["action"] == "redact"][0]
        assert entry["actor"] == "fg" and entry["purpose"] == "access_request" and entry["case_ref"] == "VZ-2026-0001"
        details = entry["details"]
        assert details["derivative"] == derivative and details["reason"] == "inzageverzoek mevr. X"
        assert details["detector"] == log["detector"]
        assert {k: details["detector_settings"][k] for k in ("detector", "width", "threshold", "nms")} == \
               {"detector": "centerface", "width": 960, "threshold": 0.4, "nms": 0.3}
        counts = details["counts"]
        assert counts["frames"] == redacted["footage"].frames
        assert counts["faces_detected"] >= redacted["footage"].frames * 0.8   # the moving face, nearly every frame
        assert counts["faces_kept"] >= redacted["footage"].frames * 0.8      # the requester's
        assert counts["audio_muted_s"] == pytest.approx(0.5, abs=0.03)
        ingest = audit.entries(box.catalog, recording_id=derivative, action="ingest")
        assert ingest and ingest[0]["actor"] == "fg"
        assert audit.verify(box.catalog, box.signing_key().verify_key).ok


def test_no_plaintext_video_on_the_box_disk(redacted):
    """Everything under the data dir is ciphertext or the catalog: no MP4 box signature anywhere."""
    for path in Path(redacted["data"]).rglob("*"):
        if path.is_file() and path.suffix not in (".db", ".db-wal", ".db-shm") and "catalog" not in path.name:
            assert b"ftypisom" not in path.read_bytes() and b"moof" not in path.read_bytes()[:4096], path
