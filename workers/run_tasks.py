"""Celery tasks: run."""

from workers.celery import app  # noqa: F401
