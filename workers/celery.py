"""The Celery application. Configuration comes from Django settings (CELERY_* names).

Queues: `default` (ingest, housekeeping, the sweeper), `cpu` (CPU runs), `gpu.<name>` (GPU runs).
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")

app = Celery("spell_studio")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["workers"], related_name="tasks")
