"""Celery tasks: fleet."""

from workers.celery import app  # noqa: F401
