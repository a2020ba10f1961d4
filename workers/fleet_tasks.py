"""Celery tasks: fleet. The periodic sweeper and reconciler (Celery beat: their schedule is the one
in settings.CELERY_BEAT_SCHEDULE), and the worker's heartbeat thread wired to the worker's life
cycle (this module is imported by every worker, so the signals are connected wherever a worker runs)."""

from __future__ import annotations

from celery import signals

from workers import heartbeat
from webapp import task_names
from workers.celery import app


@app.task(name=task_names.FLEET_SWEEP, ignore_result=False)
def sweep() -> dict:
    """Silent workers -> offline, their runs -> LOST, LOST runs -> requeued (up to N times)."""
    from webapp.fleet import services

    return services.sweep()


@app.task(name=task_names.FLEET_RECONCILE, ignore_result=False)
def reconcile() -> dict:
    """Unclaimed QUEUED runs / PENDING ingests -> their tasks sent again; stuck ingests -> FAILED."""
    from webapp.reconcile import reconcile as run_reconcile

    return run_reconcile()


@signals.worker_ready.connect
def _start_heartbeat(sender=None, **kwargs):
    heartbeat.start(sender)


@signals.worker_shutdown.connect
def _stop_heartbeat(sender=None, **kwargs):
    heartbeat.stop()
