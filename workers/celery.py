"""The Celery application. Configuration comes from Django settings (CELERY_* names).

Queues: `default` (ingest, housekeeping, the sweeper), `cpu` (CPU runs), `gpu.<name>` (GPU runs).
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")

app = Celery("spell_studio")
app.config_from_object("django.conf:settings", namespace="CELERY")
# One module per room; each holds thin tasks that call domain code.
app.conf.include = ["workers.tasks", "workers.ingest_tasks", "workers.run_tasks", "workers.fleet_tasks"]
