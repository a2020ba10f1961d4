"""Admin actions on a real worker through Celery control: drain, enable, add / remove a queue."""

import time

import pytest

from tests.support import WorkerProcess, child_env
from webapp.fleet.models import Worker
from workers.celery import app


def active_queues(hostname):
    replies = app.control.inspect(destination=[hostname], timeout=3).active_queues() or {}
    return sorted(q["name"] for q in replies.get(hostname, []))


def wait_for(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.2)
    raise AssertionError("condition not met")


@pytest.fixture
def worker(transactional_db, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    process = WorkerProcess(queues="default,cpu", name="actions", env=child_env(WORKER_HEARTBEAT_SECONDS=1)).start()
    yield process
    process.stop()


def test_drain_enable_and_queues(client, worker):
    from tests.webapp.accounts.roles import make_people

    client.force_login(make_people().admin)
    row = wait_for(lambda: Worker.objects.filter(hostname=worker.hostname).first())

    client.post(f"/fleet/workers/{row.pk}/queues/add/", {"queue": "gpu.8"})
    assert active_queues(worker.hostname) == ["cpu", "default", "gpu.8"]

    client.post(f"/fleet/workers/{row.pk}/queues/remove/", {"queue": "cpu"})
    assert active_queues(worker.hostname) == ["default", "gpu.8"]

    client.post(f"/fleet/workers/{row.pk}/drain/")
    row.refresh_from_db()
    assert active_queues(worker.hostname) == []
    assert row.state == Worker.State.DISABLED  # no current run: drained at once

    client.post(f"/fleet/workers/{row.pk}/enable/")
    row.refresh_from_db()
    assert active_queues(worker.hostname) == ["default", "gpu.8"]
    assert row.state == Worker.State.ONLINE


def test_bad_queue_names_and_offline_workers_get_a_message(admin_client, people):
    row = Worker.objects.create(hostname="gone@x", queues=["cpu"], configured_queues=["cpu"], state=Worker.State.OFFLINE)

    bad = admin_client.post(f"/fleet/workers/{row.pk}/queues/add/", {"queue": "no spaces!"}, follow=True)
    offline = admin_client.post(f"/fleet/workers/{row.pk}/queues/add/", {"queue": "gpu.1"}, follow=True)
    missing = admin_client.post(f"/fleet/workers/{row.pk}/queues/remove/", {"queue": "nope"}, follow=True)

    assert b"A queue name is 1-100 characters" in bad.content
    assert b"is offline" in offline.content
    assert b"has no queue nope" in missing.content


def test_forget_only_offline(admin_client, people):
    online = Worker.objects.create(hostname="up@x", state=Worker.State.ONLINE)
    offline = Worker.objects.create(hostname="down@x", state=Worker.State.OFFLINE)

    admin_client.post(f"/fleet/workers/{online.pk}/forget/")
    admin_client.post(f"/fleet/workers/{offline.pk}/forget/")

    assert list(Worker.objects.values_list("hostname", flat=True)) == ["up@x"]


def test_actions_are_post_only_and_admin_only(client, people):
    row = Worker.objects.create(hostname="w@x")
    client.force_login(people.owner)

    assert client.get(f"/fleet/workers/{row.pk}/drain/").status_code == 405
    assert client.post(f"/fleet/workers/{row.pk}/drain/").status_code == 403
    assert client.post("/fleet/workers/999/drain/").status_code == 403
