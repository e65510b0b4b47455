"""How a job-starting call answers: wait as `Prefer` asks, then the result, an error, or 202 to poll."""
from __future__ import annotations

from aiohttp import web

from api.errors import error_response
from api.keys import CONTEXT
from models.jobs import Job
from service import records
from service.jobs import FINISHED, MAX_WAIT, job_view, wait_for_job

# A finished job that did not succeed, as an HTTP answer: (status, code, message).
FAILED_OUTCOMES = {
    "provider_changed": (409, "provider_changed", "The provider was changed while it was being checked; "
                         "nothing was activated or applied. Check it again."),
    "provider_deleted": (409, "provider_deleted", "The provider was deleted while it was being checked."),
    "credentials_unavailable": (503, "credentials_unavailable", "The stored API key cannot be decrypted; "
                                "enter the key again."),
    "worker_lost": (503, "worker_lost", "The worker running this job was lost; nothing was changed. Try again."),
    "broker_unavailable": (503, "broker_unavailable", "The job queue was not reachable; nothing was changed."),
    "conflict": (409, "conflict", "Concurrent changes kept this job from applying; try again."),
}


def requested_wait(request: web.Request) -> float:
    """Seconds to wait: `Prefer: respond-async` is 0, `Prefer: wait=N` is N (at most 60), else the setting."""
    wait = request.app[CONTEXT].settings.sync_wait
    for header in request.headers.getall("Prefer", []):
        for pref in header.split(","):
            token = pref.strip().lower()
            if token == "respond-async":
                return 0.0
            if token.startswith("wait="):
                try:
                    wait = float(token[5:])
                except ValueError:
                    continue
    return max(0.0, min(wait, MAX_WAIT))


async def answer_job(request: web.Request, job: Job) -> web.Response:
    wait = requested_wait(request)
    if wait > 0:  # `respond-async` answers with the job just created, without reading it back
        job = await wait_for_job(request.app[CONTEXT], job, wait)
    if job.status not in FINISHED:
        return web.json_response({"job_id": str(job.id), "status": job.status}, status=202,
                                 headers={"Location": f"/jobs/{job.id}"})
    if job.type == "test" and job.status == "succeeded":
        return web.json_response(job.result)
    if job.status == "succeeded":
        record = await records.get_record(job.org, str(job.provider_id))
        return web.json_response(records.record_view(record, await records.active_provider_id(job.org)))
    if job.outcome == "check_failed":
        message = (job.result or {}).get("error", {}).get("message", "The live check failed.")
        return error_response(422, "check_failed", message, result=job.result, job_id=str(job.id))
    status, code, message = FAILED_OUTCOMES.get(job.outcome, (500, "job_failed", "The job failed."))
    return error_response(status, code, message, job=job_view(job))
