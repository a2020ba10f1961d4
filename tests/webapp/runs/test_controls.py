"""Cancel, pause, resume from the run page (POST only), and the fleet's requeue / mark_lost."""

from __future__ import annotations

import pytest
import redis
from django.conf import settings

from webapp.runs import services
from webapp.runs.models import Run

from tests.support import fake_checkpoint


def queued_tasks(queue="cpu") -> int:
    return redis.Redis.from_url(settings.REDIS_URL).llen(queue)


def set_state(run, state, **extra):
    Run.objects.filter(pk=run.pk).update(state=state, **extra)
    run.refresh_from_db()


def messages_of(response):
    return [str(m) for m in response.context["messages"]]


def test_it_cancels_a_queued_run_at_once(owner_client, run):
    response = owner_client.post(f"/runs/{run.pk}/cancel", follow=True)

    run.refresh_from_db()
    assert run.state == "CANCELLED" and run.finished_at is not None
    assert messages_of(response) == ["Run cancelled."]


def test_it_asks_the_worker_to_cancel_a_running_run(owner_client, run):
    set_state(run, Run.State.RUNNING)

    owner_client.post(f"/runs/{run.pk}/cancel")

    run.refresh_from_db()
    assert (run.state, run.requested_action) == ("RUNNING", "cancel")


def test_it_asks_the_worker_to_pause_a_running_run(owner_client, run):
    set_state(run, Run.State.RUNNING)

    response = owner_client.post(f"/runs/{run.pk}/pause", follow=True)

    run.refresh_from_db()
    assert (run.state, run.requested_action) == ("RUNNING", "pause")
    assert "checkpoints after the current step" in messages_of(response)[0]


@pytest.mark.parametrize("state", ["QUEUED", "SUCCEEDED", "PAUSED"])
def test_it_explains_why_a_run_cannot_be_paused(owner_client, run, state):
    set_state(run, state)

    response = owner_client.post(f"/runs/{run.pk}/pause", follow=True)

    run.refresh_from_db()
    assert run.state == state and run.requested_action == ""
    assert messages_of(response) == [f"Only a running run can be paused (this one is {state.lower()})."]


def test_it_does_not_cancel_a_finished_run(owner_client, run):
    set_state(run, Run.State.SUCCEEDED)

    response = owner_client.post(f"/runs/{run.pk}/cancel", follow=True)

    assert Run.objects.get(pk=run.pk).state == "SUCCEEDED"
    assert messages_of(response) == ["A succeeded run cannot be cancelled."]


def test_it_resumes_a_paused_run_as_a_new_queued_attempt(owner_client, run, django_capture_on_commit_callbacks):
    set_state(run, Run.State.PAUSED, attempt=1)
    fake_checkpoint(run.path, 4)
    redis.Redis.from_url(settings.REDIS_URL).delete("cpu")

    with django_capture_on_commit_callbacks(execute=True):
        response = owner_client.post(f"/runs/{run.pk}/resume", follow=True)

    run.refresh_from_db()
    assert run.state == "QUEUED" and run.attempt == 1  # the worker starts attempt 2 when it claims it
    assert queued_tasks("cpu") == 1
    assert messages_of(response) == ["Resumed from checkpoint step-000004: queued on cpu."]


def test_it_does_not_resume_a_running_run(owner_client, run):
    set_state(run, Run.State.RUNNING)

    response = owner_client.post(f"/runs/{run.pk}/resume", follow=True)

    assert Run.objects.get(pk=run.pk).state == "RUNNING"
    assert "cannot" not in messages_of(response)[0] and "Only a paused" in messages_of(response)[0]


@pytest.mark.parametrize("action", ["cancel", "pause", "resume"])
def test_it_refuses_get(owner_client, run, action):
    assert owner_client.get(f"/runs/{run.pk}/{action}").status_code == 405


@pytest.mark.parametrize("who,status", [("outsider", 404), ("annotator", 403)])
def test_it_refuses_users_who_may_not_control_the_run(client, run, who, status, request):
    client.force_login(request.getfixturevalue(who))

    assert client.post(f"/runs/{run.pk}/cancel").status_code == status
    assert Run.objects.get(pk=run.pk).state == "QUEUED"


def test_mark_lost_and_requeue_for_the_fleet_sweeper(run, settings, django_capture_on_commit_callbacks):
    settings.RUN_MAX_AUTO_REQUEUES = 1
    set_state(run, Run.State.RUNNING)

    assert services.mark_lost(run, "Worker w1 is offline.") is True
    assert services.mark_lost(run) is False  # only a RUNNING run becomes LOST
    run.refresh_from_db()
    assert (run.state, run.error) == ("LOST", "Worker w1 is offline.")

    with django_capture_on_commit_callbacks(execute=True):
        assert services.requeue(run, auto=True) is True
    run.refresh_from_db()
    assert (run.state, run.auto_requeues) == ("QUEUED", 1)

    set_state(run, Run.State.LOST)
    assert services.requeue(run, auto=True) is False  # RUN_MAX_AUTO_REQUEUES reached
    assert services.requeue(run) is True  # an admin may still requeue by hand
    assert Run.objects.get(pk=run.pk).state == "QUEUED"
