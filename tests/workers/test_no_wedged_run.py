"""No wedged run (issue 16): whatever fails in the supervisor once a run is claimed, the attempt ends,
FAILED with the error or LOST (infrastructure) and requeued by the sweeper, and the training process
(the fake trainer, a real child process) is never left running."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from django.db import OperationalError

from webapp.accounts.models import Team
from webapp.fleet import services as fleet
from webapp.runs.models import ModelEntry, Run
from workers import supervisor
from workers.relay import EventRelay

from tests.webapp.runs.factories import make_corpus, make_run

FAKE = [sys.executable, str(Path(__file__).with_name("fake_trainer.py"))]


@pytest.fixture
def long_run(settings, tmp_path):
    def make():
        settings.RUNS_ROOT = tmp_path / "runs"
        settings.RUN_CANCEL_GRACE_SECONDS = 3
        team = Team.objects.create(name="Lab", slug="lab")
        entry = ModelEntry.objects.create(name="tiny", path="var/models/tiny")
        return make_run(team, make_corpus(team), entry, fake={"steps": 500, "step_seconds": 0.1})
    return make


def fail_poll(monkeypatch, exc: BaseException, after: int = 1) -> dict:
    """EventRelay.poll raises `exc` from its `after`-th call on, noting the training process's pid."""
    real, seen = EventRelay.poll, {"calls": 0, "pid": None}

    def poll(relay):
        seen["calls"] += 1
        if seen["calls"] >= after:
            seen["pid"] = Run.objects.filter(pk=relay.run_id).values_list("pid", flat=True).first()
            raise exc
        return real(relay)

    monkeypatch.setattr(EventRelay, "poll", poll)
    return seen


def assert_gone(pid: int | None) -> None:
    assert pid, "the training process had started"
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # stopped and reaped: not even a zombie is left


def supervise(run):
    return supervisor.supervise(run.pk, "w1@test", command=FAKE, poll_seconds=0.05)


@pytest.mark.django_db
def test_a_fault_in_the_relay_fails_the_attempt_with_the_error_and_stops_the_process(long_run, monkeypatch):
    run = long_run()
    seen = fail_poll(monkeypatch, RuntimeError("injected relay fault"), after=3)

    result = supervise(run)

    run.refresh_from_db()
    assert result["state"] == run.state == Run.State.FAILED
    assert run.error.startswith("The worker's supervisor failed: RuntimeError: injected relay fault (")
    assert "The training process was stopped." in run.error
    assert run.finished_at and run.pid is None
    assert_gone(seen["pid"])


@pytest.mark.django_db
def test_an_unreachable_broker_loses_the_attempt_and_the_sweeper_requeues_it(long_run, monkeypatch, settings):
    from kombu.exceptions import OperationalError as BrokerError

    settings.RUN_MAX_AUTO_REQUEUES = 3
    run = long_run()
    seen = fail_poll(monkeypatch, BrokerError("Error 111 connecting to redis"))

    result = supervise(run)

    run.refresh_from_db()
    assert result["state"] == run.state == Run.State.LOST
    assert "the database or the broker was unreachable" in run.error and "Error 111" in run.error
    assert_gone(seen["pid"])
    assert fleet.sweep()["requeued"] == [run.pk]
    run.refresh_from_db()
    assert (run.state, run.auto_requeues) == (Run.State.QUEUED, 1)


@pytest.mark.django_db(transaction=True)  # the supervisor closes the connection between retries
def test_a_database_outage_longer_than_the_retry_window_loses_the_attempt(long_run, monkeypatch):
    monkeypatch.setattr(supervisor, "DB_RETRY_SECONDS", 0.3)
    monkeypatch.setattr(supervisor, "DB_RETRY_PAUSE", 0.05)
    run = long_run()
    seen = fail_poll(monkeypatch, OperationalError("server closed the connection unexpectedly"))

    result = supervise(run)

    run.refresh_from_db()
    assert result["state"] == run.state == Run.State.LOST
    assert "server closed the connection" in run.error
    assert_gone(seen["pid"])


@pytest.mark.django_db
def test_a_worker_shutdown_marks_the_attempt_lost_stops_the_process_and_goes_on_shutting_down(long_run, monkeypatch):
    run = long_run()
    seen = fail_poll(monkeypatch, SystemExit(1))

    with pytest.raises(SystemExit):
        supervise(run)

    run.refresh_from_db()
    assert run.state == Run.State.LOST and "The worker stopped" in run.error
    assert_gone(seen["pid"])


@pytest.mark.django_db
def test_a_fault_while_preparing_fails_the_run_before_any_process(long_run, monkeypatch):
    run = long_run()

    def broken(_run):
        raise ValueError("unreadable evaluation set")

    monkeypatch.setattr(supervisor, "prepare_run_dir", broken)
    result = supervise(run)

    run.refresh_from_db()
    assert result["state"] == run.state == Run.State.FAILED
    assert run.error == "Could not start the training process: unreadable evaluation set"
