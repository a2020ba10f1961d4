"""Celery tasks: fleet. The periodic sweeper (Celery beat), and the worker's heartbeat thread
wired to the worker's life cycle (this module is imported by every worker, so the signals are
connected wherever a worker runs)."""

from __future__ import annotations

from celery import signals
from django.conf import settings

from workers import heartbeat
from workers.celery import app

SWEEP_SECONDS = float(getattr(settings, "FLEET_SWEEP_SECONDS", 10))


@app.task(name="workers.fleet.sweep", ignore_result=False)
def sweep() -> dict:
    """Silent workers -> offline, their runs -> LOST, LOST runs -> requeued (up to N times)."""
    from webapp.fleet import services

    return services.sweep()


app.conf.beat_schedule = {
    **(app.conf.beat_schedule or {}),
    "fleet-sweep": {
        "task": "workers.fleet.sweep",
        "schedule": SWEEP_SECONDS,
        # A sweep that waited longer than one period is useless: the next one is already queued.
        "options": {"queue": "default", "expires": SWEEP_SECONDS},
    },
}


@signals.worker_ready.connect
def _start_heartbeat(sender=None, **kwargs):
    heartbeat.start(sender)


@signals.worker_shutdown.connect
def _stop_heartbeat(sender=None, **kwargs):
    heartbeat.stop()
