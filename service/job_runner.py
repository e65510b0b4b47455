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
from models.providers import ProviderRecord
from service.activation import JOB_APPLIERS
from service.checks import run_check
from service.context import ServiceContext
from service.db import DATABASE_UNAVAILABLE
from service.errors import CredentialsUnavailable
from service.metrics import record_check
from service.jobs import FINISHED, finish_job, now, unseal_changes
from service.job_events import publish_job_finished
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
    job = await Job.get_or_none(id=job_id)
    if job is None or job.status in FINISHED:
        return
    if job.deadline < now():
        await finish_job(ctx, job, "failed", None, "worker_lost")
        return
    attempt = job.attempts + 1
    claimed = await Job.filter(id=job.id, status=job.status, attempts=job.attempts).update(
        status="running", started_at=now(), attempts=attempt)
    if not claimed:
        return
    job.status, job.attempts = "running", attempt

    record = await ProviderRecord.get_or_none(id=job.provider_id, org=job.org)
    if record is None:
        await _finish(ctx, job, "failed", None, "provider_deleted")
        return
    try:
        changes = unseal_changes(ctx, job)
        target = target_of(ctx, record, changes)
    except CredentialsUnavailable:
        await _finish(ctx, job, "failed", None, "credentials_unavailable")
        return
    queue_wait = (now() - job.created_at).total_seconds() if attempt == 1 else None
    started = time.monotonic()
    check = await run_check(target, ctx.http, ctx.settings)
    await record_check(ctx.redis, record.kind, "ok" if check.ok else check.error.code,
                       time.monotonic() - started, job.type, queue_wait=queue_wait)
    if job.type == "test":
        # A test changes nothing but the job, so one compare-and-set records it; no transaction, no audit
        # (the audit log is for mutations).
        status = "succeeded"

        def record():
            return Job.filter(id=job.id, status="running", attempts=attempt).update(
                status=status, result=check.as_dict(), outcome="passed" if check.ok else "check_failed",
                finished_at=now(), changes=None)

        if not await _while_database_down(job, record):
            return
        await publish_job_finished(ctx.redis, str(job.id))
        return
    applier = JOB_APPLIERS[job.type]

    async def apply() -> tuple[str, str]:
        async with in_transaction():
            status, outcome = await applier(ctx, job, check, changes)
            recorded = await Job.filter(id=job.id, status="running", attempts=attempt).update(
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
            return
        except (IntegrityError, OperationalError) as exc:  # a concurrent activation won the race; redo
            log.info("job %s: retrying its transaction after %s", job.id, type(exc).__name__)
    else:
        await _finish(ctx, job, "failed", check.as_dict(), "conflict")
        return
    if status == "succeeded":
        await announce_provider_change(ctx, job.org)
    await publish_job_finished(ctx.redis, str(job.id))


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
