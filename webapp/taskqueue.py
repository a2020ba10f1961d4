"""The project's one Celery application and the web app's side of the task queue. Tasks are defined
by the workers (workers/*_tasks.py, registered on this same app by workers/celery.py) and sent from
here by name (webapp/task_names.py), so the web app never imports the workers (the dependency runs
spell <- webapp <- workers). Configured from Django settings (CELERY_* names)."""

from __future__ import annotations

from typing import Any

from celery import Celery

app = Celery("spell_studio")
app.config_from_object("django.conf:settings", namespace="CELERY")

from webapp.task_names import INGEST_CORPUS, INGEST_EVAL_SET, RUN_SPELL  # noqa: F401 (callers' names)


def send(name: str, args: list[Any], queue: str, **options: Any):
    """Queue the task called `name` on `queue`."""
    return app.send_task(name, args=args, queue=queue, **options)
