"""A launch while the broker is unreachable (a real connection to a port nobody listens on): no 500;
the run is saved QUEUED, the page (or the API's `warning`) says that no worker has it yet and that it
is sent once the broker is back, and the reconciler does send it then."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import redis
from celery import Celery
from django.conf import settings

from webapp import reconcile, taskqueue
from webapp.accounts.models import ApiToken
from webapp.runs.models import Run

from tests.webapp.runs.test_launch import post_data

pytestmark = pytest.mark.django_db(transaction=True)  # the task is sent when the launch commits


@pytest.fixture
def broker_down(monkeypatch):
    down = Celery("unreachable", broker="redis://127.0.0.1:1/0")
    down.conf.broker_connection_timeout = 1
    monkeypatch.setattr(taskqueue, "app", down)
    return down


def queued_tasks(queue="cpu") -> int:
    return redis.Redis.from_url(settings.REDIS_URL).llen(queue)


def test_a_launch_while_the_broker_is_down_keeps_the_run_queued_and_says_so(owner_client, corpus, model_entry,
                                                                              broker_down, monkeypatch):
    response = owner_client.post("/runs/new", post_data(corpus, model_entry), follow=True)

    run = Run.objects.get()
    assert response.status_code == 200 and response.redirect_chain == [(f"/runs/{run.pk}/", 302)]
    assert run.state == Run.State.QUEUED
    shown = [(m.level_tag, str(m)) for m in response.context["messages"]]
    assert len(shown) == 1 and shown[0][0] == "warning"
    assert "is saved as queued on cpu" in shown[0][1] and "broker (Redis) is unreachable" in shown[0][1]
    assert "sent automatically once the broker is back" in shown[0][1]
    assert "broker (Redis) is unreachable" in response.content.decode()  # on the run page
    assert queued_tasks("cpu") == 0

    monkeypatch.undo()  # the broker is back: the reconciler sends the unclaimed run
    result = reconcile.reconcile(now=run.queued_at + timedelta(seconds=reconcile.after_seconds() + 1))
    assert result["sent"]["runs"] == [run.pk]
    assert queued_tasks("cpu") == 1


def test_the_api_says_so_too(client, owner, corpus, model_entry, broker_down):
    _, raw = ApiToken.issue(owner, "script")
    response = client.post("/runs/api/runs", data=json.dumps({"name": "s", "corpus": corpus.pk, "model": model_entry.name}),
                           content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {raw}")

    assert response.status_code == 201
    assert response.json()["state"] == "QUEUED" and "broker (Redis) is unreachable" in response.json()["warning"]


def test_a_launch_with_the_broker_up_sends_the_task_and_warns_of_nothing(owner_client, corpus, model_entry):
    response = owner_client.post("/runs/new", post_data(corpus, model_entry), follow=True)

    assert [m.level_tag for m in response.context["messages"]] == ["success"]
    assert queued_tasks("cpu") == 1
