"""The run lifecycle (webapp/runs/lifecycle.py): each transition from every state, who wins a race,
and that nothing else in webapp/ or workers/ writes a run's state."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from webapp.runs import lifecycle
from webapp.runs.models import Run

ROOT = Path(__file__).resolve().parents[3]
STATES = [s.value for s in Run.State]


def put(run, state, **extra):
    Run.objects.filter(pk=run.pk).update(state=state, **extra)
    run.refresh_from_db()


# transition -> the states it applies to (the table in the module's docstring)
TABLE = {
    "claim": {"QUEUED"},
    "cancel": {"QUEUED", "PAUSED", "LOST", "RUNNING"},
    "request_pause": {"RUNNING"},
    "resume": {"PAUSED", "FAILED", "LOST"},
    "mark_lost": {"RUNNING"},
    "requeue_auto": {"LOST"},
    "requeue_by_hand": {"LOST", "FAILED", "PAUSED"},
    "end": {"RUNNING"},
}
AFTER = {"claim": "RUNNING", "request_pause": "RUNNING", "resume": "QUEUED", "mark_lost": "LOST",
         "requeue_auto": "QUEUED", "requeue_by_hand": "QUEUED", "end": "FAILED"}


def apply(name, run):
    return {
        "claim": lambda: lifecycle.claim(run.pk, "w1") is not None,
        "cancel": lambda: lifecycle.cancel(run.pk) is not None,
        "request_pause": lambda: lifecycle.request_pause(run.pk),
        "resume": lambda: lifecycle.resume(run.pk),
        "mark_lost": lambda: lifecycle.mark_lost(run.pk, "Worker w1 is offline."),
        "requeue_auto": lambda: lifecycle.requeue(run.pk, auto=True),
        "requeue_by_hand": lambda: lifecycle.requeue(run.pk),
        "end": lambda: lifecycle.end(run.pk, run.attempt, Run.State.FAILED, "boom"),
    }[name]()


@pytest.mark.parametrize("name", sorted(TABLE))
@pytest.mark.parametrize("state", STATES)
def test_each_transition_applies_exactly_to_the_states_of_its_table(run, name, state):
    put(run, state, attempt=1)

    changed = apply(name, run)

    run.refresh_from_db()
    assert changed is (state in TABLE[name])
    if not changed:
        assert run.state == state  # nothing written
    elif name == "cancel":
        assert (run.state, run.requested_action) == (("RUNNING", "cancel") if state == "RUNNING" else ("CANCELLED", ""))
    else:
        assert run.state == AFTER[name]


def test_claim_starts_a_new_attempt_and_a_second_claim_finds_nothing(run):
    claimed = lifecycle.claim(run.pk, "w1")

    assert (claimed.state, claimed.attempt, claimed.worker_hostname) == ("RUNNING", 1, "w1")
    assert lifecycle.claim(run.pk, "w2") is None  # a redelivered task
    run.refresh_from_db()
    assert (run.attempt, run.worker_hostname) == (1, "w1")


def test_claim_waits_while_the_team_is_at_its_concurrent_run_quota(run, team, corpus, model_entry, owner):
    from tests.webapp.runs.factories import make_run

    team.concurrent_run_quota = 1
    team.save()
    other = make_run(team, corpus, model_entry, user=owner, name="other", state=Run.State.RUNNING)

    assert lifecycle.claim(run.pk, "w1") is None
    run.refresh_from_db()
    assert run.state == "QUEUED"
    lifecycle.end(other.pk, other.attempt, Run.State.SUCCEEDED)
    assert lifecycle.claim(run.pk, "w1") is not None


def test_a_superseded_attempt_cannot_write_its_outcome_over_the_next_one(run):
    first = lifecycle.claim(run.pk, "w1")
    assert lifecycle.mark_lost(run.pk, "Worker w1 is offline.")
    assert lifecycle.requeue(run.pk, auto=True)
    second = lifecycle.claim(run.pk, "w2")

    assert lifecycle.end(run.pk, first.attempt, Run.State.FAILED, "the old process died") is False
    run.refresh_from_db()
    assert (run.state, run.attempt, run.worker_hostname) == ("RUNNING", second.attempt, "w2")
    assert lifecycle.end(run.pk, second.attempt, Run.State.SUCCEEDED) is True


def test_a_cancel_racing_the_end_of_the_attempt_loses_cleanly(run):
    claimed = lifecycle.claim(run.pk, "w1")
    assert lifecycle.end(run.pk, claimed.attempt, Run.State.SUCCEEDED)

    assert lifecycle.cancel(run.pk) is None
    run.refresh_from_db()
    assert run.state == "SUCCEEDED"


def test_automatic_requeues_stop_at_the_configured_number(run, settings):
    settings.RUN_MAX_AUTO_REQUEUES = 2
    for _ in range(2):
        put(run, Run.State.LOST)
        assert lifecycle.requeue(run.pk, auto=True)
    put(run, Run.State.LOST)

    assert lifecycle.requeue(run.pk, auto=True) is False
    assert lifecycle.requeue(run.pk) is True  # an admin still may
    run.refresh_from_db()
    assert run.auto_requeues == 2


def test_an_outcome_is_one_of_the_endings_and_its_error_is_stored_whatever_it_holds(run):
    claimed = lifecycle.claim(run.pk, "w1")
    with pytest.raises(ValueError):
        lifecycle.end(run.pk, claimed.attempt, Run.State.QUEUED)

    assert lifecycle.end(run.pk, claimed.attempt, Run.State.FAILED, "bad byte \x00 in the log")
    run.refresh_from_db()
    assert run.error == "bad byte \u2400 in the log" and run.finished_at is not None and run.pid is None


def _state_writes(path: Path) -> list[str]:
    """`.update(state=...)` / `.create(state=...)` calls of a file whose value is not a Worker's state."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("update", "create"):
            for kw in node.keywords:
                value = ast.unparse(kw.value)
                # services.launch creates the row in lifecycle.INITIAL (the table's first line)
                if kw.arg == "state" and not value.startswith("Worker.") and value != "lifecycle.INITIAL":
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)[:80]}")
    return found


def test_only_the_lifecycle_module_writes_a_runs_state():
    allowed = {ROOT / "webapp" / "runs" / "lifecycle.py"}
    files = [p for d in ("webapp", "workers") for p in (ROOT / d).rglob("*.py")
             if "migrations" not in p.parts and p not in allowed]

    writes = [w for p in files for w in _state_writes(p)]

    assert writes == []
    assert len(files) > 50
