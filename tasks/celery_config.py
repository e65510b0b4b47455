"""Celery settings derived from the service's settings: one place for broker, reliability and schedule."""
from __future__ import annotations

from datetime import timedelta

from celery import Celery
from kombu import Exchange, Queue

from service.config import Settings

RUN_JOB = "llmp.run_job"
SWEEP_STUCK_JOBS = "llmp.sweep_stuck_jobs"
HEARTBEAT = "llmp.heartbeat"
HEALTH_SWEEP = "llmp.health_sweep"
HEALTH_CHUNK = "llmp.health_check_chunk"


def health_queue(settings: Settings) -> str:
    return f"{settings.queue_name}.health"


def celery_settings(settings: Settings) -> dict:
    config = {
        "broker_url": settings.effective_broker_url,
        "task_default_queue": settings.queue_name,
        # Health chunks have a queue of their own, which every worker consumes too: a test or an activation
        # never waits in the broker behind a large sweep's chunks.
        "task_queues": tuple(Queue(name, Exchange(name, type="direct"), routing_key=name)
                             for name in (settings.queue_name, health_queue(settings))),
        "task_routes": {HEALTH_CHUNK: {"queue": health_queue(settings)}},
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_ignore_result": True,  # job state lives in the database
        "result_backend": None,
        # Acknowledge after the task ran, and give a message back when the process running it dies:
        # a lost worker's job is redelivered (and the job runner makes redelivery harmless).
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 4,
        "worker_send_task_events": False,
        "worker_hijack_root_logger": False,
        "broker_connection_retry_on_startup": True,
        "broker_connection_timeout": 2,
        # Publishing from the API: fail fast (then 503) instead of hanging on a dead broker.
        "task_publish_retry": True,
        "task_publish_retry_policy": {"max_retries": 2, "interval_start": 0, "interval_step": 0.2,
                                      "interval_max": 0.5},
        "beat_scheduler": "tasks.scheduler:LivenessScheduler",
        "beat_schedule": {
            "sweep-stuck-jobs": {"task": SWEEP_STUCK_JOBS, "schedule": timedelta(seconds=15),
                                 "options": {"expires": 15}},
            "worker-heartbeat": {"task": HEARTBEAT, "schedule": timedelta(seconds=60), "options": {"expires": 60}},
            "health-sweep": {"task": HEALTH_SWEEP, "schedule": timedelta(seconds=settings.health_interval),
                             "options": {"expires": settings.health_interval}},
        },
    }
    if settings.uses_embedded_broker:
        folder = settings.broker_folder
        for sub in ("queue", "processed", "control"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        config["broker_transport"] = "tasks.embedded_broker:Transport"
        config["broker_transport_options"] = {
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            "processed_folder": str(folder / "processed"),
            "control_folder": str(folder / "control"),  # kombu's default is relative to the working dir
            "store_processed": False,
            "polling_interval": 0.1,  # the folder is polled; 1 s (the default) would add up to 1 s per job
        }
    else:
        visibility = settings.effective_visibility_timeout
        config["broker_transport_options"] = {
            # Longer than any job may run, so an unacknowledged message is only redelivered when its
            # worker is really gone (see Settings.visibility_timeout).
            "visibility_timeout": visibility,
            # How often a worker looks for such messages: kombu's default scans every ~100 s
            # (10 s x throttle 10); one ZRANGE every 10 s at most bounds the redelivery delay.
            "unacked_restore_interval": max(1, min(10, int(visibility / 4))),
            "unacked_restore_throttle": 1,
            "socket_connect_timeout": 2,
            "socket_timeout": 10,
            "retry_on_timeout": True,
            "health_check_interval": 10,
        }
    return config


def make_celery(settings: Settings) -> Celery:
    app = Celery("llm_providers")
    app.conf.update(celery_settings(settings))
    return app
