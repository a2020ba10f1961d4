"""Done means: a real worker appears on the fleet page within a heartbeat, is marked offline after it
is killed, and its RUNNING run becomes LOST (then requeued automatically, up to the limit)."""

from __future__ import annotations

import os
import signal
import time

import pytest
from django.utils import timezone

from tests.support import WorkerProcess, child_env
from tests.webapp.accounts.roles import make_people
from webapp.fleet import services
from webapp.fleet.models import Worker
from webapp.runs.models import Run


def wait_for(predicate, timeout=60.0, every=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"condition not met within {timeout}s")


@pytest.fixture
def short_heartbeat(settings):
    settings.WORKER_HEARTBEAT_SECONDS = 1
    settings.WORKER_OFFLINE_AFTER_SECONDS = 3
    return settings


@pytest.fixture
def worker(transactional_db, short_heartbeat):
    process = WorkerProcess(
        queues="default,cpu", name="fleet", env=child_env(WORKER_HEARTBEAT_SECONDS=1, WORKER_OFFLINE_AFTER_SECONDS=3)
    ).start()
    yield process
    process.stop()


def kill(process: WorkerProcess) -> None:
    os.killpg(process.process.pid, signal.SIGKILL)  # the worker and its pool children, no goodbye
    process.process.wait(timeout=30)


def running_run(team, hostname) -> Run:
    return Run.objects.create(
        team=team, name="long run", config={}, queue="cpu", state=Run.State.RUNNING,
        worker_hostname=hostname, started_at=timezone.now(), heartbeat_at=timezone.now(), attempt=1,
    )


def test_it_shows_a_live_worker_then_marks_it_offline_and_its_run_lost(client, worker, settings):
    settings.RUN_MAX_AUTO_REQUEUES = 0
    people = make_people()
    client.force_login(people.admin)

    row = wait_for(lambda: Worker.objects.filter(hostname=worker.hostname).first())
    assert row.state == Worker.State.ONLINE
    assert row.pid == worker.process.pid
    assert sorted(row.queues) == ["cpu", "default"]
    assert row.gpu_note.startswith("no GPU")  # this machine has no NVIDIA driver
    page = client.get("/fleet/")
    assert page.status_code == 200
    assert worker.hostname.encode() in page.content
    feed = client.get("/fleet/workers.json").json()
    assert [w["hostname"] for w in feed["workers"]] == [worker.hostname]
    assert feed["workers"][0]["state"] == "online"

    run = running_run(people.team, worker.hostname)
    wait_for(lambda: Worker.objects.get(hostname=worker.hostname).current_run_id == run.pk)

    kill(worker)
    wait_for(lambda: services.sweep()["offline"] == [worker.hostname], timeout=60, every=0.5)

    row.refresh_from_db()
    run.refresh_from_db()
    assert row.state == Worker.State.OFFLINE
    assert run.state == Run.State.LOST
    assert worker.hostname in run.error
    feed = client.get("/fleet/workers.json").json()
    assert feed["workers"][0]["state"] == "offline"
    assert b"Offline" in client.get("/fleet/").content


def test_it_requeues_the_lost_run_up_to_the_limit(client, worker, settings):
    settings.RUN_MAX_AUTO_REQUEUES = 1
    people = make_people()
    wait_for(lambda: Worker.objects.filter(hostname=worker.hostname).exists())
    run = running_run(people.team, worker.hostname)

    kill(worker)
    result = wait_for(lambda: (r := services.sweep())["offline"] and r, timeout=60, every=0.5)

    run.refresh_from_db()
    assert result["lost"] == [run.pk]
    assert result["requeued"] == [run.pk]
    assert run.state == Run.State.QUEUED
    assert run.auto_requeues == 1

    # Lost again: the limit is reached, so it stays LOST for an admin to requeue.
    Run.objects.filter(pk=run.pk).update(state=Run.State.RUNNING, worker_hostname=worker.hostname)
    second = services.sweep()
    run.refresh_from_db()
    assert second["lost"] == [run.pk]
    assert second["requeued"] == []
    assert run.state == Run.State.LOST


def test_a_cleanly_stopped_worker_says_it_is_offline_at_once(worker):
    wait_for(lambda: Worker.objects.filter(hostname=worker.hostname).exists())

    worker.stop()  # SIGTERM: warm shutdown, the worker_shutdown signal runs

    assert Worker.objects.get(hostname=worker.hostname).state == Worker.State.OFFLINE
