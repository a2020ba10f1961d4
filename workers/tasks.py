"""Celery tasks. They coordinate; the work lives in domain modules."""

from __future__ import annotations

import os
import socket

from webapp import task_names
from workers.celery import app


@app.task(name=task_names.PING)
def ping(payload: str = "ping") -> dict:
    """A round trip through the broker: the worker smoke test and /healthz use it."""
    return {"echo": payload, "host": socket.gethostname(), "pid": os.getpid()}
