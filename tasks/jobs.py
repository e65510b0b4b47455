"""Thin tasks: each hands its arguments to the service layer on the worker's event loop."""
from __future__ import annotations

from service.job_runner import execute_job
from service.jobs import sweep_stuck_jobs
from tasks.app import celery_app
from tasks.celery_config import RUN_JOB, SWEEP_STUCK_JOBS
from tasks.loop import worker_loop


@celery_app.task(name=RUN_JOB, acks_late=True, reject_on_worker_lost=True)
def run_job(job_id: str) -> None:
    worker_loop.run(execute_job, job_id)


@celery_app.task(name=SWEEP_STUCK_JOBS)
def sweep_jobs() -> int:
    return worker_loop.run(sweep_stuck_jobs)
