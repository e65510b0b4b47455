"""Check jobs: create, enqueue, wait, finish, and the sweeper that ends jobs whose worker was lost."""
from __future__ import annotations

import asyncio
import logging
import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from models.jobs import Job
from models.providers import ProviderRecord
from service.auth import Principal
from service.context import ServiceContext
from service.errors import DependencyUnavailable, NotFound
from service.job_events import publish_job_finished

log = logging.getLogger("llmp.jobs")
JOB_TYPES = ("test", "activate", "update")
FINISHED = ("succeeded", "failed")
MAX_WAIT = 60.0


def now() -> datetime:
    return datetime.now(timezone.utc)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def job_view(job: Job) -> dict:
    return {
        "id": str(job.id),
        "type": job.type,
        "provider_id": str(job.provider_id),
        "status": job.status,
        "result": job.result,
        "outcome": job.outcome,
        "created_at": _iso(job.created_at),
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
    }


async def get_job(org: str, job_id: str) -> Job:
    try:
        parsed = uuid.UUID(str(job_id))
    except ValueError:
        raise NotFound("No job with this id.", code="job_not_found") from None
    job = await Job.get_or_none(id=parsed, org=org)
    if job is None:
        raise NotFound("No job with this id.", code="job_not_found")
    return job


def seal_changes(ctx: ServiceContext, org: str, job_id: uuid.UUID, changes: dict[str, Any]) -> dict[str, Any]:
    """Pending changes as stored on the job: a new key is encrypted, bound to the job."""
    sealed = {k: v for k, v in changes.items() if k != "api_key"}
    if "api_key" in changes:
        sealed["api_key_ciphertext"] = ctx.vault.encrypt(org, f"job:{job_id}", changes["api_key"])
    return sealed


def unseal_changes(ctx: ServiceContext, job: Job) -> dict[str, Any]:
    changes = dict(job.changes or {})
    token = changes.pop("api_key_ciphertext", None)
    if token:
        changes["api_key"] = ctx.vault.decrypt(job.org, f"job:{job.id}", token)
    return changes


async def start_job(ctx: ServiceContext, principal: Principal, job_type: str, record: ProviderRecord,
                    changes: dict[str, Any] | None = None) -> Job:
    """Count the call against the org's limit, record the job, and hand it to the workers.

    A broker that refuses the job gives 503 and the job is failed at once, never left queued."""
    await ctx.extras["rate_limiter"].hit(principal.org)
    job_id = uuid.uuid4()
    job = await Job.create(
        id=job_id, org=principal.org, type=job_type, provider_id=record.id, status="queued",
        changes=seal_changes(ctx, principal.org, job_id, changes) if changes else None,
        expected_version=record.version, requested_by=principal.sub, requested_role=principal.role,
        deadline=now() + timedelta(seconds=ctx.settings.job_deadline),
    )
    try:
        await ctx.extras["enqueue"](str(job.id))
    except Exception as exc:  # noqa: BLE001 - any broker failure means the job will not run
        log.error("could not enqueue job %s: %s", job.id, type(exc).__name__)
        await finish_job(ctx, job, "failed", None, "broker_unavailable")
        raise DependencyUnavailable("The job queue is not reachable right now; nothing was changed. "
                                    "Try again shortly.", code="broker_unavailable") from None
    return job


async def wait_for_job(ctx: ServiceContext, job: Job, timeout: float) -> Job:
    """The job once finished, or as it is when `timeout` runs out. Woken by completion events; the
    database is re-read on each wake-up and, as a safety net, every poll interval."""
    events = ctx.extras["job_events"]
    deadline = time.monotonic() + max(0.0, min(timeout, MAX_WAIT))
    job_id = str(job.id)
    with events.watch(job_id) as finished:
        while True:
            job = await Job.get(id=job.id)
            remaining = deadline - time.monotonic()
            if job.status in FINISHED or remaining <= 0:
                return job
            try:
                await asyncio.wait_for(finished.wait(), min(remaining, events.poll_interval))
            except asyncio.TimeoutError:
                pass
            finished.clear()


async def finish_job(ctx: ServiceContext, job: Job, status: str, result: dict | None, outcome: str,
                     *, only_from: tuple[str, ...] = ("queued", "running")) -> bool:
    """Record the end of a job once: a compare-and-set on its status, so a redelivered or swept job
    never overwrites a result already recorded. Returns whether this call recorded it."""
    updated = await Job.filter(id=job.id, status__in=only_from).update(
        status=status, result=result, outcome=outcome, finished_at=now(), changes=None)
    if updated:
        job.status, job.result, job.outcome = status, result, outcome
        await publish_job_finished(ctx.redis, str(job.id))
    return bool(updated)


async def sweep_stuck_jobs(ctx: ServiceContext) -> int:
    """Fail every job past its deadline as `worker_lost`, so polling always ends."""
    stuck = await Job.filter(status__in=("queued", "running"), deadline__lt=now()).limit(1000)
    count = 0
    for job in stuck:
        if await finish_job(ctx, job, "failed", job.result, "worker_lost"):
            log.warning("job %s (%s) failed as worker_lost after its deadline", job.id, job.type)
            count += 1
    return count
