"""Fault: the worker running a run dies and comes back at once under the same name (docker's
`restart: unless-stopped`), well inside WORKER_OFFLINE_AFTER_SECONDS, so the fleet never sees it go
offline.

Expected: the restarted worker's first heartbeat carries a new boot id, which makes the run its dead
predecessor supervised LOST (the offline rule cannot: the name never went silent long enough); the
sweeper requeues it; the same worker resumes it from its last checkpoint (attempt 2) and finishes
it; nothing is lost or stored twice.
"""

from __future__ import annotations

from pathlib import Path

from tests.proofs.conftest import (
    alive, assert_checkpoint_loads, assert_nothing_lost, kill_group, launch_tiny, run_row, start_worker, state_of,
    wait_for,
)

STEPS = 5
# Far longer than the test: only the boot id can tell that the worker restarted.
NEVER_OFFLINE = {"WORKER_OFFLINE_AFTER_SECONDS": 3600, "WORKER_SUPERVISION_GRACE_SECONDS": 2}


def test_a_worker_restarted_under_the_same_name_loses_and_then_resumes_its_old_run(world, settings):
    from webapp.fleet import services as fleet
    from webapp.fleet.models import Worker
    from webapp.runs.models import Run, RunEvent

    settings.WORKER_OFFLINE_AFTER_SECONDS = NEVER_OFFLINE["WORKER_OFFLINE_AFTER_SECONDS"]  # the in-process sweep too
    first = start_worker(world, "steady", queues="default,cpu", **NEVER_OFFLINE)
    second = None
    try:
        run = launch_tiny(world, STEPS)
        wait_for(lambda: RunEvent.objects.filter(run_id=run.pk, type="checkpoint").exists(), "a first checkpoint",
                 logs=[first])
        trainer_pid = run_row(run).pid
        old_boot = Worker.objects.get(hostname=first.hostname).boot_id
        assert old_boot and alive(trainer_pid)

        kill_group(first)  # the container dies ...
        wait_for(lambda: not alive(trainer_pid), "the orphaned training process to stop", timeout=60)
        run_dir = Path(run_row(run).run_dir)
        resumed_from = int((run_dir / "checkpoints" / "latest").read_text().strip().split("-")[1])
        assert state_of(run) == Run.State.RUNNING  # nobody has noticed yet

        second = start_worker(world, "steady", queues="default,cpu", **NEVER_OFFLINE)  # ... and is back
        assert second.hostname == first.hostname
        wait_for(lambda: state_of(run) != Run.State.RUNNING, "the new boot id to lose the old process's run",
                 timeout=60, logs=[second])
        row = run_row(run)  # no beat runs here: it stays LOST until the sweep below
        assert row.state == Run.State.LOST and "restarted" in row.error, (row.state, row.error)
        worker = Worker.objects.get(hostname=second.hostname)
        assert worker.boot_id != old_boot and worker.state != Worker.State.OFFLINE

        swept = fleet.sweep()  # LOST -> QUEUED; the offline rule found nothing
        assert swept["offline"] == [] and swept["requeued"] == [run.pk]

        wait_for(lambda: state_of(run) in Run.TERMINAL and run_row(run).attempt == 2, "the resumed run to end",
                 logs=[second])
        row = run_row(run)
        assert row.state == Run.State.SUCCEEDED, row.error
        assert (row.attempt, row.auto_requeues, row.worker_hostname) == (2, 1, first.hostname)
        assert "--resume" in (run_dir / "logs" / "attempt-2.log").read_text()
        assert_nothing_lost(run)
        steps_2 = list(RunEvent.objects.filter(run_id=run.pk, attempt=2, type="metrics").order_by("seq")
                       .values_list("step", flat=True))
        assert steps_2 == list(range(resumed_from + 1, STEPS + 1))
        assert_checkpoint_loads(run_dir, step=STEPS)
    finally:
        if second is not None:
            second.stop()
        first.stop()
