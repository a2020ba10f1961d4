"""The reconciler (webapp/reconcile.py), called directly at fixed times: unclaimed QUEUED runs and
PENDING ingests get their task again (backing off), runs of a team at quota wait, a duplicate task is
harmless (the atomic claims), ingests stuck INGESTING past the deadline fail clearly; and it is on
the one beat schedule."""

from __future__ import annotations

import ast
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from webapp import reconcile as rc
from webapp import task_names, taskqueue
from webapp.accounts.models import Team
from webapp.corpora.models import Corpus, Document, EvalSet
from webapp.runs.models import Run

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def team(db):
    return Team.objects.create(name="Lab", slug="lab", concurrent_run_quota=2)


@pytest.fixture
def sent(monkeypatch):
    calls = []
    monkeypatch.setattr(taskqueue, "send", lambda name, args, queue, **kw: calls.append((name, args, queue)))
    return calls


def run_in(team, state=Run.State.QUEUED, queued_ago=0.0, queue="cpu"):
    return Run.objects.create(team=team, name="r", config={}, state=state, queue=queue,
                              queued_at=timezone.now() - timedelta(seconds=queued_ago))


def aged(model, ago: float, **fields):
    row = model.objects.create(**fields)
    model.objects.filter(pk=row.pk).update(created_at=timezone.now() - timedelta(seconds=ago))
    return row


def test_it_sends_unclaimed_runs_and_ingests_again_and_backs_off(team, sent, settings):
    settings.RECONCILE_AFTER_SECONDS = 60
    old, fresh = run_in(team, queued_ago=90, queue="gpu.1"), run_in(team, queued_ago=10)
    run_in(team, state=Run.State.RUNNING, queued_ago=900)
    corpus = aged(Corpus, 90, team=team, name="c", status=Corpus.Status.PENDING)
    aged(Corpus, 10, team=team, name="new", status=Corpus.Status.PENDING)
    aged(Corpus, 90, team=team, name="done", status=Corpus.Status.READY)
    eval_set = aged(EvalSet, 90, team=team, name="e", status=EvalSet.Status.PENDING)
    now = timezone.now()

    result = rc.reconcile(now)

    assert result["sent"] == {"runs": [old.pk], "corpora": [corpus.pk], "eval_sets": [eval_set.pk]}
    assert sent == [(taskqueue.RUN_SPELL, [old.pk], "gpu.1"), (taskqueue.INGEST_CORPUS, [corpus.pk], "default"),
                    (taskqueue.INGEST_EVAL_SET, [eval_set.pk], "default")]
    # Backing off (in Redis, real time): not again while its hold lasts; again once it expired.
    assert rc.reconcile(now + timedelta(seconds=30))["sent"] == {"runs": [], "corpora": [], "eval_sets": []}
    backoff = rc.Backoff()
    assert 0 < backoff.client.ttl(f"{backoff.PREFIX}run:{old.pk}:hold") <= 60
    backoff.client.delete(f"{backoff.PREFIX}run:{old.pk}:hold")
    assert rc.reconcile(now)["sent"]["runs"] == [old.pk]
    assert 60 < backoff.client.ttl(f"{backoff.PREFIX}run:{old.pk}:hold") <= 120  # then 2N
    assert fresh.pk not in rc.reconcile(now + timedelta(seconds=40))["sent"]["runs"]


def test_the_back_off_doubles_up_to_its_cap(db, settings):
    settings.RECONCILE_AFTER_SECONDS, settings.RECONCILE_MAX_BACKOFF_SECONDS = 60, 200
    holds = []

    class Client:  # the Redis calls Backoff makes, with the expiry they ask for
        def __init__(self):
            self.data = {}

        def get(self, key):
            return self.data.get(key)

        def set(self, key, value, nx=False, ex=None):
            if nx and key in self.data:
                return False
            self.data[key] = value
            if key.endswith(":hold"):
                holds.append(ex)
            return True

    client = Client()
    backoff = rc.Backoff(client)
    for _ in range(5):
        assert backoff.due("run:1")
        assert not backoff.due("run:1")
        client.data.pop("spell:reconcile:run:1:hold")  # the hold expired
    assert holds == [60, 120, 200, 200, 200]


def test_a_run_of_a_team_at_its_quota_waits_for_its_own_retrying_task(team, sent):
    run_in(team, state=Run.State.RUNNING), run_in(team, state=Run.State.RUNNING)
    waiting = run_in(team, queued_ago=3600)

    assert rc.reconcile()["sent"]["runs"] == []
    Run.objects.filter(state=Run.State.RUNNING).first().delete()
    assert rc.reconcile()["sent"]["runs"] == [waiting.pk]


def test_a_duplicate_task_is_harmless_the_claims_are_atomic(team, settings, tmp_path):
    from workers.ingest_tasks import ingest_corpus, ingest_eval_set
    from workers.supervisor import supervise

    settings.RUNS_ROOT = tmp_path
    running = run_in(team, state=Run.State.RUNNING)
    Run.objects.filter(pk=running.pk).update(attempt=1, worker_hostname="a@x", run_dir=str(tmp_path / "r"))
    assert supervise(running.pk, "b@x") == {"run": running.pk, "claimed": False, "state": "RUNNING"}
    running.refresh_from_db()
    assert (running.attempt, running.worker_hostname) == (1, "a@x") and not (tmp_path / "r").exists()

    corpus = Corpus.objects.create(team=team, name="c", status=Corpus.Status.INGESTING)
    eval_set = EvalSet.objects.create(team=team, name="e", status=EvalSet.Status.INGESTING)
    assert ingest_corpus(corpus.pk)["skipped"] == "not pending"
    assert ingest_eval_set(eval_set.pk)["skipped"] == "not pending"
    assert Corpus.objects.get(pk=corpus.pk).status == Corpus.Status.INGESTING
    assert EvalSet.objects.get(pk=eval_set.pk).status == EvalSet.Status.INGESTING


def test_ingests_stuck_past_the_deadline_fail_with_a_clear_error(team, sent, settings):
    settings.INGEST_DEADLINE_SECONDS = 3600
    stuck = aged(Corpus, 3700, team=team, name="stuck", status=Corpus.Status.INGESTING)
    Document.objects.create(corpus=stuck, external_id="d", text="half ingested")
    busy = aged(Corpus, 600, team=team, name="busy", status=Corpus.Status.INGESTING)
    stuck_set = aged(EvalSet, 3700, team=team, name="e", status=EvalSet.Status.INGESTING)

    result = rc.reconcile()

    assert result["failed"] == {"corpora": [stuck.pk], "eval_sets": [stuck_set.pk]}
    stuck.refresh_from_db()
    assert stuck.status == Corpus.Status.FAILED and stuck.finished_at
    assert stuck.error.startswith("The ingest did not finish within 1 h of the upload") and "upload again" in stuck.error
    assert not Document.objects.filter(corpus=stuck).exists()
    assert Corpus.objects.get(pk=busy.pk).status == Corpus.Status.INGESTING
    assert EvalSet.objects.get(pk=stuck_set.pk).status == EvalSet.Status.FAILED


def test_the_reconcile_task_is_on_the_one_beat_schedule(db, sent):
    from workers.celery import app
    from workers.fleet_tasks import reconcile as task

    assert set(app.conf.beat_schedule) == {"fleet-sweep", "reconcile", "run-retention"}
    assert app.conf.beat_schedule["reconcile"]["task"] == task.name == task_names.FLEET_RECONCILE == "workers.fleet.reconcile"
    assert app.conf.beat_schedule["reconcile"]["options"]["queue"] == "default"
    assert task.apply().get()["sent"] == {"runs": [], "corpora": [], "eval_sets": []}
    for path in (REPO / "workers").glob("*.py"):  # no module declares a second schedule
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr == "beat_schedule":
                assert not isinstance(getattr(node, "ctx", None), ast.Store), path
            assert not (isinstance(node, ast.Assign) and "beat_schedule" in ast.unparse(node.targets[0])), path
