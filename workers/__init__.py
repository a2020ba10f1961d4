"""Celery workers: claim, launch and supervise `spell` training processes, relay their events."""

from workers.celery import app as celery_app

__all__ = ["celery_app"]
