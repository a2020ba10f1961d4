"""Celery tasks: runs. Thin: the work lives in workers/supervisor.py and webapp/runs/services.py.

`run_spell` occupies one worker slot for the whole run (concurrency = run slots). It is acked
late, so a task lost with its worker is redelivered; the redelivered task finds the run already
claimed (or LOST, requeued by the sweeper as a new task) and exits.
"""

from __future__ import annotations

from webapp import task_names
from workers.celery import app

QUOTA_RETRY_SECONDS = 15


@app.task(name=task_names.RUN_SPELL, bind=True, acks_late=True, ignore_result=False)
def run_spell(self, run_id: int) -> dict:
    from workers.supervisor import supervise

    result = supervise(int(run_id), hostname=self.request.hostname or "")
    if result.get("retry"):
        # The team is at its concurrent-run quota: wait in the broker, not in a worker slot.
        raise self.retry(countdown=QUOTA_RETRY_SECONDS, max_retries=None)
    return result


@app.task(name=task_names.RUN_RETENTION)
def apply_run_retention() -> dict:
    """Housekeeping (beat, `default` queue): prune old checkpoints per RUN_RETENTION_DAYS."""
    from webapp.runs.services import apply_retention

    return apply_retention()
