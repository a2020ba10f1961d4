"""The run task (workers.runs.supervise) on a real Celery worker process (real broker, test database), with
the fake trainer as the training process; plus one end-to-end run of the real `python -m spell
train` on the tiny random model."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from tests.support import WorkerProcess, child_env
from tests.webapp.runs.factories import make_corpus, make_run
from webapp.accounts.models import Team
from webapp.runs import services
from webapp.runs.models import ModelEntry, Run, RunEvent, Sample
from workers.run_tasks import run_spell

FAKE = f"{sys.executable} {Path(__file__).with_name('fake_trainer.py')}"


@pytest.fixture
def world(transactional_db, settings, tmp_path):
    settings.RUNS_ROOT = tmp_path / "runs"
    team = Team.objects.create(name="Lab", slug="lab")
    return team, make_corpus(team), ModelEntry.objects.create(name="tiny", path="var/models/tiny")


@pytest.fixture
def worker(world, settings):
    w = WorkerProcess(queues="cpu", name="runs", env=child_env(
        SPELL_TRAIN_COMMAND=FAKE, WORKER_HEARTBEAT_SECONDS=1, RUN_CANCEL_GRACE_SECONDS=2, RUNS_ROOT=settings.RUNS_ROOT,
    )).start()
    yield w
    w.stop()


def wait_for(predicate, worker, what: str, timeout: float = 90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"gave up waiting for {what}; worker log:\n{worker.log()[-4000:]}")


def state_of(run):
    return Run.objects.values_list("state", flat=True).get(pk=run.pk)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is as good as gone (its parent has not reaped it yet).
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def test_it_runs_a_queued_run_to_success(world, worker):
    team, corpus, entry = world
    run = make_run(team, corpus, entry, fake={"steps": 2})

    wait_for(lambda: state_of(run) == "SUCCEEDED", worker, "SUCCEEDED")

    run.refresh_from_db()
    assert (run.attempt, run.worker_hostname, run.pid) == (1, worker.hostname, None)
    assert Sample.objects.filter(run=run).count() == 6
    assert RunEvent.objects.filter(run=run, type="log", payload__message="finished").exists()


def test_it_exits_when_a_redelivered_task_finds_the_run_claimed(world, worker):
    team, corpus, entry = world
    run = make_run(team, corpus, entry, fake={"steps": 1})
    wait_for(lambda: state_of(run) == "SUCCEEDED", worker, "SUCCEEDED")

    result = run_spell.apply_async(args=[run.pk], queue="cpu").get(timeout=60)

    assert result == {"run": run.pk, "claimed": False, "state": "SUCCEEDED"}
    assert Run.objects.get(pk=run.pk).attempt == 1


def test_it_cancels_a_running_run_with_sigterm(world, worker):
    team, corpus, entry = world
    run = make_run(team, corpus, entry, fake={"steps": 10000, "step_seconds": 0.2})
    pid = wait_for(lambda: Run.objects.filter(pk=run.pk, last_seq__gte=0).values_list("pid", flat=True).first(), worker, "events")

    services.cancel(Run.objects.get(pk=run.pk))

    wait_for(lambda: state_of(run) == "CANCELLED", worker, "CANCELLED")
    run.refresh_from_db()
    assert run.requested_action == "" and run.finished_at is not None
    assert not alive(pid)


def test_it_kills_a_process_that_ignores_sigterm_after_the_grace_period(world, worker):
    team, corpus, entry = world
    run = make_run(team, corpus, entry, fake={"mode": "ignore-term", "steps": 10000, "step_seconds": 0.2})
    pid = wait_for(lambda: Run.objects.filter(pk=run.pk, last_seq__gte=0).values_list("pid", flat=True).first(), worker, "events")

    services.cancel(Run.objects.get(pk=run.pk))

    wait_for(lambda: state_of(run) == "CANCELLED", worker, "CANCELLED")
    assert not alive(pid)
    assert "sent SIGKILL" in worker.log()


def test_it_pauses_at_a_checkpoint_and_resumes_from_it(world, worker):
    team, corpus, entry = world
    run = make_run(team, corpus, entry, fake={"steps": 10000, "step_seconds": 0.2, "checkpoint_every": 1000})
    wait_for(lambda: Run.objects.filter(pk=run.pk, last_step__gte=2).exists(), worker, "step 2")

    services.pause(Run.objects.get(pk=run.pk))

    wait_for(lambda: state_of(run) == "PAUSED", worker, "PAUSED")
    run.refresh_from_db()
    paused_at = services.latest_checkpoint(run)
    step = int(paused_at.split("-")[1])
    assert RunEvent.objects.filter(run=run, type="log", payload__message="paused").exists()
    (run.path / "fake.json").write_text(json.dumps({"steps": step + 2}))

    services.resume(run)

    wait_for(lambda: state_of(run) == "SUCCEEDED", worker, "SUCCEEDED after resume")
    run.refresh_from_db()
    assert run.attempt == 2
    assert "--resume" in (run.path / "logs" / "attempt-2.log").read_text()
    steps_2 = list(RunEvent.objects.filter(run=run, attempt=2, type="metrics").values_list("step", flat=True))
    assert steps_2 == [step + 1, step + 2]
    assert not RunEvent.objects.filter(run=run, superseded=True).exists()
    seqs = list(RunEvent.objects.filter(run=run).order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(len(seqs)))


def test_it_marks_a_crash_failed_with_the_error_on_the_run(world, worker):
    team, corpus, entry = world
    run = make_run(team, corpus, entry, fake={"mode": "crash"})

    wait_for(lambda: state_of(run) == "FAILED", worker, "FAILED")

    run.refresh_from_db()
    assert "simulated crash in the training loop" in run.error


@pytest.mark.slow
def test_it_trains_the_tiny_model_with_the_real_cli(world, settings):
    from spell.models import prepare_model

    team, corpus, _ = world
    folder = prepare_model("tiny-random")
    entry = ModelEntry.objects.create(name="tiny-random", path=str(folder))
    worker = WorkerProcess(queues="cpu", name="real", env=child_env(RUNS_ROOT=settings.RUNS_ROOT)).start()
    try:
        run = make_run(team, corpus, entry, overrides={
            "run.steps": 1, "tasks.docs_per_question": 2, "eval.every_steps": 0, "eval.at_start": False, "checkpoint.every_steps": 1,
            "selfplay.questions_per_task": 1, "selfplay.group_size": 2, "selfplay.verifier_samples": 2,
            "selfplay.batch_groups": 1, "selfplay.max_generation_batches": 1,
            "sampling.max_response_tokens": 16, "length_curriculum.stages": [512],
            "tasks.mix": {"doc_mc": 1.0, "doc_general_qa": 0.0, "docmath_qa": 0.0},
        })
        wait_for(lambda: state_of(run) in ("SUCCEEDED", "FAILED"), worker, "the end of the run", timeout=600)
        run.refresh_from_db()
        assert run.state == "SUCCEEDED", run.error
        assert RunEvent.objects.filter(run=run, type="metrics").exists()
        assert services.checkpoints(run)
    finally:
        worker.stop()
