"""The workers' side of the one Celery application (webapp/taskqueue.py holds it: configured from
Django settings, CELERY_* names; the web app sends tasks through it by name). Here it learns which
modules define the tasks, so `celery -A workers worker` registers them.

Queues: `default` (ingest, housekeeping, the sweeper), `cpu` (CPU runs), `gpu.<name>` (GPU runs).
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")

from webapp.taskqueue import app  # noqa: E402 - after the settings module is named

# One module per room; each holds thin tasks that call domain code.
app.conf.include = ["workers.tasks", "workers.ingest_tasks", "workers.run_tasks", "workers.fleet_tasks"]

__all__ = ["app"]
