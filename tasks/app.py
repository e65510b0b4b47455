"""The Celery application (`tasks.app:celery_app`), configured from the environment's settings."""
from __future__ import annotations

from celery.signals import worker_shutdown

from service.config import Settings
from tasks.celery_config import make_celery

celery_app = make_celery(Settings())

import tasks.health  # noqa: E402,F401 - registers the tasks on celery_app
import tasks.jobs  # noqa: E402,F401


@worker_shutdown.connect
def _close_worker_loop(**_: object) -> None:
    from tasks.loop import worker_loop

    worker_loop.stop()
