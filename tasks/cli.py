"""`llm-providers worker` and `llm-providers beat`."""
from __future__ import annotations

import logging
import socket


def cmd_worker(args, settings) -> int:
    settings.validate_for_startup()
    from tasks.app import celery_app

    # Celery logs every task's success at INFO; under a burst those lines cost about a tenth of the
    # worker's time (bench/jobs.py: 500 jobs 3.85 s -> 3.35 s). The job rows and the llmp_* metrics carry
    # the same facts, and failures are still logged (WARNING and above).
    logging.getLogger("celery.app.trace").setLevel(logging.WARNING)

    # Threads, not prefork: checks are I/O-bound and share one event loop per process (tasks.loop),
    # so one process runs `worker_concurrency` checks at once at a few MB per thread.
    celery_app.worker_main(["worker", "--pool=threads", f"--concurrency={args.concurrency or settings.worker_concurrency}",
                            "--loglevel=INFO", "--without-gossip", "--without-mingle",
                            "-n", f"llmp-{args.name or socket.gethostname()}@%h"])
    return 0


def cmd_beat(args, settings) -> int:
    settings.validate_for_startup()
    from tasks.app import celery_app

    settings.data_path.mkdir(parents=True, exist_ok=True)
    celery_app.start(["beat", "--loglevel=INFO", "-s", str(settings.data_path / "celerybeat-schedule")])
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("worker", help="run a Celery worker (checks, activations, health sweeps)")
    p.add_argument("--concurrency", type=int, default=None)
    p.add_argument("--name", default=None)
    p.set_defaults(func=cmd_worker)
    sub.add_parser("beat", help="run the scheduler").set_defaults(func=cmd_beat)
