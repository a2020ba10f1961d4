"""Fault: the broker restarts (the embedded default's Redis keeps nothing across a restart) while a
run is QUEUED and an evaluation-set upload is PENDING, before any worker took their tasks.

A private redis-server without persistence stands in for the embedded one (the same loss: every key,
so every queued task message, is gone). Expected: after the restart both queues are empty; the
reconciler sends the tasks of the QUEUED run and of the PENDING ingest again (once: its back-off
holds the next round); a worker started afterwards ingests the set and runs the run to its end;
nothing is lost, nothing stuck.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.proofs.conftest import assert_checkpoint_loads, assert_nothing_lost, launch_tiny, run_row, state_of, wait_for
from tests.proofs.private_redis import PrivateBrokerWorker, private_app
from tests.support import REPO, child_env


@pytest.fixture
def broker(private_redis, monkeypatch, settings):
    """The web app's task queue on the private Redis (as the embedded default is the only one)."""
    from webapp import taskqueue

    monkeypatch.setattr(taskqueue, "app", private_app(private_redis.url))
    settings.RECONCILE_AFTER_SECONDS = 0  # every QUEUED / PENDING item is due at once
    return private_redis


def test_queued_work_is_sent_again_after_the_broker_lost_it(world, broker):
    from webapp import reconcile
    from webapp.corpora import services as corpora
    from webapp.corpora.models import EvalSet
    from webapp.runs.models import Run

    queues = redis.Redis.from_url(broker.url)
    run = launch_tiny(world, 2)
    upload = SimpleUploadedFile("towns.jsonl", (REPO / "samples" / "eval" / "heldout_towns_qa.jsonl").read_bytes())
    eval_set = corpora.create_eval_set_upload(world["team"], "Towns", upload, user=world["owner"])
    assert (queues.llen("cpu"), queues.llen("default")) == (1, 1)

    broker.stop()
    broker.start()  # the same address, nothing kept
    assert (queues.llen("cpu"), queues.llen("default")) == (0, 0)
    assert state_of(run) == Run.State.QUEUED and EvalSet.objects.get(pk=eval_set.pk).status == EvalSet.Status.PENDING

    backoff = reconcile.Backoff(queues)  # its keys live in the same Redis, as in the embedded default
    result = reconcile.reconcile(backoff=backoff)
    assert result["sent"] == {"runs": [run.pk], "corpora": [], "eval_sets": [eval_set.pk]}
    assert reconcile.reconcile(backoff=backoff)["sent"] == {"runs": [], "corpora": [], "eval_sets": []}  # held
    assert (queues.llen("cpu"), queues.llen("default")) == (1, 1)

    env = child_env(RUNS_ROOT=world["runs_root"], WORKER_HEARTBEAT_SECONDS=1, REDIS_URL=broker.url)
    worker = PrivateBrokerWorker(broker.url, queues="default,cpu", name="afterloss", env=env).start()
    try:
        wait_for(lambda: EvalSet.objects.get(pk=eval_set.pk).status not in (EvalSet.Status.PENDING, EvalSet.Status.INGESTING),
                 "the evaluation set to be read", logs=[worker])
        ingested = EvalSet.objects.get(pk=eval_set.pk)
        assert ingested.status == EvalSet.Status.READY and ingested.items == 100, ingested.error
        wait_for(lambda: state_of(run) in Run.TERMINAL, "the run to end", logs=[worker])
        row = run_row(run)
        assert row.state == Run.State.SUCCEEDED and row.attempt == 1, row.error
        assert_nothing_lost(run)
        assert_checkpoint_loads(Path(row.run_dir), step=2)
    finally:
        worker.stop()
