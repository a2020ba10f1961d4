"""A worker that restarts under the same name (docker's restart: same name, pid 1 again) within
WORKER_OFFLINE_AFTER_SECONDS never goes offline, so its heartbeat's boot id says the old process is
gone: its RUNNING runs become LOST (then requeued by the sweeper). And a run the worker says it no
longer supervises (its supervisor ended without writing how) is LOST too. Fixed times, no waiting."""

from datetime import timedelta

from django.utils import timezone

from webapp import task_names
from webapp.fleet import services
from webapp.fleet.models import Worker
from webapp.runs.models import Run
from workers import heartbeat as worker_heartbeat


def running(team, host, started_ago: float = 60.0) -> Run:
    now = timezone.now()
    return Run.objects.create(team=team, name="r", config={}, state=Run.State.RUNNING, worker_hostname=host,
                              attempt=1, started_at=now - timedelta(seconds=started_ago), heartbeat_at=now)


def test_a_new_boot_id_under_the_same_name_and_pid_loses_the_old_processes_runs(people, settings):
    settings.RUN_MAX_AUTO_REQUEUES = 3
    services.heartbeat("cpu@box", queues=["cpu"], pid=1, boot_id="boot-a")
    old = running(people.team, "cpu@box")
    services.heartbeat("cpu@box", queues=["cpu"], pid=1, boot_id="boot-a")  # same process: nothing changes
    old.refresh_from_db()
    assert old.state == Run.State.RUNNING

    just_claimed = running(people.team, "cpu@box", started_ago=1)  # by the new process, before its first beat
    services.heartbeat("cpu@box", queues=["cpu"], pid=1, boot_id="boot-b")

    old.refresh_from_db()
    just_claimed.refresh_from_db()
    assert old.state == Run.State.LOST and "cpu@box restarted" in old.error
    assert just_claimed.state == Run.State.RUNNING
    worker = Worker.objects.get(hostname="cpu@box")
    assert (worker.boot_id, worker.state) == ("boot-b", Worker.State.ONLINE)
    assert services.sweep()["requeued"] == [old.pk]
    old.refresh_from_db()
    assert (old.state, old.auto_requeues) == (Run.State.QUEUED, 1)


def test_a_run_the_worker_no_longer_supervises_is_lost_and_the_ones_it_does_are_kept(people, settings):
    settings.RUN_MAX_AUTO_REQUEUES = 0
    services.heartbeat("gpu@box", queues=["gpu.1"], pid=7, boot_id="b")
    mine, orphan, fresh = running(people.team, "gpu@box"), running(people.team, "gpu@box"), running(
        people.team, "gpu@box", started_ago=1)
    elsewhere = running(people.team, "other@box")

    services.heartbeat("gpu@box", queues=["gpu.1"], pid=7, boot_id="b", supervising=[mine.pk])

    states = dict(Run.objects.values_list("pk", "state"))
    assert states == {mine.pk: "RUNNING", orphan.pk: "LOST", fresh.pk: "RUNNING", elsewhere.pk: "RUNNING"}
    orphan.refresh_from_db()
    assert "no longer supervises this run" in orphan.error
    services.heartbeat("gpu@box", queues=["gpu.1"], pid=7, boot_id="b")  # None: not reported, nothing lost
    assert Run.objects.filter(state=Run.State.LOST).count() == 1


class FakeRequest:  # what Celery keeps per active task (weak-referenceable, like the real one)
    def __init__(self, task_name, args):
        self.task_name, self.args = task_name, args


def test_the_heartbeat_sends_its_boot_id_and_the_runs_its_active_tasks_supervise(db):
    from celery.worker import state

    requests = [FakeRequest(task_names.RUN_SPELL, [12]), FakeRequest(task_names.INGEST_CORPUS, [3]),
                FakeRequest(task_names.RUN_SPELL, ["5"])]
    for r in requests:
        state.active_requests.add(r)
    try:
        assert worker_heartbeat.supervised_runs() == [5, 12]
    finally:
        for r in requests:
            state.active_requests.discard(r)
    assert worker_heartbeat.supervised_runs() == []

    seen = {}
    beat = worker_heartbeat.Heartbeat("w@box", interval=1, supervising=lambda: [4])
    original = services.heartbeat
    try:
        services.heartbeat = lambda hostname, **kw: seen.update(kw)
        beat.beat()
    finally:
        services.heartbeat = original
    assert seen["boot_id"] == worker_heartbeat.BOOT_ID and len(seen["boot_id"]) == 32
    assert seen["supervising"] == [4]
