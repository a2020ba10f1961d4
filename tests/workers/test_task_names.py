"""One naming scheme for tasks: every task the workers register is named in webapp/task_names.py as
`workers.<area>.<action>`, and every name the web app sends or schedules is registered."""

from __future__ import annotations

import importlib
import re

from django.conf import settings

from webapp import task_names
from workers.celery import app


def registered() -> set[str]:
    for module in app.conf.include:
        importlib.import_module(module)
    return {name for name in app.tasks if not name.startswith("celery.")}


def test_every_registered_task_is_named_once_in_one_scheme():
    names = registered()

    assert names == set(task_names.ALL)
    assert all(re.fullmatch(r"workers\.[a-z]+\.[a-z_]+", n) for n in names), names
    assert len(set(task_names.ALL)) == len(task_names.ALL)


def test_the_beat_schedule_names_only_registered_tasks():
    names = registered()

    assert {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()} <= names
