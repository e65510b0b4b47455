"""Runs one job in a worker: claim it, check live, apply the outcome and record it in one transaction.

Idempotent: a redelivered job that already ended does nothing; a claim is a compare-and-set on the
job's status and attempt count, so two deliveries never both apply.
"""
from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta

from tortoise.exceptions import DBConnectionError, IntegrityError, OperationalError
from tortoise.transactions import in_transaction

from models.audit import AuditEntry
from models.jobs import Job
from service.activation import JOB_APPLIERS
from service.checks import run_check
from service.context import ServiceContext
from service.db import DATABASE_UNAVAILABLE
from service.errors import CredentialsUnavailable
from service.metrics import record_check
from service.jobs import FINISHED, finish_job, now, unseal_changes
from service.job_events import job_finished_event
from service.job_sql import claim_queued, load_provider, record_result
from service.records import target_of
from service.resolve import announce_provider_change

log = logging.getLogger("llmp.jobs")
APPLY_ATTEMPTS = 5
# A database that is stopping, stopped or starting: recording a check's result is tried again until the job's
# deadline (then the sweeper ends it as worker_lost), so a database blip does not throw the result away.
_DB_DOWN = (*DATABASE_UNAVAILABLE, DBConnectionError, OSError)


class _Superseded(Exception):
    """The job was recorded by someone else (the sweeper) while this run checked it."""


async def execute_job(ctx: ServiceContext, job_id: str) -> None:
    job = await claim_queued(job_id) or await _claim_again(ctx, job_id)
    if job is None:
        return
    if job.deadline < now():  # it waited in the queue past its deadline; its caller stopped waiting
        await finish_job(ctx, job, "failed", None, "worker_lost", only_from=("running",))
        return
    record = await load_provider(job)
    if record is None:
        await _finish(ctx, job, "failed", None, "provider_deleted")
        return
    try:
        changes = unseal_changes(ctx, job)
        target = target_of(ctx, record, changes)
    except CredentialsUnavailable:
        await _finish(ctx, job, "failed", None, "credentials_unavailable")
        return
    queue_wait = (now() - job.created_at).total_seconds() if job.attempts == 1 else None
    started = time.monotonic()
    check = await run_check(target, ctx.http, ctx.settings)
    seconds = time.monotonic() - started
    recorded = False
    try:
        if job.type == "test":
            # A test changes nothing but the job, so one compare-and-set records it; no transaction, no audit
            # (the audit log is for mutations).
            outcome = "passed" if check.ok else "check_failed"
            recorded = await _while_database_down(job, lambda: record_result(job, "succeeded", check.as_dict(),
                                                                             outcome))
        else:
            recorded = await _apply(ctx, job, check, changes)
    finally:
        # The check's metrics and, once recorded, the job's completion event: one Redis round trip.
        await record_check(ctx.redis, record.kind, "ok" if check.ok else check.error.code, seconds, job.type,
                           queue_wait=queue_wait, announce=job_finished_event(str(job.id)) if recorded else None)


async def _claim_again(ctx: ServiceContext, job_id: str) -> Job | None:
    """A job that is no longer queued: a redelivery of one whose worker was lost (claimed again with a
    compare-and-set on its status and attempt count, so two deliveries never both run it), or one that
    already ended (nothing to do)."""
    job = await Job.get_or_none(id=job_id)
    if job is None or job.status in FINISHED:
        return None
    if job.deadline < now():
        await finish_job(ctx, job, "failed", None, "worker_lost")
        return None
    attempt = job.attempts + 1
    claimed = await Job.filter(id=job.id, status=job.status, attempts=job.attempts).update(
        status="running", started_at=now(), attempts=attempt)
    if not claimed:
        return None
    job.status, job.attempts = "running", attempt
    return job


async def _apply(ctx: ServiceContext, job: Job, check, changes: dict) -> bool:
    """Apply an activation or update job's outcome and record it in one transaction; whether it was
    recorded here."""
    applier = JOB_APPLIERS[job.type]

    async def apply() -> tuple[str, str]:
        async with in_transaction():
            status, outcome = await applier(ctx, job, check, changes)
            recorded = await Job.filter(id=job.id, status="running", attempts=job.attempts).update(
                status=status, result=check.as_dict(), outcome=outcome, finished_at=now(), changes=None)
            if not recorded:
                raise _Superseded
            await _audit(job, outcome, check)
        return status, outcome

    for _ in range(APPLY_ATTEMPTS):
        try:
            status, outcome = await _while_database_down(job, apply)
            break
        except _Superseded:
            log.warning("job %s was ended elsewhere while it ran; its result is discarded", job.id)
            return False
        except (IntegrityError, OperationalError) as exc:  # a concurrent activation won the race; redo
            log.info("job %s: retrying its transaction after %s", job.id, type(exc).__name__)
    else:
        await _finish(ctx, job, "failed", check.as_dict(), "conflict")
        return False
    if status == "succeeded":
        await announce_provider_change(ctx, job.org)
    return True


async def _while_database_down(job: Job, operation):
    """`await operation()`, tried again while the database is unreachable, until the job's deadline. Safe to
    repeat: each attempt is one transaction or one compare-and-set on the job's status and attempt."""
    delay = 0.2
    while True:
        try:
            return await operation()
        except _DB_DOWN as exc:
            if now() + timedelta(seconds=delay) >= job.deadline:
                raise
            log.warning("job %s: database unavailable (%s); recording its result again in %.1f s",
                        job.id, type(exc).__name__, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


async def _finish(ctx: ServiceContext, job: Job, status: str, result, outcome: str) -> None:
    if await finish_job(ctx, job, status, result, outcome, only_from=("running",)):
        await _audit(job, outcome, None)


async def _audit(job: Job, outcome: str, check) -> None:
    details = {"job_id": str(job.id)}
    if check is not None and not check.ok:
        details["check_error"] = check.error.code
    await AuditEntry.create(org=job.org, actor=job.requested_by, actor_role=job.requested_role, action=job.type,
                            provider_id=job.provider_id, outcome=outcome, details=details)
