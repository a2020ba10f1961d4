"""A real worker reports the runs it supervises with every heartbeat: a run it supervises stays RUNNING
past the grace, and when its supervisor dies with the worker still alive (the pool process killed:
nothing could write how the attempt ended) the next heartbeats make the run LOST, and the training
process is gone with its parent. No sweeper involved: the worker never went offline."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from tests.support import WorkerProcess, child_env
from tests.webapp.runs.factories import make_corpus, make_run
from webapp.accounts.models import Team
from webapp.runs.models import ModelEntry, Run

FAKE = f"{sys.executable} {Path(__file__).with_name('fake_trainer.py')}"
GRACE = 2


@pytest.fixture
def worker(transactional_db, settings, tmp_path):
    settings.RUNS_ROOT = tmp_path / "runs"
    w = WorkerProcess(queues="cpu", name="gone", env=child_env(
        SPELL_TRAIN_COMMAND=FAKE, WORKER_HEARTBEAT_SECONDS=1, WORKER_SUPERVISION_GRACE_SECONDS=GRACE,
        RUNS_ROOT=settings.RUNS_ROOT,
    )).start()
    yield w
    w.stop()


def wait_for(predicate, worker, what: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"gave up waiting for {what}; worker log:\n{worker.log()[-4000:]}")


def parent_of(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_a_run_whose_supervisor_died_under_a_live_worker_is_lost(worker):
    team = Team.objects.create(name="Lab", slug="lab")
    entry = ModelEntry.objects.create(name="tiny", path="var/models/tiny")
    run = make_run(team, make_corpus(team), entry, fake={"steps": 10000, "step_seconds": 0.2})
    pid = wait_for(lambda: Run.objects.filter(pk=run.pk, last_seq__gte=0).values_list("pid", flat=True).first(),
                   worker, "events")
    started = Run.objects.get(pk=run.pk).started_at

    # Supervised: it outlives the grace and two more heartbeats.
    time.sleep(GRACE + 2.5)
    assert Run.objects.get(pk=run.pk).state == Run.State.RUNNING, worker.log()[-3000:]

    os.kill(parent_of(pid), signal.SIGKILL)  # the pool process running run_spell; the worker lives on

    wait_for(lambda: Run.objects.get(pk=run.pk).state == Run.State.LOST, worker, "LOST", timeout=30)
    run.refresh_from_db()
    assert "no longer supervises this run" in run.error and run.started_at == started
    wait_for(lambda: gone(pid), worker, "the training process to end (parent-death signal)", timeout=30)
    assert worker.process.poll() is None  # the worker itself never stopped
