"""Celery tasks: ingest."""

from workers.celery import app  # noqa: F401
