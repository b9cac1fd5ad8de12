"""schedule_jobs on a real APScheduler: the sweep, a checkpoint and the audit log's pruning run at start, a
checkpoint on shutdown."""

from __future__ import annotations

import threading
from datetime import timedelta

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED
from apscheduler.schedulers.background import BackgroundScheduler

from appliance import audit, retention, sweep

from retention_helpers import T0, store


def test_sweep_and_checkpoints_scheduled(rbox, clock, tmp_path):
    gone = store(rbox, tmp_path, T0)
    kept = store(rbox, tmp_path, T0 + timedelta(days=27))
    clock.set(T0 + timedelta(days=28))
    scheduler = BackgroundScheduler(timezone="UTC")
    done: dict[str, threading.Event] = {"retention_sweep": threading.Event(), "audit_checkpoint": threading.Event(),
                                        "audit_prune": threading.Event()}
    errors = []

    def listener(event):
        if event.exception:
            errors.append(event.exception)
        done[event.job_id].set()

    scheduler.add_listener(listener, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
    jobs = sweep.schedule_jobs(scheduler, rbox)
    assert {job.id for job in jobs} == {"retention_sweep", "audit_checkpoint", "audit_prune"}
    assert jobs[0].trigger.interval == timedelta(minutes=15)
    assert jobs[2].trigger.interval == timedelta(hours=24)
    scheduler.start()
    try:
        assert all(event.wait(30) for event in done.values()), "the jobs did not run at start"
    finally:
        before = len(audit.stored_checkpoints(rbox.catalog))
        audit.record(rbox.catalog, actor="admin", action="view", recording_id=kept, purpose="complaint")
        scheduler.shutdown(wait=True)
    assert not errors
    assert [r["recording_id"] for r in retention.deletion_report(rbox.catalog)] == [gone]
    checkpoints = audit.stored_checkpoints(rbox.catalog)
    assert before >= 1 and len(checkpoints) == before + 1  # the shutdown checkpoint covers the last entry
    assert checkpoints[-1]["count"] == audit.head(rbox.catalog)[0]
    assert audit.verify(rbox.catalog, rbox.signing_key().verify_key).anchored == checkpoints[-1]["count"]
