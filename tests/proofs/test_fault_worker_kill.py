"""Fault: the worker running a run is killed with SIGKILL mid-run.

Expected: its training process dies with it (PR_SET_PDEATHSIG), the sweeper finds the worker
silent, marks the run LOST and requeues it; another worker resumes it from its last checkpoint
(attempt 2, `--resume`) and finishes it; nothing is lost or stored twice.
"""

from __future__ import annotations

from pathlib import Path

from tests.proofs.conftest import (
    alive, assert_checkpoint_loads, assert_nothing_lost, kill_group, launch_tiny, run_row, start_worker, state_of,
    wait_for,
)

STEPS = 5


def test_it_resumes_a_run_from_its_checkpoint_after_the_worker_is_killed(world):
    from webapp.runs.models import Run, RunEvent
    from workers.fleet_tasks import sweep

    offline = {"WORKER_OFFLINE_AFTER_SECONDS": 4}
    first = start_worker(world, "doomed", **offline)
    second = None
    try:
        run = launch_tiny(world, STEPS)
        wait_for(lambda: RunEvent.objects.filter(run_id=run.pk, type="checkpoint").exists(), "a first checkpoint",
                 logs=[first])
        trainer_pid = run_row(run).pid
        assert run_row(run).state == Run.State.RUNNING and alive(trainer_pid)

        kill_group(first)  # SIGKILL to the worker and its pool child, no goodbye
        wait_for(lambda: not alive(trainer_pid), "the orphaned training process to stop", timeout=60)
        run_dir = Path(run_row(run).run_dir)
        resumed_from = int((run_dir / "checkpoints" / "latest").read_text().strip().split("-")[1])
        assert 1 <= resumed_from < STEPS
        assert state_of(run) == Run.State.RUNNING  # nobody has noticed yet

        second = start_worker(world, "rescuer", queues="default,cpu", **offline)

        def swept():
            result = sweep.apply_async(queue="default").get(timeout=60)
            return result if run.pk in result["requeued"] else None

        result = wait_for(swept, "the sweeper to requeue the run", timeout=120, logs=[second])
        assert run.pk in result["lost"] and first.hostname in result["offline"]  # LOST, then requeued

        wait_for(lambda: state_of(run) in (Run.State.SUCCEEDED, Run.State.FAILED), "the resumed run to end",
                 logs=[second])
        row = run_row(run)
        assert row.state == Run.State.SUCCEEDED, row.error
        assert (row.attempt, row.auto_requeues, row.worker_hostname) == (2, 1, second.hostname)
        assert "--resume" in (run_dir / "logs" / "attempt-2.log").read_text()

        assert_nothing_lost(run)
        events = RunEvent.objects.filter(run_id=run.pk)
        assert events.filter(attempt=2, type="log", payload__message=f"resumed from step {resumed_from}").exists()
        steps_2 = list(events.filter(attempt=2, type="metrics").order_by("seq").values_list("step", flat=True))
        assert steps_2 == list(range(resumed_from + 1, STEPS + 1))
        # What attempt 1 did after the checkpoint it was resumed from is kept but hidden.
        assert not events.filter(attempt=1, step__gt=resumed_from, superseded=False).exists()
        assert not events.filter(attempt=1, step__lte=resumed_from, superseded=True).exists()
        assert_checkpoint_loads(run_dir, step=STEPS)
    finally:
        if second is not None:
            second.stop()
        first.stop()
