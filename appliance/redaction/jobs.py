"""Redaction as a background job (appliance.jobs): the web UI and `kluis redact` start one and follow it."""

from __future__ import annotations

from dataclasses import asdict

from .. import access_requests
from ..box import Box
from ..errors import KluisError, NotFound
from .derivative import default_case_ref, redact, redaction_purpose
from .plan import Plan


def case_for(box: Box, recording_id: str, case_ref: str | None, request_ref: str | None) -> str:
    """The case a redaction (and the editor's views for it) is for: the one given, else the request's
    reference (a request that is not in the register is an error), else one made from the recording's id."""
    if request_ref:
        try:
            request = access_requests.get(box, request_ref)
        except NotFound:
            raise KluisError(f"no request {request_ref!r} in the register") from None
        case_ref = case_ref or request["ref"]
    return (case_ref or "").strip() or default_case_ref(recording_id)


def start_job(box: Box, identity, recording_id: str, plan: Plan, *, actor: str, purpose: str,
              case_ref: str | None = None, reason: str = "", client: str | None = None,
              request_ref: str | None = None, break_glass: bool = False) -> str:
    """Queue a redaction as a background job (appliance.jobs); returns the job id at once. The job's
    result is {"recording_id": the derivative, "counts": ...}. The identity stays in memory."""
    from .. import jobs

    code = redaction_purpose(purpose)
    box.catalog.get_recording(recording_id)
    case_ref = case_for(box, recording_id, case_ref, request_ref)
    params = {"plan": plan.as_log(), "purpose": code, "case_ref": case_ref, "reason": reason or None,
              "request": request_ref}
    runner = jobs.runner_for(box)

    def work(job_box: Box, progress) -> dict:
        done = redact(job_box, identity, recording_id, plan, actor=actor, purpose=code, case_ref=case_ref,
                      reason=reason, client=client, request_id=request_ref, job_id=progress.job_id,
                      progress=progress, cancelled=progress.cancelled, break_glass=break_glass)
        return {"recording_id": done.recording_id, "original_id": recording_id, "hold": done.hold_id,
                "counts": asdict(done.counts)}

    return runner.submit("redact", work, actor=actor, recording_id=recording_id, params=params)
