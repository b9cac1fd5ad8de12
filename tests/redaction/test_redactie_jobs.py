"""A redaction runs as a background job: progress in the catalog, ingest is never blocked by it, a job
of a process that died is marked failed, and the CLI refuses roles without recordings.redact."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from appliance import access_requests, jobs, recordings, redaction, retention
from appliance.box import Box
from appliance.errors import KluisError

from tests.conftest import PASSWORD, add_role_users, run_kluis
import redactie_media as media

START = datetime(2026, 11, 20, 14, 5, tzinfo=timezone.utc)


@pytest.fixture
def data(box_dir) -> Path:
    """The box_dir box, with the privacy officer 'fg': redaction is theirs (recordings.redact)."""
    add_role_users(box_dir[0], "fg")
    return box_dir[0]


def import_footage(box: Box, path: Path, camera: str = "CAM001") -> str:
    """Import a file of made footage as officer hh's recording from START; its id."""
    return recordings.import_file(box, path, camera=camera, officer="hh", start=START).recording_id


def wait_for_progress(box: Box, job_id: str) -> None:
    """Until the job has done some frames: it is really working."""
    deadline = time.monotonic() + 30
    while jobs.get(box.catalog, job_id)["done"] == 0:
        assert time.monotonic() < deadline, "the job never reported progress"
        time.sleep(0.05)


def test_ingest_completes_while_a_redaction_job_runs(data, tmp_path):
    long = media.make_footage(tmp_path / "long.mp4", seconds=4, audio=False)
    other = media.make_footage(tmp_path / "other.mp4", seconds=1, audio=False)
    with Box(data) as box:
        original = import_footage(box, long.path)
        identity = box.unlock("fg", PASSWORD)
        job_id = redaction.start_job(box, identity, original, redaction.make_plan(), actor="fg",
                                     purpose="access_request", case_ref="VZ-1")
        wait_for_progress(box, job_id)  # then ingest beside it
        running = jobs.get(box.catalog, job_id)
        assert running["state"] == jobs.RUNNING and 0 < running["done"] < running["total"] == long.frames
        started = time.monotonic()
        imported = recordings.import_file(box, other.path, camera="CAM002", officer="hh", start=START)
        took = time.monotonic() - started
        during = jobs.get(box.catalog, job_id)
        assert during["state"] == jobs.RUNNING, "the import waited for the redaction to finish"
        assert box.catalog.get_recording(imported.recording_id)["state"] == "stored"
        assert took < 5
        jobs.runner_for(box).wait(job_id, timeout=120)
        finished = jobs.get(box.catalog, job_id)
        assert finished["state"] == jobs.DONE, finished["error"]
        assert finished["done"] == finished["total"] == long.frames
        derivative = finished["result"]["recording_id"]
        assert box.catalog.get_recording(derivative)["derived_from"] == original


def test_a_failed_job_says_why_and_leaves_nothing(data, tmp_path):
    not_video = tmp_path / "notes.mp4"
    not_video.write_bytes(b"not a video at all" * 1000)
    with Box(data) as box:
        rid = recordings.import_file(box, not_video, camera="CAM001", officer="hh", start=START,
                                     end=datetime(2026, 11, 20, 14, 6, tzinfo=timezone.utc)).recording_id
        identity = box.unlock("fg", PASSWORD)
        before = len(box.catalog.list_recordings())
        job_id = redaction.start_job(box, identity, rid, redaction.make_plan(), actor="fg",
                                     purpose="objection", case_ref="BZ-1")
        jobs.runner_for(box).wait(job_id, timeout=60)
        job = jobs.get(box.catalog, job_id)
        assert job["state"] == jobs.FAILED and "cannot be read as video" in job["error"]
        assert len(box.catalog.list_recordings()) == before
        assert list((data / "tmp").iterdir()) == []  # the vault writer was aborted
        actions = [e["action"] for e in __import__("appliance.audit", fromlist=["x"]).entries(box.catalog, recording_id=rid)]
        assert "redact_start" in actions and "redact_failed" in actions


def test_a_job_of_a_dead_process_is_marked_failed(box):
    box.catalog.db.execute(
        "INSERT INTO jobs (id, kind, state, created_by, created_at, pid) VALUES ('j1', 'redact', 'running', 'fg', "
        "'2026-11-20T10:00:00Z', 999999999)")
    assert jobs.fail_orphans(box) == 1
    job = jobs.get(box.catalog, "j1")
    assert job["state"] == jobs.FAILED and "interrupted" in job["error"]


@pytest.mark.parametrize("name", ["tl", "hh", "au"])
def test_only_the_privacy_officer_may_redact(box_dir, password_file, tmp_path, name):
    data, _ = box_dir
    add_role_users(data, name)
    clip = media.make_footage(tmp_path / "c.mp4", seconds=0.5, audio=False)
    with Box(data) as box:
        rid = import_footage(box, clip.path)
    done = run_kluis("redact", "--data", data, rid, "--purpose", "access_request", "--user", name,
                     "--password-file", password_file, check=False)
    assert done.returncode != 0
    assert "may not" in done.stderr.decode() and done.stdout == b""
    with Box(data) as box:
        assert [r["id"] for r in box.catalog.list_recordings()] == [rid]


@pytest.mark.parametrize("args, message", [
    (["--keep", "1,2,3"], "not a region"),
    (["--mute", "5-2"], "ends before it starts"),
    (["--box", "nonsense"], "not a box"),
    (["--purpose", "curiosity"], "unknown purpose"),
    (["--purpose", "training"], "not made for training"),
])
def test_bad_options_are_one_line_errors(box_dir, password_file, args, message):
    data, _ = box_dir
    base = {"--purpose": "access_request"}
    argv = ["redact", "--data", data, "0123456789abcdef", *args]
    if "--purpose" not in args:
        argv += ["--purpose", base["--purpose"]]
    done = run_kluis(*argv, "--password-file", password_file, check=False)
    assert done.returncode != 0 and message in done.stderr.decode()
    assert "Traceback" not in done.stderr.decode()


def test_parsing_of_the_operator_texts():
    plan = redaction.make_plan(keep=["10,20,30,40", "1.5-3:0,0,8,8"], boxes=["2.5:1,2,3,4", "a:1:00:5,6,7,8", "a:4:0,0,0,0"],
                               mute=["1:00-1:02.5"])
    assert plan.keep[0].rect == redaction.Rect(10, 20, 30, 40) and plan.keep[0].start is None
    assert (plan.keep[1].start, plan.keep[1].end) == (1.5, 3.0)
    assert [(b.track, b.t, b.rect) for b in plan.boxes] == [
        ("box1", 2.5, redaction.Rect(1, 2, 3, 4)), ("a", 60.0, redaction.Rect(5, 6, 7, 8)), ("a", 4.0, None)]
    assert plan.mute == [(60.0, 62.5)]
    assert redaction.Plan.from_log(plan.as_log()) == plan
    with pytest.raises(KluisError):
        redaction.parse_rect("1,2,3,-4")


def test_a_cancelled_job_stores_nothing(data, tmp_path):
    clip = media.make_footage(tmp_path / "c.mp4", seconds=4, audio=False)
    with Box(data) as box:
        rid = import_footage(box, clip.path)
        job_id = redaction.start_job(box, box.unlock("fg", PASSWORD), rid, redaction.make_plan(), actor="fg",
                                     purpose="access_request", case_ref="VZ-2")
        runner = jobs.runner_for(box)
        wait_for_progress(box, job_id)
        assert runner.cancel(job_id)
        runner.wait(job_id, timeout=60)
        job = jobs.get(box.catalog, job_id)
        assert job["state"] == jobs.FAILED and "cancelled" in job["error"]
        assert [r["id"] for r in box.catalog.list_recordings()] == [rid]
        assert list((data / "tmp").iterdir()) == []


def test_at_25_fps_faces_between_searched_frames_are_blurred_too(tmp_path):
    """At 25 frames/s faces are searched every 3rd frame; the frames between get the face's box moved
    linearly between its two sightings: the moving face is blurred in every frame all the same."""
    import io

    import numpy as np

    from appliance.redaction import laplacian_variance, redact_stream

    footage = media.make_footage(tmp_path / "f25.mp4", seconds=2, audio=False, fps=25)
    out = io.BytesIO()
    counts = redact_stream(open(footage.path, "rb"), out, redaction.make_plan())
    assert counts.frames == footage.frames == 50
    assert counts.faces_detected + counts.faces_kept <= 2 * 18  # searched 17 of 50 frames, not all
    before, after = media.decode(str(footage.path))[0], media.decode(io.BytesIO(out.getvalue()))[0]
    for n, (x, y, _, _) in enumerate(footage.moving):
        core = (slice(y + 14, y + 54), slice(x + 18, x + 54))
        sharp, blurred = laplacian_variance(before[n][core]), laplacian_variance(after[n][core])
        assert blurred < 0.15 * sharp, f"frame {n}: face not blurred ({blurred:.0f} vs {sharp:.0f})"
        assert np.abs(after[n][core].astype(float) - before[n][core].astype(float)).mean() > 8


def test_a_redaction_for_a_request_is_held_under_its_reference_and_an_unknown_request_is_refused(data, tmp_path):
    clip = media.make_footage(tmp_path / "c.mp4", seconds=0.5, audio=False)
    with Box(data) as box:
        rid = import_footage(box, clip.path)
        identity = box.unlock("fg", PASSWORD)
        with pytest.raises(KluisError, match="no request 'VZ-2099-0001'"):
            redaction.start_job(box, identity, rid, redaction.make_plan(), actor="fg",
                                purpose="access_request", request_ref="VZ-2099-0001")
        assert jobs.list_jobs(box.catalog) == []
        ref = access_requests.register(box, requester="P. de Boer", kind="inzage", received_on=START.date(),
                                       given_time=START, actor="admin").request["ref"]
        job_id = redaction.start_job(box, identity, rid, redaction.make_plan(), actor="fg",
                                     purpose="access_request", request_ref=ref)
        jobs.runner_for(box).wait(job_id, timeout=120)
        finished = jobs.get(box.catalog, job_id)
        assert finished["state"] == jobs.DONE, finished["error"]
        holds = retention.active_holds(box.catalog, finished["result"]["recording_id"])
        assert [(h["purpose"], h["case_ref"]) for h in holds] == [("access_request", ref)]
