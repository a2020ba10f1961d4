"""workers.supervisor in this process, against the fake trainer (the process-protocol double):
claim, run dir, exit codes, resume with superseded events. Controls through a real worker are in
test_run_task.py."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from webapp.accounts.models import Team
from webapp.runs.models import ModelEntry, Run, RunEvent, Sample
from workers import supervisor

from tests.webapp.runs.factories import make_corpus, make_run

FAKE = [sys.executable, str(Path(__file__).with_name("fake_trainer.py"))]


@pytest.fixture
def world(db, settings, tmp_path):
    settings.RUNS_ROOT = tmp_path / "runs"
    team = Team.objects.create(name="Lab", slug="lab")
    return team, make_corpus(team), ModelEntry.objects.create(name="tiny", path="var/models/tiny")


def launch(world, **fake):
    team, corpus, entry = world
    return make_run(team, corpus, entry, fake={"steps": 3, **fake})


def supervise(run):
    return supervisor.supervise(run.pk, "w1@test", command=FAKE, poll_seconds=0.05)


def test_it_claims_runs_prepares_the_run_dir_and_succeeds(world):
    run = launch(world)

    result = supervise(run)

    run.refresh_from_db()
    assert result["state"] == "SUCCEEDED" and result["rc"] == 0
    assert (run.state, run.attempt, run.worker_hostname, run.error) == ("SUCCEEDED", 1, "w1@test", "")
    assert run.started_at and run.finished_at and run.heartbeat_at
    corpus_lines = [json.loads(line) for line in (run.path / "corpus.jsonl").read_text().splitlines()]
    assert [d["id"] for d in corpus_lines] == ["d0", "d1", "d2", "d3"]
    assert set(corpus_lines[0]) >= {"id", "text", "cluster", "numeric"}
    assert json.loads((run.path / supervisor.CONFIG_NAME).read_text()) == run.config
    assert "--attempt 1" in (run.path / "logs" / "attempt-1.log").read_text()
    seqs = list(RunEvent.objects.filter(run=run).values_list("seq", flat=True))
    assert seqs == list(range(len(seqs))) and len(seqs) == run.last_seq + 1
    assert Sample.objects.filter(run=run).count() == 9
    assert run.disk_bytes > 0


def test_it_does_not_claim_a_run_twice(world):
    run = launch(world)
    supervise(run)

    again = supervise(run)

    run.refresh_from_db()
    assert again == {"run": run.pk, "claimed": False, "state": "SUCCEEDED"}
    assert run.attempt == 1


def test_it_does_not_claim_a_cancelled_run(world):
    run = launch(world)
    Run.objects.filter(pk=run.pk).update(state=Run.State.CANCELLED)

    assert supervise(run)["claimed"] is False
    assert not (run.path / "events.jsonl").exists()


def test_it_fails_with_the_one_line_error_on_exit_2(world):
    run = launch(world, mode="bad-input")

    supervise(run)

    run.refresh_from_db()
    assert run.state == "FAILED"
    assert run.error == "spell train: error: selfplay.group_size: must be >= 2 (got 1)"


def test_a_starved_run_fails_with_its_one_line_not_as_a_crash(world):
    run = launch(world, mode="starved")

    supervise(run)

    run.refresh_from_db()
    assert run.state == "FAILED"
    assert run.error == "spell train: error: no question in 5 steps in a row (steps 1-5): ..."


def test_it_fails_with_the_log_tail_on_a_crash(world):
    run = launch(world, mode="crash")

    supervise(run)

    run.refresh_from_db()
    assert run.state == "FAILED"
    assert run.error.startswith("The training process crashed (exit code 1): boom at step 2")
    assert "RuntimeError: simulated crash in the training loop" in run.error
    assert RunEvent.objects.filter(run=run, type="error").count() == 1


def test_it_fails_clearly_when_the_corpus_is_gone(world):
    run = launch(world)
    run.corpus.delete()

    supervise(run)

    run.refresh_from_db()
    assert run.state == "FAILED"
    assert "corpus was deleted" in run.error


def test_it_skips_garbage_lines_and_keeps_going(world):
    run = launch(world, mode="garbage")

    supervise(run)

    run.refresh_from_db()
    assert run.state == "SUCCEEDED"
    assert not RunEvent.objects.filter(run=run, payload__has_key="no").exists()
    assert RunEvent.objects.filter(run=run, type="log", payload__message="finished").exists()


def test_it_resumes_a_new_attempt_from_the_checkpoint_and_supersedes_later_steps(world):
    # Attempt 1 ran steps 1-3 but its last checkpoint is step 2 (as if it was lost during step 3).
    run = launch(world, checkpoint_every=2)
    supervise(run)
    Run.objects.filter(pk=run.pk).update(state=Run.State.QUEUED)
    (run.path / "checkpoints" / "latest").write_text("step-000002")

    supervise(run)

    run.refresh_from_db()
    assert (run.state, run.attempt) == ("SUCCEEDED", 2)
    assert "--resume" in (run.path / "logs" / "attempt-2.log").read_text()
    assert (run.path / "attempt").read_text().strip() == "2"  # the fence names the attempt that owns the folder
    superseded = set(RunEvent.objects.filter(run=run, superseded=True).values_list("attempt", "step"))
    assert superseded == {(1, 3)}
    live_metric_steps = list(RunEvent.objects.filter(run=run, type="metrics", superseded=False)
                             .order_by("seq").values_list("attempt", "step"))
    assert live_metric_steps == [(1, 1), (1, 2), (2, 3)]
    assert Sample.objects.filter(run=run, superseded=False).count() == 9
    seqs = list(RunEvent.objects.filter(run=run).order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(len(seqs)))


def test_it_leaves_a_run_queued_while_its_team_is_at_quota(world):
    team = world[0]
    team.concurrent_run_quota = 1
    team.save()
    busy = launch(world)
    Run.objects.filter(pk=busy.pk).update(state=Run.State.RUNNING)
    waiting = launch(world)

    result = supervise(waiting)

    waiting.refresh_from_db()
    assert result == {"run": waiting.pk, "claimed": False, "state": "QUEUED", "retry": True}
    assert (waiting.state, waiting.attempt) == ("QUEUED", 0)

    Run.objects.filter(pk=busy.pk).update(state=Run.State.SUCCEEDED)
    assert supervise(waiting)["state"] == "SUCCEEDED"


def test_the_training_process_gets_an_allow_listed_environment_without_the_web_apps_secrets():
    from workers.supervisor import training_environment

    env = training_environment({
        "PATH": "/usr/bin", "HOME": "/root", "SECRET_KEY": "s3cret", "DATABASE_URL": "postgres://u:pw@db/x",
        "REDIS_URL": "redis://:pw@r:6379/0", "AWS_SECRET_ACCESS_KEY": "k", "CUDA_VISIBLE_DEVICES": "0,1",
        "NCCL_DEBUG": "INFO", "MASTER_ADDR": "10.0.0.1", "SPELL_CACHE_DIR": "/cache", "TORCH_EXTENSIONS_DIR": "/ext",
        "HF_HUB_OFFLINE": "1", "LC_ALL": "C.UTF-8", "SPELL_TRAIN_COMMAND": "deepspeed -m spell train",
    })
    assert env == {"PATH": "/usr/bin", "HOME": "/root", "CUDA_VISIBLE_DEVICES": "0,1", "NCCL_DEBUG": "INFO",
                   "MASTER_ADDR": "10.0.0.1", "SPELL_CACHE_DIR": "/cache", "TORCH_EXTENSIONS_DIR": "/ext",
                   "HF_HUB_OFFLINE": "1", "LC_ALL": "C.UTF-8", "PYTHONUNBUFFERED": "1"}
