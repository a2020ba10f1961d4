"""The sweeper's rules, at fixed times (no waiting), and the periodic task on a real worker."""

from datetime import timedelta

from django.utils import timezone

from webapp.fleet import services
from webapp.fleet.models import Worker
from webapp.runs.models import Run
from workers.celery import app
from workers.fleet_tasks import sweep as sweep_task


def make_run(team, host, state=Run.State.RUNNING, heartbeat_at=None):
    return Run.objects.create(team=team, name="r", config={}, state=state, worker_hostname=host,
                              heartbeat_at=heartbeat_at or timezone.now())


def test_only_silent_workers_go_offline(people, settings):
    settings.RUN_MAX_AUTO_REQUEUES = 0
    now = timezone.now()
    services.heartbeat("fresh@x", queues=["cpu"], pid=1, now=now - timedelta(seconds=10))
    services.heartbeat("stale@x", queues=["cpu"], pid=2, now=now - timedelta(seconds=31))
    fresh_run, stale_run = make_run(people.team, "fresh@x"), make_run(people.team, "stale@x")

    result = services.sweep(now)

    assert result["offline"] == ["stale@x"]
    assert result["lost"] == [stale_run.pk]
    fresh_run.refresh_from_db()
    assert fresh_run.state == Run.State.RUNNING
    assert services.sweep(now)["offline"] == []  # once


def test_a_run_on_an_unknown_worker_with_a_stale_heartbeat_is_lost(people, settings):
    settings.RUN_MAX_AUTO_REQUEUES = 0
    orphan = make_run(people.team, "never-seen@x", heartbeat_at=timezone.now() - timedelta(minutes=5))
    alive = make_run(people.team, "never-seen-2@x")

    assert services.sweep()["lost"] == [orphan.pk]
    alive.refresh_from_db()
    assert alive.state == Run.State.RUNNING


def test_a_worker_that_comes_back_is_online_and_draining_becomes_disabled(people):
    now = timezone.now()
    services.heartbeat("w@x", queues=["cpu"], pid=1, now=now - timedelta(minutes=5))
    services.sweep(now)
    assert Worker.objects.get().state == Worker.State.OFFLINE

    services.heartbeat("w@x", queues=["cpu"], pid=1)
    assert Worker.objects.get().state == Worker.State.ONLINE

    Worker.objects.update(state=Worker.State.DRAINING)
    services.heartbeat("w@x", queues=[], pid=1)
    assert Worker.objects.get().state == Worker.State.DISABLED


def test_the_beat_schedule_has_the_sweeper():
    entry = app.conf.beat_schedule["fleet-sweep"]
    assert entry["task"] == "workers.fleet.sweep"
    assert entry["options"]["queue"] == "default"


def test_the_sweep_task_runs_on_a_real_worker(celery_worker_process):
    Worker.objects.create(hostname="old@x", state=Worker.State.ONLINE, last_heartbeat=timezone.now() - timedelta(hours=1))

    result = sweep_task.apply_async(queue="default").get(timeout=60)

    assert "old@x" in result["offline"]
    assert Worker.objects.get(hostname="old@x").state == Worker.State.OFFLINE


def test_known_queues_include_admin_defined_ones(db):
    Worker.objects.create(hostname="w@x", queues=["gpu.a100"], configured_queues=["gpu.a100", "cpu"])

    assert "gpu.a100" in services.known_queues()
    assert "cpu" in services.known_queues()
